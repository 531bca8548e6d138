// Package transport holds the delivery agents the queue hands messages
// to, and the router that picks one per recipient as Postfix's qmgr and
// trivial-rewrite do: virtual_transport for virtual mailbox domains,
// local_transport for mydestination, relay_transport for relay_domains,
// default_transport for the rest. A transport setting is Postfix's
// "name:nexthop" ("error: Local delivery only!", "lmtp:unix:private/dovecot-lmtp",
// "smtp:[relay.example]:587").
//
// Agents are small: one method that delivers a message to some of its
// recipients and says, per recipient, sent, deferred or bounced (with the
// enhanced status code and the text Postfix would log). The agent never
// talks SMTP to the client that sent the message, and the SMTP server
// never delivers: the queue stands between them.
//
// Implemented here: "virtual" (in-process delivery into the mailbox
// role's Maildir through internal/mailstore, the same code path as the
// LMTP server's; with virtual_mailbox_maps, into $virtual_mailbox_base as
// virtual(8) does), "lmtp" (unix: and inet: next hops), "smtp"/"relay"
// (MX lookup, relayhost, TLS levels), "error" and "discard", and "local"
// (local.go, Postfix's local(8) for mydestination: alias_maps through
// rewrite.ExpandAliases, ~/.forward, the system user of passwd(5) read
// directly, then mailbox_transport (guide 002's lmtp:unix:…),
// mailbox_command, a Maildir home_mailbox through the same mail store
// code as virtual, or an mbox file in the home or in
// mail_spool_directory with "From " lines, ">From" quoting and fcntl
// plus dot-lock locking; |command and /file destinations as
// allow_mail_to_commands and allow_mail_to_files permit, run as
// default_privs or the user; Delivered-To: loop detection and
// mailbox_size_limit). A transport that is configured but not
// implemented yet (pipe) defers its recipients with "4.3.0 mail
// transport unavailable", as Postfix does for a transport it cannot
// run: the mail waits in the queue, it is not lost.
package transport
