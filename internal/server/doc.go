// Package server turns a configuration folder into running services:
// the smtpd listeners of master.cf, the IMAP listeners of dovecot.conf's
// service blocks, the queue and its delivery agents, and the users of the
// passdb/userdb sections. It owns the process's sockets, reloads on
// SIGHUP without refusing a connection (a new generation of services takes
// over the sockets; the old one finishes its sessions), and stops
// gracefully on SIGTERM.
//
// Either role may be absent: no main.cf means no MTA, no dovecot.conf
// means no mailbox server. When both run in one process, the MTA's
// virtual transport delivers into the mailbox role's store directly,
// through the same code LMTP delivery uses.
package server
