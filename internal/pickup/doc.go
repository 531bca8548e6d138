// Package pickup is local mail submission: Postfix's maildrop queue,
// postdrop, pickup and the part of cleanup that local mail needs.
//
// `postcote sendmail` may run while the server is down, and the queue is
// a single-writer log owned by `postcote serve`; so sendmail never writes
// the queue. It writes one file into the maildrop folder and exits 0 only
// once that file is durable; the server's pickup goroutine queues each
// file through queue.Enqueue (durable) and only then removes it. A crash
// between the two gives at worst a duplicate, never a loss.
//
// # On disk
//
//	QDIR/maildrop/              mode 1733: anyone may add, nobody may list
//	QDIR/maildrop/.t.NAME       a file being written (ignored by pickup)
//	QDIR/maildrop/NAME          a complete submission
//	QDIR/corrupt/maildrop.NAME  a submission pickup could not read, kept
//	PUBLIC/pickup               unixgram socket, mode 0666: any datagram
//	                            wakes pickup at once (Postfix's fifo)
//
// QDIR is $queue_directory/postcote and PUBLIC is $queue_directory/public.
// Postfix makes maildrop mode 0730 group postdrop and postdrop setgid;
// postcote is one binary and cannot be setgid for one subcommand only, so
// the folder is world-writable with the sticky bit and no read permission
// for others (Postfix's maildrop before postdrop existed): a user can add
// a file but cannot list, read or remove anyone else's. Pickup trusts
// nothing in a file about who wrote it: the submitting user is the file's
// owner (fstat), and a file with more than one link (a hard link to
// someone else's file) or that is not a regular file is refused.
//
// A submission file is written to a temporary name, fsynced, renamed and
// its folder fsynced. Its format (version 1) is a text header, one item a
// line, an empty line, then the message exactly as given to sendmail
// (LF or CRLF line ends):
//
//	POSTCOTE-MAILDROP 1
//	S sender        envelope sender from -f/-r ("S " alone: the null sender);
//	                absent: the submitting user @ myorigin
//	F full name     -F, else $NAME, else the GECOS full name of the
//	                submitting user (sendmail reads passwd(5)), for a
//	                From: header pickup adds
//	R recipient     one per envelope recipient from the command line,
//	                as given (unqualified: pickup keeps it as the
//	                original recipient)
//	T               -t: add the recipients of To:, Cc:, Bcc: (RFC 5322 3.6.3)
//	N notify        -N: RFC 3461 NOTIFY for every recipient
//	V envid         -V: RFC 3461 ENVID
//	X ret           -R: RFC 3461 RET (FULL or HDRS)
//	B body          -B: 7BIT or 8BITMIME
//
// No value may hold CR, LF or NUL; a header over 1 MiB or an unknown item
// makes the file corrupt.
//
// # What pickup does to a message (Postfix's pickup and cleanup)
//
// Line ends become CRLF. A Received header goes first, as Postfix's pickup
// writes it: "Received: by myhostname (postcote, from userid UID) id ID;
// date". With -t the recipients of To:, Cc: and Bcc: (or of Resent-To:,
// Resent-Cc:, Resent-Bcc: when the message has any, RFC 5322 3.6.6) are
// added to those of the command line. Bcc: and Resent-Bcc: are removed.
// Missing headers are added at the end of the header as Postfix's cleanup
// does for local submissions (always, whatever always_add_missing_headers
// says, which is about remote mail): "Message-Id: <YYYYMMDDhhmmss.ID@myhostname>",
// "Date:" and "From:" (the full name and the envelope sender, in the form
// header_from_format says: standard "Full Name <sender>", the name quoted
// when it has specials, or obsolete "sender (Full Name)"). Addresses
// without a domain get "@myorigin" (Postfix's append_at_myorigin), in the
// envelope and in the address headers (From:, To:, Cc:, Reply-To:,
// Sender: and their Resent- forms), display names and comments kept. A
// recipient of the command line keeps the address as given (without <>)
// as its original recipient, which the queue logs as orig_to= when it
// differs from to= ("sendmail root": to=<root@myorigin>, orig_to=<root>),
// as Postfix's cleanup does; one from the header under -t has its
// qualified address as original, as in Postfix, which takes them from the
// rewritten header.
// Not done: Resent-Message-Id/Resent-Date/Resent-From for a resent
// message, and canonical or masquerading rewrites (Postfix's
// canonical_maps, masquerade_domains).
//
// The site settings (myhostname, myorigin, header_from_format) are read when the server
// starts; a reload does not change them for pickup.
//
// Waiting lists the files in maildrop for mailq while the server is down.
//
// # Sendmail -bs
//
// ServeSMTP is the minimal RFC 5321 dialogue `sendmail -bs` speaks on its
// standard input and output (as Postfix runs smtpd in stand-alone mode):
// HELO, EHLO, MAIL, RCPT, DATA, RSET, NOOP, VRFY (252), QUIT; each message
// becomes one maildrop file.
package pickup
