package smtpd

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"postcote/internal/dnsx"
)

// TestDataRestrictions: smtpd_data_restrictions refuse at DATA (and the
// first BDAT), over a real session, with Postfix's replies and log lines.
func TestDataRestrictions(t *testing.T) {
	opts := baseOptions()
	opts.OpenTable = openMap
	opts.DataRestrictions = []string{"reject_unauth_pipelining", "reject_multi_recipient_bounce", "check_sender_access hash:/etc/postfix/sender_access"}
	ts := startServer(t, opts)

	// A bounce to two recipients.
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	c.cmd("MAIL FROM:<>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("RCPT TO:<postmaster@example.com>", "250 *")
	c.cmd("DATA", "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce")
	c.cmd("RSET", "250 *")

	// A sender the access table refuses; one recipient is logged.
	c.cmd("MAIL FROM:<spammer@bad.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "554 5.7.1 <spammer@bad.example>: Sender address rejected: go away")
	c.cmd("RSET", "250 *")

	// The same refusal for BDAT: every chunk of the message is refused.
	c.cmd("MAIL FROM:<spammer@bad.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	io.WriteString(c.conn, "BDAT 3\r\nabc")
	c.expect("554 5.7.1 <spammer@bad.example>: Sender address rejected: go away")
	io.WriteString(c.conn, "BDAT 2 LAST\r\nde")
	c.expect("554 5.7.1 <spammer@bad.example>: Sender address rejected: go away")
	c.cmd("MAIL FROM:<a@b.example>", "250 *") // the transaction ended with LAST

	// Content sent before the 354, even by an ESMTP client.
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.send("DATA", "Subject: early", "", "x", ".")
	c.expect("503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining")
	// The early content is now read as commands.
	c.expect("502 5.5.2 Error: command not recognized")
	c.expect("500 5.5.2 Error: bad syntax")
	c.expect("502 5.5.2 Error: command not recognized")
	c.expect("502 5.5.2 Error: command not recognized")

	// An ordinary message passes.
	c.cmd("RSET", "250 *")
	c.cmd("MAIL FROM:<a@b.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	c.send("Subject: fine", "", "x", ".")
	c.expect("250 2.0.0 Ok: queued as *")
	c.cmd("QUIT", "221 *")
	if n := len(ts.queue.messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
	waitFor(t, "log", func() bool {
		l := ts.log.String()
		return strings.Contains(l, "4TEST0001: reject: DATA from unknown[127.0.0.1]: 550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce; from=<> proto=ESMTP helo=<c.example>") &&
			strings.Contains(l, "4TEST0002: reject: DATA from unknown[127.0.0.1]: 554 5.7.1 <spammer@bad.example>: Sender address rejected: go away; from=<spammer@bad.example> to=<user@example.com> proto=ESMTP helo=<c.example>")
	})
}

// TestEndOfDataRestrictions: smtpd_end_of_data_restrictions refuse after
// the content, and the refused message is not queued (DATA and BDAT).
func TestEndOfDataRestrictions(t *testing.T) {
	opts := baseOptions()
	opts.OpenTable = openMap
	opts.EndOfDataRestrictions = []string{"check_sender_access hash:/etc/postfix/sender_access", "defer"}
	opts.SenderRestrictions = []string{} // the sender is judged only at the end
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	for _, tc := range []struct{ sender, want string }{
		{"spammer@bad.example", "554 5.7.1 <spammer@bad.example>: Sender address rejected: go away"},
		{"a@b.example", "450 4.7.1 <END-OF-MESSAGE>: End-of-data rejected: Access denied"},
	} {
		c.cmd("MAIL FROM:<"+tc.sender+">", "250 *")
		c.cmd("RCPT TO:<user@example.com>", "250 *")
		c.cmd("DATA", "354 *")
		c.send("Subject: x", "", strings.Repeat("line\r\n", 100)+".")
		c.expect(tc.want)
		// The transaction is over; BDAT gets the same verdict.
		c.cmd("MAIL FROM:<"+tc.sender+">", "250 *")
		c.cmd("RCPT TO:<user@example.com>", "250 *")
		io.WriteString(c.conn, "BDAT 5\r\nhello")
		c.expect("250 2.0.0 Ok: 5 bytes")
		c.send("BDAT 0 LAST")
		c.expect(tc.want)
	}
	// The friend passes (OK ends the list before "defer").
	c.cmd("MAIL FROM:<x@friend.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	c.send("Subject: x", "", "body", ".")
	c.expect("250 2.0.0 Ok: queued as *")
	c.cmd("QUIT", "221 *")
	msgs := ts.queue.messages()
	if len(msgs) != 1 || msgs[0].env.Sender != "x@friend.example" {
		t.Errorf("queued %d messages, want only the friend's", len(msgs))
	}
	waitFor(t, "log", func() bool {
		return strings.Contains(ts.log.String(), "reject: END-OF-MESSAGE from unknown[127.0.0.1]: 554 5.7.1 <spammer@bad.example>: Sender address rejected: go away; from=<spammer@bad.example> to=<user@example.com> proto=ESMTP helo=<c.example>")
	})
}

// TestSessionDNS: with a resolver, the session's client name is its
// forward-confirmed PTR name (logs, Received), and DNS restrictions refuse
// at RCPT time by default.
func TestSessionDNS(t *testing.T) {
	opts := baseOptions()
	opts.Resolver = testResolver(t)
	opts.SenderRestrictions = []string{"reject_unknown_sender_domain"}
	opts.ClientRestrictions = []string{"reject_unknown_reverse_client_hostname"}
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	for _, tc := range []struct{ sender, want string }{
		{"x@nowhere.example", "450 4.1.8 <x@nowhere.example>: Sender address rejected: Domain not found"},
		{"x@fail.example", "450 4.1.8 <x@fail.example>: Sender address rejected: Domain not found"},
		{"x@null.example", "550 5.7.27 <x@null.example>: Sender address rejected: Domain null.example does not accept mail (nullMX)"},
		{"x@mx.example", "250 2.1.5 Ok"},
	} {
		c.cmd("MAIL FROM:<"+tc.sender+">", "250 *")
		c.cmd("RCPT TO:<user@example.com>", tc.want)
		if !strings.HasPrefix(tc.want, "250") {
			c.cmd("RSET", "250 *")
		}
	}
	c.cmd("DATA", "354 *")
	c.send("Subject: x", "", "body", ".")
	c.expect("250 *")
	c.cmd("QUIT", "221 *")
	msgs := ts.queue.messages()
	if len(msgs) != 1 || msgs[0].env.ClientName != "localhost.example" ||
		!strings.HasPrefix(msgs[0].content, "Received: from c.example (localhost.example [127.0.0.1])") {
		t.Fatalf("messages %+v", msgs)
	}
	waitFor(t, "log", func() bool {
		l := ts.log.String()
		return strings.Contains(l, "connect from localhost.example[127.0.0.1]") &&
			strings.Contains(l, "NOQUEUE: reject: RCPT from localhost.example[127.0.0.1]: 450 4.1.8 <x@nowhere.example>: Sender address rejected: Domain not found; from=<x@nowhere.example> to=<user@example.com>")
	})

	// Without a PTR the client is unknown and refused.
	opts.Resolver = &dnsx.StaticResolver{}
	ts = startServer(t, opts)
	c = greet(t, ts.addr)
	c.cmd("HELO c.example", "250 *")
	c.cmd("MAIL FROM:<x@mx.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", fmt.Sprintf("450 4.7.1 Client host rejected: cannot find your reverse hostname, [%s]", "127.0.0.1"))
	c.cmd("QUIT", "221 *")
}
