// Command loginbench measures IMAP logins per second of postcote and, in
// the same run, of a private Dovecot 2.3, for each passdb/userdb driver
// (passwd-file; LDAP binding as the user, guide 000's auth_bind, and
// LDAP reading userPassword, pass_attrs; SQL on MariaDB and on
// PostgreSQL), with a cheap password scheme and with SHA512-CRYPT, and
// prints the ratio postcote ÷ Dovecot. It answers issue 3's last point.
//
// It owns:
//
//   - The users (backends.go): -users per scheme with random passwords,
//     cheapNNNN@bench.test stored as {PLAIN} (LDAP: {SSHA}, which slapd
//     itself checks when the passdb binds as the user) and
//     cryptNNNN@bench.test as {SHA512-CRYPT} (LDAP: {CRYPT}$6$…), loaded
//     into a passwd-file, into a slapd started by internal/testenv, and
//     into a users table on a MariaDB and a PostgreSQL started by
//     internal/testenv. testenv's helpers take a testing.TB; harness
//     (tb.go) gives them one outside `go test`.
//   - The two servers (servers.go): `postcote serve -c DIR` with only a
//     dovecot.conf (no main.cf, so no MTA role competes), and Dovecot as
//     `dovecot -F -c DIR/dovecot.conf` with its own base_dir, state_dir
//     and log in DIR; /etc/dovecot is neither read nor started. Both get
//     the same passdb and userdb sections, IMAP on a free 127.0.0.1 port,
//     plaintext logins without TLS, Maildirs under DIR/mail owned by
//     nobody (Dovecot refuses root), and each server's defaults otherwise.
//   - The load (imap.go, load.go): C clients, each in a loop opening a
//     new connection, reading the greeting, logging in (LOGIN, or
//     AUTHENTICATE PLAIN with -mech plain) as the next user in turn, and
//     logging out, until -duration or -logins; every read and write has a
//     deadline. Every login is correct, so no failure delay applies; one
//     that fails is counted, shown, and makes the program exit 1.
//
// Each round starts every server afresh for every driver, logs each user
// in once (Maildirs made, connection pools filled), then measures each
// scheme at each client count. Only loopback addresses are ever dialled.
// See bench/README.md for how to run it and read its output.
package main
