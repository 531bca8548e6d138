// Package smtpd owns postcote's SMTP server: the smtp, submission and
// submissions services of master.cf. It speaks RFC 5321 with the ESMTP
// extensions PIPELINING (RFC 2920), SIZE (RFC 1870), 8BITMIME (RFC 6152),
// SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034, codes from RFC 3463),
// DSN (RFC 3461), CHUNKING (RFC 3030), STARTTLS (RFC 3207) and AUTH
// (RFC 4954), and answers in Postfix's words so that clients, log parsers
// and administrators see the replies they know.
//
// A session is a small state machine (greeted, authenticated, inside a mail
// transaction) served by one method per command; each method returns a
// Reply (code, enhanced code, text). Replies are buffered and flushed only
// when the client has nothing more pipelined, or before 354 (RFC 2920 3.1).
//
// Policy lives in restrictions.go: the Postfix restriction lists
// (smtpd_client_restrictions … smtpd_recipient_restrictions) are compiled
// once by New, so an unknown restriction name is a configuration error, and
// evaluated with Postfix's semantics (by default all of them at RCPT time,
// smtpd_delay_reject = yes).
//
// The session never delivers and never touches the spool: an accepted
// message goes to the Queue interface as a stream (Received header first,
// then the client's data with dot-stuffing removed and line ends made CRLF).
// The queue answers only once the message is durable, and only then does
// the client get 250. Routing knowledge comes through Addresses, passwords
// through sasl.PasswordChecker; internal/server adapts the real packages to
// these small interfaces.
//
// Every line read has a length limit and every read and write a deadline;
// message size, recipient count and error count are bounded as Postfix's
// message_size_limit, smtpd_recipient_limit and smtpd_*_error_limit say,
// and anvil.go keeps Postfix's per-client connection, message and
// recipient rates (smtpd_client_*_limit, anvil_rate_time_unit).
//
// Message content is stored as Postfix's "normal" smtpd_forbid_bare_newline
// treats it: lines end in CRLF (a bare LF is converted), and only
// CRLF "." CRLF ends DATA, so "LF . CRLF" cannot smuggle a second message.
//
// Files: server.go (listeners, limits, shutdown), session.go (the command
// loop, I/O, logs), commands.go (HELO … VRFY), data.go (DATA, BDAT, the
// Received header), auth.go (STARTTLS, AUTH), parse.go (RFC 5321 paths
// and ESMTP parameters), restrictions.go (the lists and their
// evaluation), restrictions_data.go (smtpd_data_restrictions,
// smtpd_end_of_data_restrictions), dns.go (the client's forward-confirmed
// name), dns_restrictions.go (reject_unknown_*), dns_rbl.go (DNS lists and
// reply templates), anvil.go. DNS goes through internal/dnsx's Resolver,
// the same the smtp client uses; every query has a timeout, and a DNS
// failure is never taken for a "no such domain".
package smtpd
