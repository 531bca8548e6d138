// Package sasltest gives the SASL tests of every protocol (smtpd, imapd,
// authd, the server wiring, e2e) the same users and the same outside
// client: a passwd-file whose SCRAM credentials come from a real Dovecot,
// userdb's Checker over it, and GNU SASL's gsasl(1) as a SCRAM client
// that is not postcote's.
package sasltest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/userdb"
)

// Password is the password of every user in Users.
const Password = "pencil"

// SCRAMSHA256 is what Dovecot 2.3.19's "doveadm pw -s SCRAM-SHA-256 -p
// pencil" printed.
const SCRAMSHA256 = "{SCRAM-SHA-256}4096,Yhkh+hjEMgk24YZsYy3P5g==,9ldF5DUpMvnCjZZt3X00hnDJHdcR6MNUjtEd1MBmfxQ=,hlEmTdadupvtOnkeU6KkgQjnYuSOMLErj+MyWheasJw="

// SHA512Crypt is "doveadm pw -s SHA512-CRYPT -p pencil": a hash from
// which no SCRAM credentials can be had.
const SHA512Crypt = "{SHA512-CRYPT}$6$rgDQAwwO.CrIifXN$S7wcGYmxwIl3relsp9uNjp5ZMUow9jctid.czYK0hWMMvsaANk9bYh4zWV9fzGa1VUZpY8ZNEXR265zWplC7Q/"

// Users returns passwd-file lines for scram@domain ({SCRAM-SHA-256}),
// plain@domain ({PLAIN}) and crypt@domain ({SHA512-CRYPT}), all with
// Password.
func Users(domain string) string {
	return "scram@" + domain + ":" + SCRAMSHA256 + "\n" +
		"plain@" + domain + ":{PLAIN}" + Password + "\n" +
		"crypt@" + domain + ":" + SHA512Crypt + "\n"
}

// Checker returns userdb's Checker over a passwd-file holding Users(domain),
// with no failure delay.
func Checker(t testing.TB, domain string) *userdb.Checker {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(Users(domain)), 0o600); err != nil {
		t.Fatal(err)
	}
	pdb, err := userdb.NewPassDB("passwd-file", "scheme=CRYPT username_format=%u "+path, userdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	co := userdb.DefaultCheckerOptions()
	co.FailureDelay = 0
	return userdb.NewChecker([]userdb.PassDB{pdb}, nil, co)
}

// GSASL runs gsasl(1) as an IMAP or SMTP client (proto "imap" or "smtp")
// of addr without STARTTLS, logging in with mech; it returns gsasl's
// transcript and whether the login worked. The test is skipped when
// gsasl is not installed (apt-get install -y gsasl).
func GSASL(t testing.TB, proto, addr, mech, user, password string) (string, bool) {
	t.Helper()
	bin, err := exec.LookPath("gsasl")
	if err != nil {
		t.Skip("gsasl not installed (apt-get install -y gsasl)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--client", "--"+proto, "--connect="+addr, "--no-starttls",
		"--mechanism="+mech, "--authentication-id="+user, "--password="+password, "--verbose").CombinedOutput()
	if _, exit := err.(*exec.ExitError); err != nil && !exit {
		t.Fatalf("gsasl: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("gsasl timed out:\n%s", out)
	}
	return strings.TrimSpace(string(out)), err == nil
}
