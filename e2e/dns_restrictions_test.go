package e2e

import (
	"fmt"
	"net/smtp"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDNSRestrictions runs a postcote built with the postcote_testdns tag
// against a fake DNS zone (POSTCOTE_TEST_DNS): with
// smtpd_sender_restrictions = reject_unknown_sender_domain it refuses a
// sender whose domain does not exist, defers one whose DNS fails, refuses
// a null-MX domain, and accepts one with an MX; the client's name comes
// from its forward-confirmed PTR record in the same zone.
func TestDNSRestrictions(t *testing.T) {
	m := newMTA(t, "demo@example.test", "127.0.0.1", testDNSBinary(t))
	zone := filepath.Join(m.dir, "test-dns.zone")
	if err := os.WriteFile(zone, []byte(strings.Join([]string{
		"good.test      MX  10 mx.good.test",
		"mx.good.test   A   192.0.2.25",
		"null.test      MX  0 .",
		"broken.test    SERVFAIL",
		"127.0.0.1      PTR client.test",
		"client.test    A   127.0.0.1",
	}, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m.env = []string{"POSTCOTE_TEST_DNS=" + zone}
	m.setMain("smtpd_sender_restrictions = reject_unknown_sender_domain")
	m.start()

	c, err := smtp.Dial(m.smtpAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.test"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ sender, want string }{
		{"someone@nowhere.test", "450 4.1.8 <someone@nowhere.test>: Sender address rejected: Domain not found"},
		{"someone@broken.test", "450 4.1.8 <someone@broken.test>: Sender address rejected: Domain not found"},
		{"someone@null.test", "550 5.7.27 <someone@null.test>: Sender address rejected: Domain null.test does not accept mail (nullMX)"},
	} {
		if err := c.Mail(tc.sender); err != nil {
			t.Fatalf("MAIL FROM:<%s>: %v", tc.sender, err)
		}
		// smtpd_delay_reject = yes: the refusal comes at RCPT.
		if err := c.Rcpt(m.user); !replyIs(err, tc.want) {
			t.Errorf("RCPT for sender %s: %v, want %q", tc.sender, err, tc.want)
		}
		if err := c.Reset(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}

	if err := sendPlain(m.smtpAddr(), "someone@good.test", m.user, "from-good", "an MX is enough"); err != nil {
		t.Fatalf("sender with an MX: %v\n%s", err, m.Log())
	}
	msgs := messagesIn(t, m.maildir(), 1, m)
	received, ok := msgs["from-good"]
	if len(msgs) != 1 || !ok {
		t.Fatalf("delivered %d messages, want only from-good", len(msgs))
	}
	if !strings.Contains(received, "(client.test [127.0.0.1])") {
		t.Errorf("Received header does not name the verified client:\n%s", received)
	}
	m.waitLog(10*time.Second,
		"connect from client.test[127.0.0.1]",
		"NOQUEUE: reject: RCPT from client.test[127.0.0.1]: 450 4.1.8 <someone@nowhere.test>: Sender address rejected: Domain not found; from=<someone@nowhere.test> to=<"+m.user+">",
		fmt.Sprintf("from=<%s>", "someone@good.test"))
}
