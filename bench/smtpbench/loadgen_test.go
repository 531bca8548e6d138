package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func testLoad(addr string) Load {
	return Load{
		Addr: addr, Sessions: 4, Messages: 40, Size: 5120,
		From: "bench@smtpbench.test", To: "demo@example.test", Helo: "test.localhost", RunID: "run1",
		CmdTimeout: 5 * time.Second,
	}
}

var messageIDRe = regexp.MustCompile(`(?m)^Message-ID: <([^>]+)>\r$`)

func TestLoadRunDelivers(t *testing.T) {
	tests := []struct {
		name                           string
		sessions, messages, perSession int
		size                           int
	}{
		{"one per session", 4, 40, 1, 5120},
		{"several per session", 3, 10, 4, 5120},
		{"more sessions than messages", 8, 3, 1, 5120},
		{"small messages", 2, 6, 1, 400},
		{"large messages", 2, 4, 2, 200000},
		{"percent in address", 2, 4, 1, 5120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSMTP(t, nil)
			l := testLoad(srv.addr())
			l.Sessions, l.Messages, l.PerSession, l.Size = tt.sessions, tt.messages, tt.perSession, tt.size
			if strings.HasPrefix(tt.name, "percent") {
				l.To = "a%d%s@example.test"
			}
			res, err := l.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != tt.messages || res.Failed != 0 || res.TimedOut || res.Tried != tt.messages {
				t.Fatalf("accepted %d failed %d tried %d timedout %v, errors %v; want all %d accepted",
					res.Accepted, res.Failed, res.Tried, res.TimedOut, res.Errors, tt.messages)
			}
			if len(res.Latencies) != tt.messages || res.AcceptRate() <= 0 || res.LastAccept.Before(res.Start) {
				t.Errorf("latencies %d, rate %v: want one latency per message and a positive rate", len(res.Latencies), res.AcceptRate())
			}
			// Each client's last session may be cut short by the end of
			// the messages; every other one carries perSession messages.
			least := (tt.messages + tt.perSession - 1) / tt.perSession
			if got := int(srv.sessions.Load()); got < least || got > least+tt.sessions-1 || tt.perSession == 1 && got != tt.messages {
				t.Errorf("server saw %d sessions for %d messages, %d per session", got, tt.messages, tt.perSession)
			}
			if p := srv.peak.Load(); p > int64(tt.sessions) {
				t.Errorf("server saw %d concurrent sessions, want at most %d", p, tt.sessions)
			}
			ids := map[string]bool{}
			for _, msg := range srv.received() {
				if len(msg) != tt.size {
					t.Errorf("message of %d bytes, want %d", len(msg), tt.size)
				}
				m := messageIDRe.FindSubmatch(msg)
				if m == nil {
					t.Fatalf("no Message-ID in %q", msg[:200])
				}
				if ids[string(m[1])] {
					t.Errorf("Message-ID %s sent twice", m[1])
				}
				ids[string(m[1])] = true
				if !bytes.Contains(msg, []byte("\r\nTo: <"+l.To+">\r\n")) {
					t.Errorf("To header does not name %s: %q", l.To, msg[:120])
				}
				if !bytes.Contains(msg, []byte("\r\n\r\n")) || !bytes.HasSuffix(msg, []byte("\r\n")) {
					t.Errorf("message lacks header/body separator or final CRLF")
				}
			}
			if len(ids) != tt.messages {
				t.Errorf("%d distinct messages received, want %d", len(ids), tt.messages)
			}
		})
	}
}

func TestLoadRunCountsRefusals(t *testing.T) {
	tests := []struct {
		name       string
		perSession int
		reject     func(n int) bool
		wantFailed int
	}{
		{"every third refused, one per session", 1, func(n int) bool { return n%3 == 0 }, 10},
		{"every third refused, session goes on after RSET", 5, func(n int) bool { return n%3 == 0 }, 10},
		{"all refused", 3, func(int) bool { return true }, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSMTP(t, func(s *fakeSMTP) { s.rejectRcpt = tt.reject })
			l := testLoad(srv.addr())
			l.Messages, l.PerSession = 30, tt.perSession
			res, err := l.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed != tt.wantFailed || res.Accepted != 30-tt.wantFailed {
				t.Fatalf("accepted %d failed %d, want %d failed", res.Accepted, res.Failed, tt.wantFailed)
			}
			if len(res.Errors) == 0 || !strings.Contains(res.Errors[0], "550") {
				t.Errorf("errors %q: want the 550 reply", res.Errors)
			}
			if got := len(srv.received()); got != res.Accepted {
				t.Errorf("server stored %d, load generator counted %d accepted", got, res.Accepted)
			}
		})
	}
}

func TestLoadRunBrokenServers(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakeSMTP)
		wantErr string
	}{
		{"garbage greeting", func(s *fakeSMTP) { s.greeting = "hello there" }, "malformed"},
		{"refusing greeting", func(s *fakeSMTP) { s.greeting = "554 5.7.1 go away" }, "554"},
		{"greeting code changes mid-reply", func(s *fakeSMTP) { s.greeting = "220-a\r\n250 b" }, "code changed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSMTP(t, tt.setup)
			l := testLoad(srv.addr())
			l.Messages = 8
			res, err := l.Run(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if res.Accepted != 0 || res.Failed != 8 {
				t.Fatalf("accepted %d failed %d, want all 8 failed", res.Accepted, res.Failed)
			}
			if len(res.Errors) == 0 || !strings.Contains(res.Errors[0], tt.wantErr) {
				t.Errorf("errors %q, want one with %q", res.Errors, tt.wantErr)
			}
			if res.AcceptRate() != 0 || res.Percentile(50) != 0 {
				t.Errorf("rate %v p50 %v with nothing accepted, want 0", res.AcceptRate(), res.Percentile(50))
			}
		})
	}
}

func TestLoadRunStopsOnTimeout(t *testing.T) {
	tests := []struct {
		name       string
		cmdTimeout time.Duration
		runTimeout time.Duration
	}{
		{"run deadline ends a silent session", time.Minute, 300 * time.Millisecond},
		{"reply deadline ends a silent session", 200 * time.Millisecond, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSMTP(t, func(s *fakeSMTP) { s.silent = true })
			l := testLoad(srv.addr())
			l.Messages, l.Sessions, l.CmdTimeout = 4, 4, tt.cmdTimeout
			ctx, cancel := context.WithTimeout(context.Background(), tt.runTimeout)
			defer cancel()
			start := time.Now()
			res, err := l.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("run took %v against a silent server", d)
			}
			if res.Accepted != 0 || res.Failed != 4 {
				t.Errorf("accepted %d failed %d, want 4 failed", res.Accepted, res.Failed)
			}
		})
	}
}

func TestLoadRunStopsClaimingAfterDeadline(t *testing.T) {
	srv := newFakeSMTP(t, func(s *fakeSMTP) { s.silent = true })
	l := testLoad(srv.addr())
	l.Messages, l.Sessions = 1000, 2
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := l.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut || res.Tried >= 1000 {
		t.Errorf("tried %d of 1000, timed out %v: want the run cut short", res.Tried, res.TimedOut)
	}
}

func TestLoadCheck(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Load)
		want   string
	}{
		{"off-machine address", func(l *Load) { l.Addr = "192.0.2.1:25" }, "loopback"},
		{"host name", func(l *Load) { l.Addr = "example.com:25" }, "loopback"},
		{"no port", func(l *Load) { l.Addr = "127.0.0.1" }, "server address"},
		{"no sessions", func(l *Load) { l.Sessions = 0 }, "positive"},
		{"no messages", func(l *Load) { l.Messages = 0 }, "positive"},
		{"address with bracket", func(l *Load) { l.To = "a>@b" }, "envelope"},
		{"address with CRLF", func(l *Load) { l.From = "a@b\r\nRCPT TO:<x@y>" }, "envelope"},
		{"helo with space", func(l *Load) { l.Helo = "a b" }, "EHLO"},
		{"address with tab", func(l *Load) { l.To = "a\tb@c" }, "envelope"},
		{"address with NUL", func(l *Load) { l.To = "a\x00b@c" }, "envelope"},
		{"run ID with bracket", func(l *Load) { l.RunID = "x>y" }, "run ID"},
		{"size below header", func(l *Load) { l.Size = 100 }, "below"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := testLoad("127.0.0.1:1")
			tt.modify(&l)
			_, err := l.Run(context.Background())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one with %q", err, tt.want)
			}
		})
	}
	// IPv6 loopback is loopback too.
	l := testLoad("[::1]:1")
	if err := l.check(); err != nil {
		t.Errorf("[::1]: %v", err)
	}
}

func TestLoadRunConnectRefused(t *testing.T) {
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	l := testLoad(testAddr(ports[0]))
	l.Messages = 5
	res, err := l.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 5 || len(res.Errors) == 0 || !strings.Contains(res.Errors[0], "connect") {
		t.Errorf("failed %d errors %q: want 5 failed connects", res.Failed, res.Errors)
	}
}

func testAddr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

func TestFiller(t *testing.T) {
	for n := 2; n <= 400; n++ {
		b := filler(n)
		if len(b) != n {
			t.Fatalf("filler(%d) has %d bytes", n, len(b))
		}
		if !bytes.HasSuffix(b, []byte("\r\n")) {
			t.Fatalf("filler(%d) does not end in CRLF", n)
		}
		for _, line := range bytes.SplitAfter(b, []byte("\r\n")) {
			if len(line) > 80 {
				t.Fatalf("filler(%d): line of %d bytes", n, len(line))
			}
			if bytes.Count(line, []byte("\r")) > 1 || bytes.Count(line, []byte("\n")) > 1 {
				t.Fatalf("filler(%d): bare CR or LF in %q", n, line)
			}
		}
	}
}

func TestWriteDotStuffed(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a\r\n", "a\r\n"},
		{".\r\n", "..\r\n"},
		{"a\r\n.b\r\n..c\r\n", "a\r\n..b\r\n...c\r\n"},
		{"a.b\r\n", "a.b\r\n"},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		writeDotStuffed(w, []byte(tt.in))
		w.Flush()
		if out.String() != tt.want {
			t.Errorf("writeDotStuffed(%q) = %q, want %q", tt.in, out.String(), tt.want)
		}
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	r := &Result{Latencies: lat}
	tests := []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}}
	for _, tt := range tests {
		if got := r.Percentile(tt.p); got != tt.want {
			t.Errorf("p%v = %v, want %v", tt.p, got, tt.want)
		}
	}
	one := &Result{Latencies: []time.Duration{7}}
	if one.Percentile(50) != 7 || one.Percentile(99) != 7 {
		t.Errorf("single latency: p50 %v p99 %v", one.Percentile(50), one.Percentile(99))
	}
}

// TestRunOnceMeasuresDelivery runs the whole measurement against the fake
// server, which delivers into a Maildir as it accepts.
func TestRunOnceMeasuresDelivery(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A message already there is not counted as this run's.
	if err := os.WriteFile(filepath.Join(md, "cur", "old:2,S"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := newFakeSMTP(t, func(s *fakeSMTP) { s.maildir = md })
	tg := &target{key: "fake", label: "fake", addr: srv.addr(), maildir: md}
	l := testLoad("")
	m, err := runOnce(context.Background(), tg, l, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if m.accepted != 40 || m.deliverRate <= 0 || m.acceptRate <= 0 || m.note != "" {
		t.Fatalf("measure %+v: want 40 accepted and both rates", m)
	}
	if m.deliverRate > m.acceptRate*1.5 {
		t.Errorf("delivered %.1f/s far above accepted %.1f/s", m.deliverRate, m.acceptRate)
	}
	if m.p50 <= 0 || m.p99 < m.p50 {
		t.Errorf("p50 %v p99 %v", m.p50, m.p99)
	}
}

// TestRunOnceReportsMissingDelivery: mail accepted but never delivered
// ends the run at its timeout with a note, not a hang.
func TestRunOnceReportsMissingDelivery(t *testing.T) {
	md := filepath.Join(t.TempDir(), "Maildir")
	srv := newFakeSMTP(t, nil) // accepts, delivers nowhere
	tg := &target{key: "fake", label: "fake", addr: srv.addr(), maildir: md}
	l := testLoad("")
	l.Messages = 3
	m, err := runOnce(context.Background(), tg, l, 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if m.accepted != 3 || m.deliverRate != 0 || !strings.Contains(m.note, "delivery incomplete") {
		t.Errorf("measure %+v: want 3 accepted, no delivery rate, a note", m)
	}
}
