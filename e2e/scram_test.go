package e2e

import (
	"context"
	"crypto/tls"
	"errors"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/sasl"
	"postcote/internal/testenv"
)

// scramUser is carol with the {SCRAM-SHA-256} credentials Dovecot
// 2.3.19's "doveadm pw -s SCRAM-SHA-256 -p pencil" wrote.
const scramUser = "carol@example.test:{SCRAM-SHA-256}4096,Yhkh+hjEMgk24YZsYy3P5g==,9ldF5DUpMvnCjZZt3X00hnDJHdcR6MNUjtEd1MBmfxQ=,hlEmTdadupvtOnkeU6KkgQjnYuSOMLErj+MyWheasJw=::::::\n"

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
// signature) for a {SCRAM-SHA-256} user, and the demo user, whose
// password is a bcrypt hash, cannot use SCRAM.
func TestSCRAMIMAPWithoutTLS(t *testing.T) {
	needTool(t, "gsasl")
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
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, "gsasl", "--client", "--imap", "--connect="+testenv.Addr(p.Ports.IMAP), "--no-starttls",
			"--mechanism=SCRAM-SHA-256", "--authentication-id="+tt.user, "--password="+tt.pw).CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		if (err == nil) != tt.ok {
			t.Errorf("gsasl %s: %v; want ok=%v\n%s\nserver log:\n%s", tt.user, err, tt.ok, out, p.Log())
		}
		if !tt.ok && !strings.Contains(string(out), "NO [AUTHENTICATIONFAILED]") {
			t.Errorf("gsasl %s: no NO [AUTHENTICATIONFAILED] in\n%s", tt.user, out)
		}
	}
}
