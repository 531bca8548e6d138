package smtpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"postcote/internal/maillog"
	"postcote/internal/queue"
	"strings"
	"testing"
	"time"
)

func TestEHLOCapabilities(t *testing.T) {
	srvTLS, cliTLS, _ := tlsPair(t)
	tests := []struct {
		name     string
		opts     func(*Options)
		startTLS bool
		want     string
	}{
		{"plain", func(o *Options) {}, false,
			"250-mx.example.com\n250-PIPELINING\n250-SIZE 10240000\n250-VRFY\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250-SMTPUTF8\n250 CHUNKING"},
		{"tls may, auth anywhere", func(o *Options) { o.TLS = srvTLS; o.SASLEnable = true }, false,
			"250-mx.example.com\n250-PIPELINING\n250-SIZE 10240000\n250-VRFY\n250-STARTTLS\n250-AUTH PLAIN LOGIN\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250-SMTPUTF8\n250 CHUNKING"},
		{"auth only over tls: before", func(o *Options) { o.TLS = srvTLS; o.SASLEnable = true; o.TLSAuthOnly = true }, false,
			"250-mx.example.com\n250-PIPELINING\n250-SIZE 10240000\n250-VRFY\n250-STARTTLS\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250-SMTPUTF8\n250 CHUNKING"},
		{"auth only over tls: after", func(o *Options) {
			o.TLS = srvTLS
			o.SASLEnable = true
			o.TLSAuthOnly = true
			o.BrokenSASLAuthClients = true
			o.DisableVRFY = true
			o.MessageSizeLimit = 5000
		}, true,
			"250-mx.example.com\n250-PIPELINING\n250-SIZE 5000\n250-AUTH PLAIN LOGIN\n250-AUTH=PLAIN LOGIN\n250-ENHANCEDSTATUSCODES\n250-8BITMIME\n250-DSN\n250-SMTPUTF8\n250 CHUNKING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions()
			tt.opts(&opts)
			ts := startServer(t, opts)
			c := greet(t, ts.addr)
			if tt.startTLS {
				c.cmd("EHLO client.example", "250-*")
				c.startTLS(cliTLS)
			}
			c.send("EHLO client.example")
			if got := c.reply(); got != tt.want {
				t.Errorf("EHLO reply\n%s\nwant\n%s", got, tt.want)
			}
			c.cmd("HELO client.example", "250 mx.example.com")
			c.cmd("QUIT", "221 2.0.0 Bye")
		})
	}
}

func TestTransaction(t *testing.T) {
	opts := baseOptions()
	opts.Now = func() time.Time { return time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC) }
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("ehlo client.example", "250-*")
	c.cmd("MAIL FROM:<sender@remote.example> BODY=8BITMIME SIZE=100 RET=HDRS ENVID=abc+2Bdef", "250 2.1.0 Ok")
	c.cmd("RCPT TO:<user@example.com> NOTIFY=success,failure ORCPT=rfc822;user+40example.com", "250 2.1.5 Ok")
	c.cmd("DATA", "354 End data with <CR><LF>.<CR><LF>")
	c.send("Subject: hi", "", "..leading dot", "bare\nlf line", ".")
	c.expect("250 2.0.0 Ok: queued as 4TEST0001")
	c.cmd("QUIT", "221 2.0.0 Bye")
	if !c.closed() {
		t.Error("connection still open after QUIT")
	}
	msgs := ts.queue.messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages queued, want 1", len(msgs))
	}
	m := msgs[0]
	wantContent := "Received: from client.example (unknown [127.0.0.1])\r\n" +
		"\tby mx.example.com (postcote) with ESMTP id 4TEST0001\r\n" +
		"\tfor <user@example.com>; Wed, 25 Nov 2026 01:02:03 +0000 (UTC)\r\n" +
		"Subject: hi\r\n\r\n.leading dot\r\nbare\r\nlf line\r\n"
	if m.content != wantContent {
		t.Errorf("content\n%q\nwant\n%q", m.content, wantContent)
	}
	e := m.env
	if e.ID != "4TEST0001" || e.Sender != "sender@remote.example" || e.BodyType != "8BITMIME" || e.DSNRet != "HDRS" ||
		e.DSNEnvID != "abc+def" || e.Protocol != "ESMTP" || e.Helo != "client.example" || e.ClientAddr != "127.0.0.1" ||
		e.ClientName != "unknown" || e.AuthUser != "" {
		t.Errorf("envelope %+v", e)
	}
	if len(e.Recipients) != 1 || e.Recipients[0].Address != "user@example.com" || e.Recipients[0].DSNNotify != "SUCCESS,FAILURE" ||
		e.Recipients[0].DSNORcpt != "rfc822;user@example.com" || e.Recipients[0].OrigAddress != "user@example.com" {
		t.Errorf("recipients %+v", e.Recipients)
	}
	waitFor(t, "disconnect log", func() bool { return strings.Contains(ts.log.String(), "disconnect from") })
	for _, want := range []string{
		"postcote/smtpd[", "connect from unknown[127.0.0.1]",
		"4TEST0001: client=unknown[127.0.0.1]",
		"disconnect from unknown[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
	} {
		if !strings.Contains(ts.log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, ts.log.String())
		}
	}
}

func TestSequenceErrors(t *testing.T) {
	opts := baseOptions()
	opts.HardErrorLimit = 100
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	for _, step := range []struct{ send, want string }{
		{"RCPT TO:<user@example.com>", "503 5.5.1 Error: need MAIL command"},
		{"DATA", "503 5.5.1 Error: need RCPT command"},
		{"EHLO", "501 5.5.4 Syntax: EHLO hostname"},
		{"HELO c", "250 mx.example.com"},
		{"MAIL FROM:<a@b.example>", "250 2.1.0 Ok"},
		{"MAIL FROM:<a@b.example>", "503 5.5.1 Error: nested MAIL command"},
		{"DATA", "554 5.5.1 Error: no valid recipients"},
		{"RCPT TO:<>", "501 5.1.3 Bad recipient address syntax"},
		{"RCPT TO:<a b@example.com>", "501 5.1.3 Bad recipient address syntax"},
		{"RCPT user@example.com", "501 5.5.4 Syntax: RCPT TO:<address>"},
		{"RCPT TO:<user@example.com> FOO=1", "555 5.5.4 Unsupported option: FOO"},
		{"RCPT TO:<user@example.com> NOTIFY=NEVER,SUCCESS", "501 5.5.4 Error: Bad NOTIFY parameter syntax"},
		{"RCPT TO:<user@example.com> ORCPT=rfc822;a+zz", "501 5.5.4 Error: Bad ORCPT parameter syntax"},
		{"RCPT TO:<nobody@example.com>", "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table"},
		{"RCPT TO:<nobody@virtual.test>", "550 5.1.1 <nobody@virtual.test>: Recipient address rejected: User unknown in virtual mailbox table"},
		{"RCPT TO:<nobody@alias.test>", "550 5.1.1 <nobody@alias.test>: Recipient address rejected: User unknown in virtual alias table"},
		{"RCPT TO:<user@example.com>", "250 2.1.5 Ok"},
		{"RCPT TO:<jösé@example.com>", "553 5.6.7 Must declare SMTPUTF8 to send unicode address"},
		{"DATA extra", "501 5.5.4 Syntax: DATA"},
		{"RSET", "250 2.0.0 Ok"},
		{"RSET x", "501 5.5.4 Syntax: RSET"},
		{"MAIL FROM:<a@b.example> SIZE=x", "501 5.5.4 Bad message size syntax"},
		{"MAIL FROM:<a@b.example> BODY=BINARYMIME", "501 5.5.4 Unsupported BODY parameter value"},
		{"MAIL FROM:<a@b.example> RET=ALL", "501 5.5.4 Bad RET parameter syntax"},
		{"MAIL FROM:<a@b..c>", "501 5.1.7 Bad sender address syntax"},
		{"MAIL TO:<a@b.example>", "501 5.5.4 Syntax: MAIL FROM:<address>"},
		{"MAIL FROM:<a@b.example> SIZE=99999999999", "552 5.3.4 Message size exceeds fixed limit"},
		{"MAIL FROM: <jösé@b.example> SMTPUTF8", "250 2.1.0 Ok"},
		{"RCPT TO:<user@example.com>", "250 2.1.5 Ok"},
		{"VRFY user@example.com", "252 2.0.0 user@example.com"},
		{"VRFY <nobody@example.com>", "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table"},
		{"VRFY", "501 5.5.4 Syntax: VRFY address"},
		{"HELP", "502 5.5.2 Error: command not recognized"},
		{"", "500 5.5.2 Error: bad syntax"},
		{"NOOP whatever", "250 2.0.0 Ok"},
		{"STARTTLS", "502 5.5.1 Error: command not implemented"},
		{"AUTH PLAIN", "503 5.5.1 Error: authentication not enabled"},
		{"quit", "221 2.0.0 Bye"},
	} {
		c.cmd(step.send, step.want)
	}
	waitFor(t, "disconnect log", func() bool { return strings.Contains(ts.log.String(), "disconnect from") })
	if want := "warning: Illegal address syntax from unknown[127.0.0.1] in RCPT command: TO:<a b@example.com>"; !strings.Contains(ts.log.String(), want) {
		t.Errorf("log lacks %q", want)
	}
	if want := "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table; from=<a@b.example> to=<nobody@example.com> proto=SMTP helo=<c>"; !strings.Contains(ts.log.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, ts.log.String())
	}
}

func TestPipelining(t *testing.T) {
	ts := startServer(t, baseOptions())
	c := greet(t, ts.addr)
	c.cmd("EHLO client.example", "250-*")
	// RFC 2920 3.1: the whole group in one write, DATA last before 354.
	c.send("MAIL FROM:<s@remote.example>", "RCPT TO:<user@example.com>", "RCPT TO:<nobody@example.com>",
		"RCPT TO:<user@virtual.test>", "DATA")
	for _, want := range []string{"250 2.1.0 Ok", "250 2.1.5 Ok", "550 5.1.1 *", "250 2.1.5 Ok", "354 *"} {
		c.expect(want)
	}
	c.send("one line", ".", "MAIL FROM:<>", "RCPT TO:<user@example.com>", "BDAT 5 LAST")
	if _, err := c.conn.Write([]byte("hi\r\n\n")); err != nil {
		t.Fatal(err)
	}
	c.send("NOOP", "QUIT")
	for _, want := range []string{"250 2.0.0 Ok: queued as 4TEST0001", "250 2.1.0 Ok", "250 2.1.5 Ok", "250 2.0.0 Ok: queued as 4TEST0002", "250 2.0.0 Ok", "221 2.0.0 Bye"} {
		c.expect(want)
	}
	msgs := ts.queue.messages()
	if len(msgs) != 2 || len(msgs[0].env.Recipients) != 2 || !strings.HasSuffix(msgs[0].content, "\r\none line\r\n") ||
		!strings.HasSuffix(msgs[1].content, "\r\nhi\r\n\r\n") || msgs[1].env.Sender != "" {
		t.Fatalf("messages %+v", msgs)
	}
}

func TestBDAT(t *testing.T) {
	opts := baseOptions()
	opts.MessageSizeLimit = 1000
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	c.send("BDAT 3")
	c.conn.Write([]byte("abc"))
	c.expect("503 5.5.1 Error: need RCPT command")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.send("BDAT 4")
	c.conn.Write([]byte("xyz\n"))
	c.expect("554 5.5.1 Error: no valid recipients")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.send("BDAT 10")
	c.conn.Write([]byte("Subject: a"))
	c.expect("250 2.0.0 Ok: 10 bytes")
	c.cmd("DATA", "503 5.5.1 Error: DATA after BDAT")
	c.send("BDAT 8 LAST")
	c.conn.Write([]byte("\r\n\r\n.x\r\n"))
	c.expect("250 2.0.0 Ok: queued as 4TEST0001")
	c.send("BDAT 2 FIRST")
	c.conn.Write([]byte("xy"))
	c.expect("501 5.5.4 Syntax: BDAT count [LAST]")
	c.cmd("BDAT 0", "551 5.7.1 Null BDAT request")
	c.cmd("BDAT x", "521 5.5.4 Syntax: BDAT count [LAST]")
	if !c.closed() {
		t.Error("connection open after BDAT syntax error")
	}
	msgs := ts.queue.messages()
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0].content, "\r\nSubject: a\r\n\r\n.x\r\n") {
		t.Fatalf("messages %+v", msgs)
	}

	// Too big: every chunk is still read, 552 answers, nothing is queued.
	c = greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	big := strings.Repeat("x", 800)
	c.send("BDAT 800")
	c.conn.Write([]byte(big))
	c.expect("250 2.0.0 Ok: 800 bytes")
	c.send("BDAT 800")
	c.conn.Write([]byte(big))
	c.expect("552 5.3.4 Chunk exceeds message size limit")
	c.send("BDAT 800 LAST")
	c.conn.Write([]byte(big))
	c.expect("552 5.3.4 Chunk exceeds message size limit")
	c.cmd("NOOP", "250 2.0.0 Ok")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.send("BDAT 10")
	c.conn.Write([]byte("0123456789"))
	c.expect("250 2.0.0 Ok: 10 bytes")
	c.cmd("RSET", "250 2.0.0 Ok") // the half message is dropped
	c.cmd("QUIT", "221 *")
	if n := len(ts.queue.messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}

func TestSizeLimitDATA(t *testing.T) {
	opts := baseOptions()
	opts.MessageSizeLimit = 100
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	c.cmd("MAIL FROM:<s@remote.example> SIZE=101", "552 5.3.4 Message size exceeds fixed limit")
	c.cmd("MAIL FROM:<s@remote.example> SIZE=100", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	for i := 0; i < 20; i++ {
		c.send(strings.Repeat("y", 50))
	}
	c.send(".")
	c.expect("552 5.3.4 Error: message file too big")
	// The session is still in step: a small message goes through.
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	c.send("small", ".")
	c.expect("250 2.0.0 Ok: queued as *")
	if n := len(ts.queue.messages()); n != 1 {
		t.Errorf("%d messages queued, want 1", n)
	}
}

func TestQueueFailure(t *testing.T) {
	ts := startServer(t, baseOptions())
	ts.queue.fail = fmt.Errorf("disk full")
	c := greet(t, ts.addr)
	c.cmd("HELO c.example", "250 *")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	c.send("x", ".")
	c.expect("451 4.3.0 Error: queue file write error")
	c.cmd("QUIT", "221 *")
	waitFor(t, "warning", func() bool {
		return strings.Contains(ts.log.String(), "queue file write error for message from unknown[127.0.0.1]: disk full")
	})
}

func TestTooManyRecipients(t *testing.T) {
	opts := baseOptions()
	opts.RecipientLimit = 2
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("HELO c.example", "250 *")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("RCPT TO:<user@virtual.test>", "250 *")
	c.cmd("RCPT TO:<group@alias.test>", "452 4.5.3 Error: too many recipients")
}

func TestTooManyErrors(t *testing.T) {
	opts := baseOptions()
	opts.HardErrorLimit = 3
	opts.SoftErrorLimit = 2
	opts.ErrorSleepTime = time.Millisecond
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("FOO", "502 5.5.2 Error: command not recognized")
	c.cmd("BAR", "502 5.5.2 Error: command not recognized")
	c.cmd("NOOP", "250 2.0.0 Ok")
	c.send("BAZ")
	c.expect("502 5.5.2 Error: command not recognized")
	c.expect("421 4.7.0 mx.example.com Error: too many errors")
	if !c.closed() {
		t.Error("connection open after too many errors")
	}
	waitFor(t, "disconnect", func() bool {
		return strings.Contains(ts.log.String(), "disconnect from unknown[127.0.0.1] noop=1 unknown=0/3 commands=1/4")
	})
}

func TestLineTooLong(t *testing.T) {
	ts := startServer(t, baseOptions())
	c := greet(t, ts.addr)
	c.cmd("NOOP "+strings.Repeat("a", 5000), "500 5.5.0 Error: line too long")
	c.cmd("NOOP", "250 2.0.0 Ok")
	// A long line inside DATA passes through without being held whole.
	c.cmd("HELO c", "250 *")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	long := strings.Repeat("z", 9000)
	c.send(long, ".")
	c.expect("250 *")
	if m := ts.queue.messages(); len(m) != 1 || !strings.HasSuffix(m[0].content, "\r\n"+long+"\r\n") {
		t.Error("long DATA line altered")
	}
}

func TestNonSMTPCommand(t *testing.T) {
	ts := startServer(t, baseOptions())
	c := greet(t, ts.addr)
	c.cmd("GET / HTTP/1.1", "521 5.7.0 Error: I can break rules, too. Goodbye.")
	if !c.closed() {
		t.Error("connection open after HTTP request")
	}
}

func TestTimeout(t *testing.T) {
	opts := baseOptions()
	opts.Timeouts = Timeouts{Command: 150 * time.Millisecond, Data: 150 * time.Millisecond}
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("HELO c", "250 *")
	start := time.Now()
	c.expect("421 4.4.2 mx.example.com Error: timeout exceeded")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v", d)
	}
	// In DATA, a stalled client loses its message.
	c = greet(t, ts.addr)
	c.cmd("HELO c", "250 *")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	c.send("partial")
	c.expect("421 4.4.2 mx.example.com Error: timeout exceeded")
	if !c.closed() {
		t.Error("connection open after timeout")
	}
	waitFor(t, "log", func() bool { return strings.Contains(ts.log.String(), "timeout after DATA from unknown[127.0.0.1]") })
	if n := len(ts.queue.messages()); n != 0 {
		t.Errorf("%d messages queued from timed-out clients", n)
	}
}

func TestConnectionLimit(t *testing.T) {
	opts := baseOptions()
	opts.MaxConnections = 1
	ts := startServer(t, opts)
	c1 := greet(t, ts.addr)
	c2 := dial(t, ts.addr)
	c2.expect("421 4.7.0 mx.example.com Error: too many connections")
	c1.cmd("QUIT", "221 *")
	waitFor(t, "slot", func() bool {
		ts.srv.mu.Lock()
		defer ts.srv.mu.Unlock()
		return len(ts.srv.sessions) == 0
	})
	c3 := greet(t, ts.addr)
	c3.cmd("QUIT", "221 *")
}

func TestShutdownDuringDATA(t *testing.T) {
	ts := startServer(t, baseOptions())
	idle := greet(t, ts.addr)
	busy := greet(t, ts.addr)
	busy.cmd("HELO c", "250 *")
	busy.cmd("MAIL FROM:<s@remote.example>", "250 *")
	busy.cmd("RCPT TO:<user@example.com>", "250 *")
	busy.cmd("DATA", "354 *")
	busy.send("first line")

	done := make(chan error, 1)
	go func() {
		ctx, cancel := contextWithTimeout(10 * time.Second)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	// The idle session goes at once; the busy one may finish.
	idle.expect("421 4.3.2 Service shutting down")
	busy.send("last line", ".")
	busy.expect("250 2.0.0 Ok: queued as *")
	busy.expect("421 4.3.2 Service shutting down")
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := len(ts.queue.messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	if _, err := dialErr(ts.addr); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}

func TestShutdownForced(t *testing.T) {
	ts := startServer(t, baseOptions())
	ts.queue.started = make(chan struct{}, 1)
	busy := greet(t, ts.addr)
	busy.cmd("HELO c", "250 *")
	busy.cmd("MAIL FROM:<s@remote.example>", "250 *")
	busy.cmd("RCPT TO:<user@example.com>", "250 *")
	busy.cmd("DATA", "354 *")
	busy.send("never finished")
	<-ts.queue.started
	ctx, cancel := contextWithTimeout(100 * time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err == nil {
		t.Error("forced Shutdown returned nil")
	}
	busy.expect("421 4.3.2 Service shutting down")
	if n := len(ts.queue.messages()); n != 0 {
		t.Errorf("%d messages queued from an interrupted DATA", n)
	}
}

func TestReverseNameAndErrorSleep(t *testing.T) {
	opts := baseOptions()
	opts.LookupAddr = func(_ context.Context, ip string) (string, error) {
		if ip != "127.0.0.1" {
			return "", fmt.Errorf("no PTR for %s", ip)
		}
		return "client.example.", nil
	}
	opts.SoftErrorLimit = 1
	opts.ErrorSleepTime = 150 * time.Millisecond
	opts.HardErrorLimit = 10
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	start := time.Now()
	c.cmd("FOO", "502 *") // the first error reaches the soft limit
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("error reply after %v, want at least smtpd_error_sleep_time", d)
	}
	c.cmd("MAIL FROM:<>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	c.send("x", ".")
	c.expect("250 *")
	start = time.Now()
	c.cmd("NOOP", "250 *") // delivering mail resets the error count
	if d := time.Since(start); d >= 150*time.Millisecond {
		t.Errorf("reply slowed down after a delivered message (%v)", d)
	}
	c.cmd("QUIT", "221 *")
	m := ts.queue.messages()
	if len(m) != 1 || m[0].env.ClientName != "client.example" ||
		!strings.HasPrefix(m[0].content, "Received: from client.example (client.example [127.0.0.1])\r\n\tby mx.example.com (postcote) with SMTP id") {
		t.Errorf("messages %+v", m)
	}
	waitFor(t, "log", func() bool { return strings.Contains(ts.log.String(), "connect from client.example[127.0.0.1]") })
}

func TestOptionsNotAliased(t *testing.T) {
	mechs := []string{"plain", "login"}
	opts := baseOptions()
	opts.SASLMechanisms = mechs
	if _, err := New(opts, &fakeQueue{}, newFakeAddrs(), fakeAuth{}); err != nil {
		t.Fatal(err)
	}
	if mechs[0] != "plain" {
		t.Errorf("New changed the caller's slice: %v", mechs)
	}
}

// TestSMTPSmuggling: only CRLF.CRLF ends DATA (Postfix's
// smtpd_forbid_bare_newline = normal), so "<LF>.<CR><LF>" cannot smuggle a
// second message past a filter that reads the stream differently.
func TestSMTPSmuggling(t *testing.T) {
	ts := startServer(t, baseOptions())
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.cmd("DATA", "354 *")
	if _, err := c.conn.Write([]byte("Subject: one\r\n\r\nbody\n.\r\nMAIL FROM:<evil@x.example>\r\n.\n\r\n.\r\n")); err != nil {
		t.Fatal(err)
	}
	c.expect("250 2.0.0 Ok: queued as 4TEST0001")
	c.cmd("RCPT TO:<user@example.com>", "503 5.5.1 Error: need MAIL command")
	m := ts.queue.messages()
	if len(m) != 1 || !strings.HasSuffix(m[0].content, "\r\nbody\r\n.\r\nMAIL FROM:<evil@x.example>\r\n.\r\n\r\n") {
		t.Errorf("messages %+v", m)
	}
}

func TestRcptAfterBDAT(t *testing.T) {
	ts := startServer(t, baseOptions())
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "250 *")
	c.send("BDAT 3")
	c.conn.Write([]byte("abc"))
	c.expect("250 2.0.0 Ok: 3 bytes")
	c.cmd("RCPT TO:<user@virtual.test>", "503 5.5.1 Error: RCPT after BDAT")
	c.send("BDAT 0 LAST")
	c.expect("250 2.0.0 Ok: queued as *")
	if m := ts.queue.messages(); len(m) != 1 || len(m[0].env.Recipients) != 1 || !strings.HasSuffix(m[0].content, "\r\nabc") {
		t.Errorf("messages %+v", m)
	}
}

func TestServeContextCancel(t *testing.T) {
	srv, err := New(baseOptions(), &fakeQueue{}, newFakeAddrs(), nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	c := greet(t, l.Addr().String())
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	// The running session is not cut off by the listener going away.
	c.cmd("NOOP", "250 2.0.0 Ok")
	sctx, scancel := contextWithTimeout(5 * time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	c.expect("421 4.3.2 Service shutting down")
}

// TestLargePipelinedGroup: a group whose replies overflow the write
// buffer still gets every reply, in order.
func TestLargePipelinedGroup(t *testing.T) {
	ts := startServer(t, baseOptions())
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	cmds := []string{"MAIL FROM:<s@remote.example>"}
	for i := 0; i < 600; i++ {
		cmds = append(cmds, "RCPT TO:<user@example.com>")
	}
	group := []byte(strings.Join(append(cmds, "QUIT"), "\r\n") + "\r\n")
	go c.conn.Write(group) // the server replies while we still send
	c.expect("250 2.1.0 Ok")
	for i := 0; i < 600; i++ {
		c.expect("250 2.1.5 Ok")
	}
	c.expect("221 2.0.0 Bye")
}

// TestQueueErrorsMapToPostfixReplies: the queue's own refusals reach the
// client as Postfix words them.
func TestQueueErrorsMapToPostfixReplies(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{queue.ErrMessageTooBig, "552 5.3.4"},
		{queue.ErrInsufficientStorage, "452 4.3.1"},
		{errors.New("disk on fire"), "451 4.3.0"},
	} {
		opts := &Options{Logger: maillog.Discard()}
		s := &session{srv: &Server{opts: *opts}, opts: opts, clientName: "unknown", clientAddr: netip.MustParseAddr("192.0.2.1")}
		env := &queue.Envelope{ID: "4jZtest"}
		got := s.finishMessage(env, tc.err, nil, true, "DATA")
		if line := got.Line(); !strings.HasPrefix(line, tc.want) {
			t.Errorf("queue error %v: reply %q, want %s", tc.err, line, tc.want)
		}
	}
}

// cleanupRefusal is an error from the queue's front end that carries
// Postfix cleanup's own reply.
type cleanupRefusal struct {
	code         int
	status, text string
}

func (e cleanupRefusal) Error() string { return e.text }
func (e cleanupRefusal) SMTPReply() (int, string, string) {
	return e.code, e.status, e.text
}

// A refusal by the cleanup stage reaches the client with its own code
// (an alias loop is 451 4.6.0, a mail loop 554 5.4.0), through DATA and
// through BDAT, not as a queue write error.
func TestCleanupReplyPassedOn(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("queue: %w", cleanupRefusal{451, "4.6.0", "Alias expansion error"}), "451 4.6.0 Alias expansion error"},
		{cleanupRefusal{554, "5.4.0", "Error: too many hops"}, "554 5.4.0 Error: too many hops"},
	} {
		ts := startServer(t, baseOptions())
		ts.queue.fail = tc.err
		c := greet(t, ts.addr)
		c.cmd("EHLO c.example", "250*")
		c.cmd("MAIL FROM:<s@remote.example>", "250 *")
		c.cmd("RCPT TO:<user@example.com>", "250 *")
		c.cmd("DATA", "354 *")
		c.send("x", ".")
		c.expect(tc.want)
		c.cmd("MAIL FROM:<s@remote.example>", "250 *")
		c.cmd("RCPT TO:<user@example.com>", "250 *")
		c.send("BDAT 3 LAST")
		c.send("x")
		c.expect(tc.want)
		c.cmd("QUIT", "221 *")
		if strings.Contains(ts.log.String(), "queue file write error") {
			t.Errorf("a cleanup refusal logged as a queue write error:\n%s", ts.log.String())
		}
	}
}

// smtpd_reject_unlisted_recipient = no: unknown users of our domains are
// accepted at RCPT (the later bounce is the administrator's choice), an
// explicit reject_unlisted_recipient still refuses them, and relaying
// stays refused.
func TestKeepUnlistedRecipients(t *testing.T) {
	opts := baseOptions()
	opts.KeepUnlistedRecipients = true
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("HELO c", "250 *")
	c.cmd("MAIL FROM:<a@b.example>", "250 *")
	c.cmd("RCPT TO:<nobody@example.com>", "250 2.1.5 Ok")
	c.cmd("RCPT TO:<nobody@virtual.test>", "250 2.1.5 Ok")
	c.cmd("RCPT TO:<x@elsewhere.example>", "454 4.7.1 <x@elsewhere.example>: Relay access denied")
	c.cmd("QUIT", "221 *")

	opts = baseOptions()
	opts.KeepUnlistedRecipients = true
	opts.RecipientRestrictions = []string{"reject_unlisted_recipient"}
	ts = startServer(t, opts)
	c = greet(t, ts.addr)
	c.cmd("HELO c", "250 *")
	c.cmd("MAIL FROM:<a@b.example>", "250 *")
	c.cmd("RCPT TO:<nobody@example.com>", "550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table")
	c.cmd("RCPT TO:<user@example.com>", "250 2.1.5 Ok")
	c.cmd("QUIT", "221 *")
}
