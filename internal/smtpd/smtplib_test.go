package smtpd

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestPythonSmtplib sends a message with Python's smtplib (STARTTLS and
// AUTH LOGIN/PLAIN as smtplib chooses), a client we did not write.
func TestPythonSmtplib(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	srvTLS, _, certPEM := tlsPair(t)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	opts := baseOptions()
	opts.TLS = srvTLS
	opts.SASLEnable = true
	opts.TLSAuthOnly = true
	ts := startServer(t, opts)
	host, port, _ := strings.Cut(ts.addr, ":")
	out, err := exec.Command(python, "testdata/smtplib_send.py", host, port, ca, "user@example.com", "secret", "friend@elsewhere.example").CombinedOutput()
	if err != nil {
		t.Fatalf("smtplib: %v\n%s\nserver log:\n%s", err, out, ts.log.String())
	}
	msgs := ts.queue.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages queued", len(msgs))
	}
	m := msgs[0]
	if m.env.Protocol != "ESMTPSA" || m.env.AuthUser != "user@example.com" || m.env.Helo != "python.example" ||
		len(m.env.Recipients) != 1 || m.env.Recipients[0].Address != "friend@elsewhere.example" {
		t.Errorf("envelope %+v", m.env)
	}
	if !strings.Contains(m.content, "\r\nSubject: smtplib test\r\n") || !strings.Contains(m.content, "\r\n.A line starting with a dot.\r\n") {
		t.Errorf("content %q", m.content)
	}
}
