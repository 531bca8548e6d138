package queue

import (
	"bufio"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// deferAgent defers every recipient except those in accept; it delivers
// notices (mail from <>) and records them.
type deferAgent struct {
	mu       sync.Mutex
	accept   map[string]bool
	attempts map[ID][]time.Time
	notices  []delivery
	clock    *fakeClock
}

func newDeferAgent(c *fakeClock) *deferAgent {
	return &deferAgent{accept: map[string]bool{}, attempts: map[ID][]time.Time{}, clock: c}
}

func (a *deferAgent) setAccept(addr string) {
	a.mu.Lock()
	a.accept[addr] = true
	a.mu.Unlock()
}

func (a *deferAgent) Deliver(ctx context.Context, msg *Message, rcpts []int) []Result {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.attempts[msg.ID] = append(a.attempts[msg.ID], a.clock.Now())
	var out []Result
	for _, i := range rcpts {
		addr := msg.Envelope.Recipients[i].Address
		notice := isNotice(msg)
		if notice || a.accept[addr] {
			if notice {
				rc, _ := msg.Open()
				b, _ := io.ReadAll(rc)
				rc.Close()
				a.notices = append(a.notices, delivery{msg.ID, addr, "", string(b)})
			}
			out = append(out, Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok", Relay: "virtual"})
			continue
		}
		out = append(out, Result{Rcpt: i, Status: StatusDeferred, DSN: "4.4.1",
			Reply:     "connect to mx.example.com[192.0.2.1]:25: Connection refused",
			RemoteMTA: "", Relay: "none", Transport: "smtp"})
	}
	return out
}

// isNotice tells the queue's own bounces and warnings from test mail.
func isNotice(msg *Message) bool {
	return msg.Envelope.Sender == "" && msg.Envelope.Protocol == "local"
}

func (a *deferAgent) nattempts(id ID) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.attempts[id])
}

func (a *deferAgent) noticeList() []delivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]delivery(nil), a.notices...)
}

// settled waits until message id is not being delivered and has had n
// attempts, and returns its summary (ok false when it left the queue).
func (h *harness) settled(a *deferAgent, id ID, n int) (Summary, bool) {
	h.t.Helper()
	var s Summary
	var found bool
	waitFor(h.t, "attempt", func() bool {
		if a.nattempts(id) < n {
			return false
		}
		h.q.mu.Lock()
		e := h.q.msgs[id]
		busy := e != nil && (e.inflight || e.queued)
		h.q.mu.Unlock()
		if busy {
			return false
		}
		found = false
		for _, x := range h.q.List() {
			if x.ID == id {
				s, found = x, true
			}
		}
		return !found || s.Recipients[0].Attempts >= n
	})
	return s, found
}

func TestBackoffDoubles(t *testing.T) {
	h := newHarness(t, nil)
	a := newDeferAgent(h.clock)
	stop := h.run(a)
	defer stop()
	t0 := h.clock.Now()
	id := h.enqueue("alice@example.org", []string{"bob@example.com"}, "Subject: x\r\n\r\nx\r\n")
	// Postfix: interval = age clamped to [300s, 4000s].
	wantGaps := []time.Duration{300, 300, 600, 1200, 2400, 4000, 4000}
	at := t0
	for n, gap := range wantGaps {
		s, ok := h.settled(a, id, n+1)
		if !ok {
			t.Fatalf("attempt %d: message left the queue", n+1)
		}
		want := at.Add(gap * time.Second)
		if !s.NextRetry.Equal(want) {
			t.Fatalf("attempt %d: next retry %v after start, want %v", n+1, s.NextRetry.Sub(t0), want.Sub(t0))
		}
		if s.State != StateDeferred {
			t.Fatalf("attempt %d: state %v, want deferred", n+1, s.State)
		}
		if got := s.Recipients[0].LastErr; !strings.Contains(got, "Connection refused") {
			t.Fatalf("last error %q", got)
		}
		h.clock.Advance(want.Sub(h.clock.Now()))
		at = want
		h.q.kick()
	}
	if n := strings.Count(h.logs.String(), string(id)+": from=<alice@example.org>, size=17, nrcpt=1 (queue active)"); n < len(wantGaps) {
		t.Errorf("%d (queue active) lines, want one per attempt (%d):\n%s", n, len(wantGaps), h.logs.String())
	}
	if !strings.Contains(h.logs.String(), "postcote/smtp[") || !strings.Contains(h.logs.String(), "dsn=4.4.1, status=deferred (connect to mx.example.com[192.0.2.1]:25: Connection refused)") {
		t.Errorf("no deferred log line:\n%s", h.logs.String())
	}
}

func TestDeferredRescheduledAfterReopen(t *testing.T) {
	h := newHarness(t, nil)
	a := newDeferAgent(h.clock)
	stop := h.run(a)
	id := h.enqueue("alice@example.org", []string{"bob@example.com"}, "x\r\n")
	s, _ := h.settled(a, id, 1)
	stop()
	h.reopen()
	got := h.q.List()
	if len(got) != 1 || !got[0].NextRetry.Equal(s.NextRetry) || got[0].Recipients[0].Attempts != 1 {
		t.Fatalf("after reopen: %+v", got)
	}
	a.setAccept("bob@example.com")
	stop = h.run(a)
	defer stop()
	h.clock.Advance(300 * time.Second)
	h.q.kick()
	waitFor(t, "retry after reopen", func() bool { return h.queued() == 0 })
}

// parsedReport is a delivery status notification taken apart.
type parsedReport struct {
	header     mail.Header
	human      string
	perMessage textproto.MIMEHeader
	perRcpt    []textproto.MIMEHeader
	thirdType  string
	third      string
}

func parseReport(t *testing.T, raw string) parsedReport {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("parse notice: %v\n%s", err, raw)
	}
	var p parsedReport
	p.header = m.Header
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q (%v)", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var parts []*multipart.Part
	var bodies []string
	for {
		part, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		b, _ := io.ReadAll(part)
		parts = append(parts, part)
		bodies = append(bodies, string(b))
	}
	if len(parts) != 3 {
		t.Fatalf("%d parts, want 3", len(parts))
	}
	if ct := parts[0].Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("part 1 type %q", ct)
	}
	p.human = bodies[0]
	if ct := parts[1].Header.Get("Content-Type"); ct != "message/delivery-status" {
		t.Errorf("part 2 type %q", ct)
	}
	// RFC 3464 2.1: blocks of header-like fields separated by blank lines.
	tr := textproto.NewReader(bufio.NewReader(strings.NewReader(strings.ReplaceAll(bodies[1], "\r\n", "\n"))))
	for {
		h, err := tr.ReadMIMEHeader()
		if len(h) > 0 {
			if p.perMessage == nil {
				p.perMessage = h
			} else {
				p.perRcpt = append(p.perRcpt, h)
			}
		}
		if err != nil {
			break
		}
	}
	p.thirdType = parts[2].Header.Get("Content-Type")
	p.third = bodies[2]
	return p
}

func TestExpiryBounce(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaximalQueueLifetime = 10 * time.Minute })
	a := newDeferAgent(h.clock)
	a.setAccept("carol@example.org")
	stop := h.run(a)
	defer stop()
	env := &Envelope{Sender: "alice@example.org", DSNEnvID: "QQ+2B314", Recipients: []Recipient{
		{Address: "bob@example.com", OrigAddress: "bob@example.com", DSNORcpt: "rfc822;bob@example.com"},
		{Address: "carol@example.org"},
	}}
	body := "From: alice@example.org\r\nSubject: lunch\r\nMessage-ID: <m1@example.org>\r\n\r\nsee you\r\n"
	if err := h.q.Enqueue(context.Background(), env, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	id := env.ID
	for n := 1; n <= 2; n++ {
		s, ok := h.settled(a, id, n)
		if !ok {
			t.Fatalf("gone after attempt %d", n)
		}
		h.clock.Advance(s.NextRetry.Sub(h.clock.Now()))
		h.q.kick()
	}
	// Third attempt at age 600s = lifetime: returned to sender.
	// The attempt's log lines follow its commit, which the notice's
	// delivery may overtake: wait for them too.
	waitFor(t, "bounce delivered", func() bool {
		return len(a.noticeList()) == 1 && h.queued() == 0 && strings.Contains(h.logs.String(), string(env.ID)+": removed")
	})
	n := a.noticeList()[0]
	if n.rcpt != "alice@example.org" {
		t.Fatalf("notice went to %q", n.rcpt)
	}
	r := parseReport(t, n.content)
	if got := r.header.Get("Subject"); got != "Undelivered Mail Returned to Sender" {
		t.Errorf("Subject %q", got)
	}
	if got := r.header.Get("From"); !strings.Contains(got, "MAILER-DAEMON@mx.example.net") {
		t.Errorf("From %q", got)
	}
	if to, err := r.header.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != "alice@example.org" {
		t.Errorf("To %q (%v)", r.header.Get("To"), err)
	}
	if r.header.Get("Auto-Submitted") != "auto-replied" {
		t.Errorf("Auto-Submitted %q", r.header.Get("Auto-Submitted"))
	}
	if !strings.Contains(r.human, "This is the mail system at host mx.example.net.") ||
		!strings.Contains(r.human, "<bob@example.com>: connect to mx.example.com[192.0.2.1]:25: Connection refused") {
		t.Errorf("human part:\n%s", r.human)
	}
	if strings.Contains(r.human, "carol@") {
		t.Errorf("delivered recipient in bounce")
	}
	pm := r.perMessage
	for k, want := range map[string]string{
		"Reporting-Mta":        "dns; mx.example.net",
		"X-Postfix-Queue-Id":   string(id),
		"Original-Envelope-Id": "QQ+314",
	} {
		if got := pm.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if pm.Get("Arrival-Date") == "" {
		t.Errorf("no Arrival-Date")
	}
	if len(r.perRcpt) != 1 {
		t.Fatalf("%d recipient blocks, want 1", len(r.perRcpt))
	}
	pr := r.perRcpt[0]
	for k, want := range map[string]string{
		"Final-Recipient":    "rfc822; bob@example.com",
		"Original-Recipient": "rfc822;bob@example.com",
		"Action":             "failed",
		"Status":             "5.4.1",
		"Diagnostic-Code":    "X-Postfix; connect to mx.example.com[192.0.2.1]:25: Connection refused",
	} {
		if got := pr.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if r.thirdType != "message/rfc822" || !strings.Contains(r.third, "Subject: lunch") || !strings.Contains(r.third, "see you") {
		t.Errorf("third part %q:\n%s", r.thirdType, r.third)
	}
	logs := h.logs.String()
	for _, want := range []string{
		string(id) + ": from=<alice@example.org>, status=expired, returned to sender",
		string(id) + ": sender non-delivery notification: ",
		string(id) + ": removed",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q", want)
		}
	}
}

// bounceAgent bounces every recipient of mail not from <> and records
// notices.
type bounceAgent struct{ deferAgent }

func (a *bounceAgent) Deliver(ctx context.Context, msg *Message, rcpts []int) []Result {
	if isNotice(msg) {
		return a.deferAgent.Deliver(ctx, msg, rcpts)
	}
	var out []Result
	for _, i := range rcpts {
		out = append(out, Result{Rcpt: i, Status: StatusBounced, DSN: "5.1.1",
			Reply:       "host mx.example.com[192.0.2.1] said: 550 5.1.1 <bob@example.com>: User unknown (in reply to RCPT TO command)",
			RemoteReply: "550 5.1.1 <bob@example.com>: User unknown", RemoteMTA: "mx.example.com",
			Relay: "mx.example.com[192.0.2.1]:25", Transport: "smtp"})
	}
	return out
}

func TestBounceRules(t *testing.T) {
	tests := []struct {
		name    string
		sender  string
		notify  string
		ret     string
		notices int
	}{
		{"default", "alice@example.org", "", "", 1},
		{"headers only", "alice@example.org", "FAILURE", "HDRS", 1},
		{"null sender", "", "", "", 0},
		{"never", "alice@example.org", "NEVER", "", 0},
		{"success only", "alice@example.org", "SUCCESS,DELAY", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			a := &bounceAgent{*newDeferAgent(h.clock)}
			env := &Envelope{Sender: tc.sender, DSNRet: tc.ret, Recipients: []Recipient{{Address: "bob@example.com", DSNNotify: tc.notify}}}
			if err := h.q.Enqueue(context.Background(), env, strings.NewReader("Subject: s\r\n\r\nbody text\r\n")); err != nil {
				t.Fatal(err)
			}
			stop := h.run(a)
			waitFor(t, "queue empty", func() bool {
				return h.queued() == 0 && strings.Contains(h.logs.String(), string(env.ID)+": removed")
			})
			stop()
			notices := a.noticeList()
			if len(notices) != tc.notices {
				t.Fatalf("%d notices, want %d\n%s", len(notices), tc.notices, h.logs.String())
			}
			if !strings.Contains(h.logs.String(), "relay=mx.example.com[192.0.2.1]:25") || !strings.Contains(h.logs.String(), "status=bounced (host mx.example.com") {
				t.Errorf("bounced log line missing:\n%s", h.logs.String())
			}
			if tc.notices == 0 {
				return
			}
			r := parseReport(t, notices[0].content)
			pr := r.perRcpt[0]
			if pr.Get("Status") != "5.1.1" || pr.Get("Remote-Mta") != "dns; mx.example.com" ||
				pr.Get("Diagnostic-Code") != "smtp; 550 5.1.1 <bob@example.com>: User unknown" {
				t.Errorf("recipient block %v", pr)
			}
			if tc.ret == "HDRS" {
				if r.thirdType != "text/rfc822-headers" || strings.Contains(r.third, "body text") || !strings.Contains(r.third, "Subject: s") {
					t.Errorf("RET=HDRS third part %q:\n%s", r.thirdType, r.third)
				}
			} else if r.thirdType != "message/rfc822" || !strings.Contains(r.third, "body text") {
				t.Errorf("third part %q:\n%s", r.thirdType, r.third)
			}
		})
	}
}

func TestNullSenderBounceExpiresSilently(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.BounceQueueLifetime = -1 }) // 0: first deferral expires it
	a := newDeferAgent(h.clock)
	stop := h.run(a)
	defer stop()
	env := &Envelope{Sender: "", Recipients: []Recipient{{Address: "gone@example.com"}}}
	if err := h.q.Enqueue(context.Background(), env, strings.NewReader("x\r\n")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "dropped", func() bool {
		return h.queued() == 0 && strings.Contains(h.logs.String(), string(env.ID)+": removed")
	})
	if strings.Contains(h.logs.String(), "sender non-delivery notification") {
		t.Errorf("a notice about a notice was sent")
	}
	if !strings.Contains(h.logs.String(), "sender is <>, undeliverable mail to <gone@example.com> discarded") {
		t.Errorf("no discard log line:\n%s", h.logs.String())
	}
}

func TestDelayWarning(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.DelayWarningTime = time.Hour })
	a := newDeferAgent(h.clock)
	stop := h.run(a)
	defer stop()
	id := h.enqueue("alice@example.org", []string{"bob@example.com"}, "Subject: slow\r\n\r\nbody\r\n")
	for n := 1; n <= 8; n++ {
		s, _ := h.settled(a, id, n)
		h.clock.Advance(s.NextRetry.Sub(h.clock.Now()))
		h.q.kick()
	}
	waitFor(t, "warning delivered", func() bool { return len(a.noticeList()) >= 1 })
	if got := len(a.noticeList()); got != 1 {
		t.Fatalf("%d warnings, want exactly 1", got)
	}
	r := parseReport(t, a.noticeList()[0].content)
	if r.header.Get("Subject") != "Delayed Mail (still being retried)" {
		t.Errorf("Subject %q", r.header.Get("Subject"))
	}
	if !strings.Contains(r.human, "THIS IS A WARNING ONLY") || !strings.Contains(r.human, "Your message could not be delivered for 1 hour(s).\r\nIt will be retried until it is 5 day(s) old.") {
		t.Errorf("human part:\n%s", r.human)
	}
	pr := r.perRcpt[0]
	if pr.Get("Action") != "delayed" || pr.Get("Status") != "4.4.1" || pr.Get("Will-Retry-Until") == "" {
		t.Errorf("recipient block %v", pr)
	}
	if r.thirdType != "text/rfc822-headers" || strings.Contains(r.third, "body") {
		t.Errorf("third part %q: %q", r.thirdType, r.third)
	}
	if !strings.Contains(h.logs.String(), string(id)+": sender delay notification: ") {
		t.Errorf("no delay notification log line")
	}
}

func TestSuccessNotice(t *testing.T) {
	tests := []struct {
		name           string
		sender, notify string
		relayed, pass  bool
		ret            string
		action         string // "" means no notice
	}{
		{"delivered", "alice@example.org", "SUCCESS", false, false, "", "delivered"},
		{"relayed", "alice@example.org", "SUCCESS,FAILURE", true, false, "", "relayed"},
		{"full", "alice@example.org", "SUCCESS", false, false, "FULL", "delivered"},
		{"passed on", "alice@example.org", "SUCCESS", true, true, "", ""},
		{"not asked", "alice@example.org", "", false, false, "", ""},
		{"failure only", "alice@example.org", "FAILURE", false, false, "", ""},
		{"null sender", "", "SUCCESS", false, false, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			a := newDeferAgent(h.clock)
			var mu sync.Mutex
			agent := AgentFunc(func(ctx context.Context, msg *Message, rcpts []int) []Result {
				if isNotice(msg) {
					return a.Deliver(ctx, msg, rcpts)
				}
				mu.Lock()
				defer mu.Unlock()
				return []Result{{Rcpt: rcpts[0], Status: StatusSent, DSN: "2.0.0", Reply: "delivered to mailbox",
					Relayed: tc.relayed, DSNPassedOn: tc.pass, Relay: "virtual"}}
			})
			env := &Envelope{Sender: tc.sender, DSNRet: tc.ret, Recipients: []Recipient{{Address: "bob@example.com", DSNNotify: tc.notify}}}
			if err := h.q.Enqueue(context.Background(), env, strings.NewReader("Subject: s\r\n\r\nbody text\r\n")); err != nil {
				t.Fatal(err)
			}
			stop := h.run(agent)
			waitFor(t, "done", func() bool {
				return h.queued() == 0 && strings.Contains(h.logs.String(), string(env.ID)+": removed")
			})
			stop()
			notices := a.noticeList()
			if tc.action == "" {
				if len(notices) != 0 {
					t.Fatalf("%d notices, want none", len(notices))
				}
				return
			}
			if len(notices) != 1 {
				t.Fatalf("%d notices, want 1", len(notices))
			}
			r := parseReport(t, notices[0].content)
			if r.header.Get("Subject") != "Successful Mail Delivery Report" || !strings.Contains(r.human, "successfully delivered") {
				t.Errorf("subject %q human %q", r.header.Get("Subject"), r.human)
			}
			if got := r.perRcpt[0].Get("Action"); got != tc.action {
				t.Errorf("Action %q, want %q", got, tc.action)
			}
			if r.perRcpt[0].Get("Status") != "2.0.0" {
				t.Errorf("Status %q", r.perRcpt[0].Get("Status"))
			}
			wantType := "text/rfc822-headers"
			if tc.ret == "FULL" {
				wantType = "message/rfc822"
			}
			if r.thirdType != wantType {
				t.Errorf("third part %q, want %q", r.thirdType, wantType)
			}
			if !strings.Contains(h.logs.String(), string(env.ID)+": sender delivery status notification: ") {
				t.Errorf("no notification log line")
			}
		})
	}
}
