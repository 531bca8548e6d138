package e2e

import (
	"crypto/tls"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postcote/internal/sasl"
	"postcote/internal/sasl/sasltest"
	"postcote/internal/testenv"
)

// scramUser is carol with credentials a real Dovecot's doveadm made.
const scramUser = "carol@example.test:" + sasltest.SCRAMSHA256 + "::::::\n"

// startSCRAMDev starts the dev configuration with SCRAM-SHA-256 added to
// auth_mechanisms and carol added to the users.
func startSCRAMDev(t *testing.T) *testenv.Postcote {
	t.Helper()
	p := testenv.NewDev(t)
	for file, text := range map[string]string{
		"dovecot.conf": "auth_mechanisms = plain login scram-sha-256\nauth_failure_delay = 0\n",
		"users":        scramUser,
	} {
		f, err := os.OpenFile(filepath.Join(p.Dir, file), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(text); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	p.Start()
	return p
}

// scramAuth adapts internal/sasl's SCRAM client to net/smtp.
type scramAuth struct{ c *sasl.SCRAMClient }

func (a scramAuth) Start(*smtp.ServerInfo) (string, []byte, error) { return a.c.Start() }

func (a scramAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	if !more {
		return nil, nil
	}
	return a.c.Next(fromServer)
}

// TestSCRAMSubmission: submission (STARTTLS, smtpd_sasl_type = dovecot
// answered in-process) offers SCRAM-SHA-256 because dovecot.conf's
// auth_mechanisms does, and a SCRAM login there relays mail.
func TestSCRAMSubmission(t *testing.T) {
	p := startSCRAMDev(t)
	for _, pw := range []string{"pencil2", "pencil"} {
		c := smtpDial(t, p.Ports.Submission)
		if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
			t.Fatal(err)
		}
		if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN SCRAM-SHA-256" {
			t.Fatalf("AUTH %q, want PLAIN LOGIN SCRAM-SHA-256\n%s", mechs, p.Log())
		}
		sc, err := sasl.NewSCRAMClient("SCRAM-SHA-256", "carol@example.test", pw, "")
		if err != nil {
			t.Fatal(err)
		}
		err = c.Auth(scramAuth{sc})
		if pw != "pencil" {
			// net/smtp hangs up after a failed AUTH.
			if !replyIs(err, "535 5.7.8") {
				t.Errorf("wrong password: %v, want 535 5.7.8", err)
			}
			c.Close()
			continue
		}
		if err != nil {
			t.Fatalf("SCRAM-SHA-256: %v\n%s", err, p.Log())
		}
		if err := c.Mail("carol@example.test"); err != nil {
			t.Fatal(err)
		}
		if err := c.Rcpt("friend@elsewhere.example"); err != nil {
			t.Errorf("relay after SCRAM login: %v", err)
		}
		c.Close()
	}
}

// TestSCRAMIMAPWithoutTLS: with disable_plaintext_auth = yes, IMAP on
// 143 without STARTTLS refuses plaintext logins but takes SCRAM, as
// Dovecot does; GNU SASL's gsasl is the client (checks the server's
// signature; skipped without it) for a {SCRAM-SHA-256} user, and the
// demo user, whose password is a bcrypt hash, cannot use SCRAM.
func TestSCRAMIMAPWithoutTLS(t *testing.T) {
	p := startSCRAMDev(t)
	tests := []struct {
		user, pw string
		ok       bool
	}{
		{"carol@example.test", "pencil", true},
		{"carol@example.test", "wrong", false},
		{p.User, p.Pass, false},
	}
	for _, tt := range tests {
		out, ok := sasltest.GSASL(t, "imap", testenv.Addr(p.Ports.IMAP), "SCRAM-SHA-256", tt.user, tt.pw)
		if ok != tt.ok || (!ok && !strings.Contains(out, "NO [AUTHENTICATIONFAILED]")) {
			t.Errorf("gsasl %s: ok=%v, want %v\n%s\nserver log:\n%s", tt.user, ok, tt.ok, out, p.Log())
		}
	}
}
