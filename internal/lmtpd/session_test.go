package lmtpd

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/testenv"
	"postcote/internal/transport"
)

// lhlo says LHLO and reads the reply up to its last line.
func (c *client) lhlo() []string {
	c.t.Helper()
	c.send("LHLO client.example\r\n")
	var lines []string
	for {
		l := c.line()
		lines = append(lines, l)
		if !strings.HasPrefix(l, "250-") {
			return lines
		}
	}
}

// TestStoredCopy checks what lands in the Maildir: Return-Path,
// Delivered-To, Dovecot's Received header, unstuffed dots, bare LF made
// CRLF on the wire and LF in the file, and the Dovecot-style log lines.
func TestStoredCopy(t *testing.T) {
	ts := startServer(t, Options{AddReceived: true})
	c := dial(t, ts.addr)
	c.line()
	c.lhlo()
	c.send("MAIL FROM:<s@example.org>\r\nRCPT TO:<info+tag@example.jp>\r\nDATA\r\n")
	for _, want := range []string{"250 2.1.0 OK", "250 2.1.5 OK", "354 OK"} {
		if got := c.line(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	c.send("Subject: x\r\nMessage-ID: <id1@example.org>\r\n\r\n..one\nbare lf\r\n.\r\n")
	if got := c.line(); !match("250 2.0.0 <info+tag@example.jp> * Saved", got) {
		t.Fatalf("got %q", got)
	}
	c.send("QUIT\r\n")
	c.line()
	msgs := ts.inbox(t, "info@example.jp")
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	for _, want := range []string{
		"Return-Path: <s@example.org>\nDelivered-To: info+tag@example.jp\nReceived: from client.example ([127.0.0.1])\n\tby mx.example.jp with LMTP id ",
		"\n\t(envelope-from <s@example.org>)\n\tfor <info+tag@example.jp>; ",
		"\nSubject: x\nMessage-ID: <id1@example.org>\n\n.one\nbare lf\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("stored copy lacks %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "\r") {
		t.Errorf("stored copy has CR: %q", m)
	}
	// The disconnect line comes when the session ends; poll for it.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(ts.log.String(), "Disconnect from") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	log := ts.log.String()
	for _, want := range []string{
		"lmtp(", "): Connect from 127.0.0.1",
		"lmtp(info@example.jp)<", ">: msgid=<id1@example.org>: saved mail to INBOX",
		"): Disconnect from 127.0.0.1: Logged out (state=READY)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

// TestLargeMessageSpills sends a message past the in-memory limit to two
// recipients; both get the whole message from the spool file.
func TestLargeMessageSpills(t *testing.T) {
	ts := startServer(t, Options{SpoolDir: t.TempDir()})
	c := dial(t, ts.addr)
	c.c.SetDeadline(time.Now().Add(30 * time.Second))
	c.line()
	c.lhlo()
	c.send("MAIL FROM:<s@example.org>\r\nRCPT TO:<info@example.jp>\r\nRCPT TO:<bob@example.jp>\r\nDATA\r\n")
	for range 4 {
		c.line()
	}
	line := strings.Repeat("x", 998) + "\r\n"
	var b strings.Builder
	b.WriteString("Subject: big\r\n\r\n")
	for b.Len() < 3*memLimit {
		b.WriteString(line)
	}
	c.send(b.String() + ".\r\n")
	for _, u := range []string{"info", "bob"} {
		if got := c.line(); !match("250 2.0.0 <"+u+"@example.jp> * Saved", got) {
			t.Fatalf("got %q", got)
		}
	}
	for _, u := range []string{"info@example.jp", "bob@example.jp"} {
		msgs := ts.inbox(t, u)
		if len(msgs) != 1 || strings.Count(msgs[0], strings.Repeat("x", 998)+"\n") != strings.Count(b.String(), line) {
			t.Errorf("%s: stored copy incomplete", u)
		}
	}
}

// TestLimitsAndTimeouts covers an over-long command line, the idle
// timeout, and a client that disconnects in the middle of DATA.
func TestLimitsAndTimeouts(t *testing.T) {
	t.Run("line too long", func(t *testing.T) {
		ts := startServer(t, Options{MaxLineLength: 100})
		c := dial(t, ts.addr)
		c.line()
		c.send("NOOP " + strings.Repeat("a", 5000) + "\r\nNOOP\r\n")
		if got := c.line(); got != "500 5.5.2 Line too long" {
			t.Errorf("got %q", got)
		}
		if got := c.line(); got != "250 2.0.0 OK" {
			t.Errorf("after the long line: got %q", got)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		ts := startServer(t, Options{Timeout: 100 * time.Millisecond})
		c := dial(t, ts.addr)
		c.line()
		if got := c.line(); got != "421 4.4.2 Disconnected client for inactivity" {
			t.Errorf("got %q", got)
		}
		if got := c.line(); got != "<closed>" {
			t.Errorf("got %q, want the connection closed", got)
		}
	})
	t.Run("disconnect during DATA", func(t *testing.T) {
		ts := startServer(t, Options{})
		c := dial(t, ts.addr)
		c.line()
		c.lhlo()
		c.send("MAIL FROM:<>\r\nRCPT TO:<info@example.jp>\r\nDATA\r\n")
		for range 3 {
			c.line()
		}
		c.send("Subject: cut\r\n\r\npartial")
		c.c.Close()
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(ts.log.String(), "during DATA") && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := len(ts.inbox(t, "info@example.jp")); n != 0 {
			t.Errorf("a cut message was delivered (%d)", n)
		}
	})
}

// TestShutdown: an idle session is told 421 and closed; Shutdown returns.
func TestShutdown(t *testing.T) {
	dir := t.TempDir()
	mb := &transport.Mailbox{Users: users{dir}, Store: mailstore.NewStore(mailstore.Options{})}
	srv := New(Options{Hostname: "mx"}, mb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	c := dial(t, ln.Addr().String())
	c.line()
	c.send("NOOP\r\n")
	c.line()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := c.line(); got != "421 4.3.2 Shutting down" {
		t.Errorf("got %q", got)
	}
	if err := <-done; err != ErrServerClosed {
		t.Errorf("Serve returned %v", err)
	}
}

// TestSTARTTLS: STARTTLS is offered, the session restarts after it (LHLO
// again, STARTTLS no longer offered), and pipelined commands after
// STARTTLS end the session (CVE-2011-0411).
func TestSTARTTLS(t *testing.T) {
	ts := startServer(t, Options{TLS: testenv.NewTestCA(t, "lmtpd test CA").ServerTLS(t, "mx.example.jp")})
	c := dial(t, ts.addr)
	c.line()
	if lines := c.lhlo(); !strings.Contains(strings.Join(lines, "\n"), "250-STARTTLS") {
		t.Fatalf("STARTTLS not offered: %q", lines)
	}
	c.send("MAIL FROM:<a@example.org>\r\n")
	c.line()
	c.send("STARTTLS\r\n")
	if got := c.line(); got != "503 5.5.1 STARTTLS not allowed during a transaction" {
		t.Errorf("got %q", got)
	}
	c.send("RSET\r\nSTARTTLS\r\n")
	c.line()
	if got := c.line(); got != "220 2.0.0 Begin TLS negotiation now." {
		t.Fatalf("got %q", got)
	}
	tc := tls.Client(c.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.c = tc
	c.r.Reset(tc)
	c.send("MAIL FROM:<a@example.org>\r\n")
	if got := c.line(); got != "503 5.5.1 Invalid command: LHLO needed first" {
		t.Errorf("state not reset after STARTTLS: %q", got)
	}
	if lines := c.lhlo(); strings.Contains(strings.Join(lines, "\n"), "STARTTLS") {
		t.Errorf("STARTTLS offered again: %q", lines)
	}

	c2 := dial(t, ts.addr)
	c2.line()
	c2.lhlo()
	c2.send("STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
	if got := c2.line(); got != "501 5.5.1 Commands pipelined after STARTTLS" {
		t.Errorf("got %q", got)
	}
	if got := c2.line(); got != "<closed>" {
		t.Errorf("got %q, want closed", got)
	}
}

// TestUnixSocket serves on a unix socket, as guide 003's listener.
func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	mb := &transport.Mailbox{Users: users{dir}, Store: mailstore.NewStore(mailstore.Options{})}
	srv := New(Options{Hostname: "mx"}, mb)
	path := filepath.Join(dir, "lmtp")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	defer func() {
		srv.Shutdown(context.Background())
		<-done
	}()
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c := &client{t: t, c: conn}
	c.r = newReader(conn)
	defer conn.Close()
	c.line()
	c.lhlo()
	c.send("MAIL FROM:<>\r\nRCPT TO:<bob@example.jp>\r\nDATA\r\nSubject: u\r\n\r\nx\r\n.\r\nQUIT\r\n")
	for range 3 {
		c.line()
	}
	if got := c.line(); !match("250 2.0.0 <bob@example.jp> * Saved", got) {
		t.Errorf("got %q", got)
	}
}

// TestBDAT checks that chunked content is stored as sent (no dot
// unstuffing) and that the size limit refuses chunked messages per
// recipient at LAST while keeping the session in step.
func TestBDAT(t *testing.T) {
	ts := startServer(t, Options{MaxMessageSize: 64})
	c := dial(t, ts.addr)
	c.line()
	c.lhlo()
	msg := "Subject: b\r\n\r\n..kept\r\n"
	c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<info@example.jp>\r\nBDAT " + fmt.Sprint(len(msg)) + " LAST\r\n" + msg)
	for _, want := range []string{"250 2.1.0 OK", "250 2.1.5 OK", "250 2.0.0 <info@example.jp> * Saved"} {
		if got := c.line(); !match(want, got) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if msgs := ts.inbox(t, "info@example.jp"); len(msgs) != 1 || !strings.HasSuffix(msgs[0], "\nSubject: b\n\n..kept\n") {
		t.Errorf("stored %q", msgs)
	}
	big := strings.Repeat("y", 50)
	c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<info@example.jp>\r\nRCPT TO:<bob@example.jp>\r\nBDAT 50\r\n" + big + "BDAT 50 LAST\r\n" + big + "NOOP\r\n")
	for _, want := range []string{"250 2.1.0 OK", "250 2.1.5 OK", "250 2.1.5 OK", "250 2.0.0 Added 50 octets",
		"552 5.3.4 <info@example.jp> Message size exceeds administrative limit",
		"552 5.3.4 <bob@example.jp> Message size exceeds administrative limit", "250 2.0.0 OK"} {
		if got := c.line(); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if n := len(ts.inbox(t, "bob@example.jp")); n != 0 {
		t.Errorf("bob got %d messages over the limit", n)
	}
}
