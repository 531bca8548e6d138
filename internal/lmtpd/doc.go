// Package lmtpd is the LMTP server (RFC 2033) of the mailbox role, the
// part of Dovecot's lmtp service that Postfix's virtual_transport =
// lmtp:unix:private/dovecot-lmtp (or lmtp:inet:host:24) talks to.
//
// It owns the protocol only. The session accepts LHLO (never HELO/EHLO,
// RFC 2033 4.1), MAIL, RCPT, DATA, RSET, NOOP, VRFY, QUIT and STARTTLS
// when a certificate is configured, and BDAT; it announces PIPELINING,
// ENHANCEDSTATUSCODES, 8BITMIME, CHUNKING (RFC 3030), SMTPUTF8 and SIZE. Command and path
// syntax is internal/smtpd's parser (LMTP is SMTP's command set).
// Each RCPT is checked against the userdb at once: an unknown user gets
// "550 5.1.1 <x> User doesn't exist: x", a userdb that cannot answer
// "451 4.3.0", as Dovecot words them. After the final dot of DATA the
// message (spooled in memory, or in a temporary file past 1 MiB) is
// delivered to each accepted recipient in turn through the Delivery
// interface — in postcote that is transport.Mailbox, the same code the
// queue's virtual transport uses — and one reply per recipient is sent
// (RFC 2033 4.2), each only after that recipient's copy is durable. BDAT
// LAST ends a chunked message the same way.
//
// Logs follow Dovecot's shapes: "lmtp(PID): Connect from IP",
// "lmtp(user)<PID><session>: msgid=<id>: saved mail to INBOX",
// "lmtp(PID): Disconnect from IP: Logged out (state=READY)".
package lmtpd
