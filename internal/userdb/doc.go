// Package userdb owns postcote's user databases the way Dovecot 2.3 runs
// them: passdbs that verify passwords, userdbs that say where a user's
// mail lives (uid, gid, home, mail and other extra fields), the password
// schemes, and the %variables of their settings.
//
// Drivers are built from the configuration's sections without the caller
// knowing them:
//
//	passdb { driver = passwd-file  args = scheme=CRYPT username_format=%u /etc/dovecot/users }
//	userdb { driver = passwd-file  args = username_format=%u /etc/dovecot/users
//	         default_fields = uid=vmail gid=vmail home=/home/vmail/%d/%n mail=sdbox:~/dbox }
//
// with NewPassDB(driver, args, opts) and NewUserDB(driver, args,
// defaultFields, overrideFields, opts). One file per driver:
// passwdfile*.go (Dovecot's passwd-file format, re-read when the file
// changes, so edits apply without a reload), static.go, ldap*.go (on
// internal/ldapx), sql*.go (on internal/sqlx); sysdb.go, shadow.go and
// pam*.go for system users: the passwd userdb and the passwd, shadow and
// pam passdbs, reading passwd(5), group(5) and shadow(5) directly
// (sysusers.go, no cgo or NSS). The pam passdb calls libpam only in a
// "-tags pam" cgo build; the default build applies pam_unix's rules to
// the shadow file itself (pam.go says how).
//
// A Checker ties the databases together in configuration order. It
// implements sasl.PasswordChecker for SMTP AUTH, IMAP, POP3 and the auth
// service; applies auth_username_chars and auth_username_format before any
// database sees a name; slows failed logins (auth_failure_delay, growing
// per remote IP and per user); and answers LookupUser with a
// mailstore.User for delivery and mailbox access. Back end failures are
// reported as sasl.ErrTempFail, never as a wrong password.
//
// Password schemes (scheme.go, scheme_kdf.go, crypt_*.go) follow Dovecot's
// names and encodings: "{SCHEME}data", with CRYPT dispatching on the
// crypt(3) prefix ($2y$ bcrypt, $1$ MD5-crypt, $5$/$6$ SHA-crypt, $y$
// yescrypt and $7$ scrypt (crypt_yescrypt.go), plain DES),
// SCRAM-SHA-1/256 stored credentials usable by both plaintext and SCRAM
// logins. Verification compares in constant time and refuses hashes whose
// cost is above Limits. Generate produces what "doveadm pw" prints.
//
// Passwords are never logged.
package userdb
