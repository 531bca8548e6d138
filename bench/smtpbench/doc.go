// Command smtpbench measures SMTP accept throughput and delivered-to-Maildir
// throughput of postcote and, in the same run, of Postfix and of Postfix →
// LMTP → Dovecot, and prints the ratios. The machines this runs on are
// shared and noisy, so absolute figures vary from run to run; the ratios,
// measured minutes apart on the same machine, are what the project reports.
//
// It owns three things:
//
//   - The load generator (loadgen.go), shaped like Postfix's smtp-source:
//     C concurrent clients, each opening an SMTP session per message by
//     default (EHLO, MAIL, RCPT, DATA, QUIT; -per-session sends more in
//     one), N messages in all, each of -size bytes with a unique Subject
//     and Message-ID, to one recipient, over loopback only. It measures
//     accepted messages per second (N over the time from the first
//     connection to the last 250 after DATA) and the p50/p99 latency from
//     DATA to that 250.
//   - The Maildir watcher (maildir.go), which counts new/ and cur/ every
//     10 ms and gives delivered messages per second: N over the time from
//     the first connection until all N are in the Maildir.
//   - The targets, each set up afresh in a temporary folder for every run
//     (empty queue, empty Maildir) and stopped after it: postcote (postcote.go) runs `postcote serve -c DIR` on a
//     `postcote dev` configuration; Postfix (postfix.go) runs a private
//     instance (`postfix -c DIR/etc start`) that queues each message with
//     its fsync and then discards it, and a second one that delivers over
//     LMTP to a private Dovecot (dovecot.go, `dovecot -F -c …`) storing
//     into a Maildir. The machine's own /etc/postfix and /etc/dovecot are
//     never read for settings nor started.
//
// Nothing is sent off the machine: the load generator refuses any address
// but a loopback one, and the Postfix instances have no relay transport.
// See bench/README.md for how to run it and read its output.
package main
