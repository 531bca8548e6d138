package e2e

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// TestLimitsFromMainCF: main.cf's client and size limits reach the SMTP
// server, with Postfix's replies, and the server keeps serving.
func TestLimitsFromMainCF(t *testing.T) {
	p := testenv.NewDev(t)
	setMain(t, p, "mynetworks", "192.0.2.0/24") // 127.0.0.1 is a stranger, not exempt
	// Three connections a minute: the harness's readiness probe, then two
	// of ours; the fourth is refused.
	setMain(t, p, "smtpd_client_connection_rate_limit", "3")
	setMain(t, p, "message_size_limit", "2000")
	p.Start()

	greet := func() string {
		c, err := net.DialTimeout("tcp", testenv.Addr(p.Ports.SMTP), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}
	if g := greet(); !strings.HasPrefix(g, "220") {
		t.Fatalf("first connection: %q", g)
	}
	c := smtpDial(t, p.Ports.SMTP)
	if ok, size := c.Extension("SIZE"); !ok || size != "2000" {
		t.Errorf("EHLO SIZE %q, want 2000", size)
	}
	if err := c.Mail("someone@elsewhere.example"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(p.User); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: big\r\n\r\n" + strings.Repeat("0123456789\r\n", 400)))
	if err := w.Close(); !replyIs(err, "552 5.3.4") {
		t.Errorf("message over message_size_limit: %v, want 552 5.3.4", err)
	}
	c.Close()
	if g := greet(); !strings.HasPrefix(g, "421 4.7.0") {
		t.Errorf("fourth connection within a minute: %q, want 421 4.7.0", g)
	}
	// Other services still answer.
	if g := func() string {
		c, err := net.DialTimeout("tcp", testenv.Addr(p.Ports.IMAP), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('\n')
		return line
	}(); !strings.HasPrefix(g, "* OK") {
		t.Errorf("IMAP greeting %q", g)
	}
}
