// Package imapd owns postcote's IMAP server: the IMAP4rev1 protocol (RFC
// 3501, with the RFC 9051 behaviour where both agree) and the extensions
// it advertises (SASL-IR, ID, ENABLE, IDLE, LITERAL+, NAMESPACE, UIDPLUS,
// MOVE, UNSELECT, CHILDREN, SPECIAL-USE, LIST-EXTENDED, LIST-STATUS).
//
// It speaks to mailboxes only through the internal/mailstore contract and
// checks passwords through internal/sasl, so it never touches the disk
// layout or a user database itself.
//
// Layout of the package:
//
//   - server.go: Options, New, Serve and Shutdown; connection limits.
//   - conn.go, session.go: one session per connection, the command table,
//     the response writer and the untagged updates sent after commands.
//   - parser.go, seqset.go: the streaming command parser (atoms, quoted
//     strings, literals {n} and {n+}, lists, sequence sets), bounded by
//     Options.MaxLineLength and Options.MaxLiteralSize.
//   - auth.go, mailboxes.go, selected.go, fetch.go, search.go, idle.go:
//     the command handlers, one method per command.
//   - message.go, bodystructure.go, envelope.go: parsing a stored message
//     (RFC 5322 + MIME) into the part tree from which BODYSTRUCTURE,
//     ENVELOPE and BODY[section] are answered; structure.go caches the
//     results per (user, mailbox, UIDVALIDITY, UID) in a bounded LRU.
//
// Mailbox names travel between client and store unchanged except for the
// hierarchy separator: the client sees Options.Separator, the store "/".
// Names are modified UTF-7 (RFC 3501 5.1.3) as the client sends them.
//
// The server behaves like Dovecot where the RFCs leave room: the same
// greeting shape, response codes, timeouts (60 s before login, 30 min
// autologout), line length limit (64 KiB) and log lines.
package imapd
