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
//   - session.go, conn.go: one session per connection, the command table
//     (one method per command), the buffered response writer flushed at
//     each command's end, timeouts and the Dovecot-shaped log lines.
//   - parser.go, seqset.go, names.go: the streaming command parser
//     (atoms, quoted strings, literals {n} and {n+}, lists, sequence
//     sets) bounded by Options.MaxLineLength, with APPEND's literal
//     bounded by Options.MaxLiteralSize; mailbox names, modified UTF-7
//     and LIST patterns.
//   - auth.go, list.go, mailboxes.go, selected.go, fetch.go,
//     fetchparse.go, search.go, idle.go: the command handlers.
//   - message.go, bodystructure.go, envelope.go, textdecode.go: a stored
//     message (RFC 5322 + MIME) parsed into a tree of byte offsets, from
//     which BODYSTRUCTURE, ENVELOPE and BODY[section] are answered the
//     way Dovecot answers them (dovecot_test.go compares byte for byte),
//     and the decoding SEARCH needs (RFC 2047 words, base64,
//     quoted-printable, charsets).
//   - structure.go: a bounded LRU of ENVELOPE/BODY/BODYSTRUCTURE per
//     (user, mailbox, UIDVALIDITY, UID), shared by all sessions.
//
// The selected mailbox's message list belongs to the session (selected.go)
// and moves only when the session polls the store after a command or
// during IDLE, so sequence numbers never shift under the client; EXPUNGEs
// found during FETCH, STORE or SEARCH wait for a command that may carry
// them (RFC 3501 7.4.1).
//
// Mailbox names travel between client and store unchanged except for the
// hierarchy separator: the client sees Options.Separator, the store "/".
// Names are modified UTF-7 (RFC 3501 5.1.3) as the client sends them.
//
// The server behaves like Dovecot where the RFCs leave room: the same
// greeting shape, response codes, timeouts (60 s before login, 30 min
// autologout), line length limit (64 KiB) and log lines.
package imapd
