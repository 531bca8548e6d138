package smtpd

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestAnvilWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	a := NewAnvil(time.Minute, func() time.Time { return now })
	for i := 1; i <= 3; i++ {
		if n := a.mail("smtp:192.0.2.1"); n != i {
			t.Fatalf("mail rate %d, want %d", n, i)
		}
	}
	if n := a.mail("smtp:192.0.2.2"); n != 1 {
		t.Errorf("other client rate %d", n)
	}
	now = now.Add(time.Minute)
	if n := a.mail("smtp:192.0.2.1"); n != 1 {
		t.Errorf("rate after a time unit %d, want 1", n)
	}
	c, r := a.connect("smtp:192.0.2.3")
	c2, r2 := a.connect("smtp:192.0.2.3")
	if c != 1 || r != 1 || c2 != 2 || r2 != 2 {
		t.Errorf("connect counts %d/%d %d/%d", c, r, c2, r2)
	}
	a.disconnect("smtp:192.0.2.3")
	a.disconnect("smtp:192.0.2.3")
	now = now.Add(2 * time.Minute)
	a.mail("smtp:192.0.2.9") // triggers the sweep
	a.mu.Lock()
	n := len(a.clients)
	a.mu.Unlock()
	if n != 1 {
		t.Errorf("%d clients remembered after the sweep, want 1", n)
	}
}

func TestClientLimits(t *testing.T) {
	opts := baseOptions()
	opts.ClientConnectionCountLimit = 1
	opts.ClientConnectionRateLimit = 3
	opts.ClientMessageRateLimit = 1
	opts.ClientRecipientRateLimit = 2
	ts := startServer(t, opts)

	c1 := greet(t, ts.addr)
	c2 := dial(t, ts.addr)
	c2.expect("421 4.7.0 mx.example.com Error: too many connections from 127.0.0.1")
	c1.cmd("HELO c", "250 *")
	c1.cmd("MAIL FROM:<a@b.example>", "250 *")
	c1.cmd("RCPT TO:<user@example.com>", "250 *")
	c1.cmd("RCPT TO:<user@virtual.test>", "250 *")
	c1.cmd("RCPT TO:<group@alias.test>", "450 4.7.1 Error: too many recipients from 127.0.0.1")
	c1.cmd("RSET", "250 *")
	c1.cmd("MAIL FROM:<a@b.example>", "450 4.7.1 Error: too much mail from 127.0.0.1")
	c1.cmd("QUIT", "221 *")
	waitFor(t, "release", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return len(ts.srv.sessions) == 0
	})
	// Third connection in the time unit: still within the rate of 3.
	greet(t, ts.addr).cmd("QUIT", "221 *")
	waitFor(t, "release", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return len(ts.srv.sessions) == 0
	})
	dial(t, ts.addr).expect("421 4.7.0 mx.example.com Error: too many connections from 127.0.0.1")
	for _, w := range []string{
		"warning: Connection concurrency limit exceeded: 2 from unknown[127.0.0.1] for service smtp",
		"warning: Recipient address rate limit exceeded: 3 from unknown[127.0.0.1] for service smtp",
		"warning: Message delivery request rate limit exceeded: 2 from unknown[127.0.0.1] for service smtp",
		"warning: Connection rate limit exceeded: 4 from unknown[127.0.0.1] for service smtp",
	} {
		w := w
		waitFor(t, w, func() bool { return strings.Contains(ts.log.String(), w) })
	}

	// smtpd_client_event_limit_exceptions: trusted clients are not counted.
	opts.ClientEventLimitExceptions = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	ts = startServer(t, opts)
	a, b := greet(t, ts.addr), greet(t, ts.addr)
	a.cmd("MAIL FROM:<a@b.example>", "250 *")
	a.cmd("RSET", "250 *")
	a.cmd("MAIL FROM:<a@b.example>", "250 *")
	b.cmd("QUIT", "221 *")
}
