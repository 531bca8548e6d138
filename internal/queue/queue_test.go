package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/maillog"
)

// fakeClock is a settable clock for tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     *testing.T
	dir   string
	clock *fakeClock
	logs  *maillog.Buffer
	opts  Options
	q     *Queue
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), clock: newClock(), logs: &maillog.Buffer{}}
	h.opts = Options{
		Logger:   maillog.New(h.logs, "mx.example.net", false),
		Now:      h.clock.Now,
		Hostname: "mx.example.net",
		// Small segments keep the preallocated spare cheap.
		SegmentSize: 1 << 20,
	}
	if mod != nil {
		mod(&h.opts)
	}
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	q, err := Open(h.dir, h.opts)
	if err != nil {
		h.t.Fatalf("Open: %v", err)
	}
	h.q = q
	h.t.Cleanup(func() { q.Close() })
}

func (h *harness) reopen() {
	h.t.Helper()
	if err := h.q.Close(); err != nil {
		h.t.Fatalf("Close: %v", err)
	}
	h.open()
}

func (h *harness) enqueue(sender string, rcpts []string, body string) ID {
	h.t.Helper()
	env := &Envelope{Sender: sender, Protocol: "ESMTP", ClientName: "client.example.org", ClientAddr: "192.0.2.7"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, Recipient{Address: r, OrigAddress: r})
	}
	if err := h.q.Enqueue(context.Background(), env, strings.NewReader(body)); err != nil {
		h.t.Fatalf("Enqueue: %v", err)
	}
	return env.ID
}

// recAgent records deliveries and answers with a programmable verdict.
type recAgent struct {
	mu      sync.Mutex
	verdict func(msg *Message, rcpt int) Result
	got     []delivery
	notify  chan struct{}
}

type delivery struct {
	id      ID
	rcpt    string
	sender  string
	content string
}

func newAgent(verdict func(msg *Message, rcpt int) Result) *recAgent {
	if verdict == nil {
		verdict = func(msg *Message, i int) Result {
			return Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok", Relay: "virtual", Transport: "virtual"}
		}
	}
	return &recAgent{verdict: verdict, notify: make(chan struct{}, 1000)}
}

func (a *recAgent) Deliver(ctx context.Context, msg *Message, rcpts []int) []Result {
	rc, err := msg.Open()
	var content []byte
	if err == nil {
		content, err = io.ReadAll(rc)
		rc.Close()
	}
	var out []Result
	for _, i := range rcpts {
		if err != nil {
			out = append(out, Result{Rcpt: i, Status: StatusDeferred, DSN: "4.3.0", Reply: err.Error()})
			continue
		}
		a.mu.Lock()
		a.got = append(a.got, delivery{msg.ID, msg.Envelope.Recipients[i].Address, msg.Envelope.Sender, string(content)})
		a.mu.Unlock()
		out = append(out, a.verdict(msg, i))
	}
	a.notify <- struct{}{}
	return out
}

func (a *recAgent) deliveries() []delivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]delivery(nil), a.got...)
}

// run starts the scheduler and returns a stop function that waits for it.
func (h *harness) run(a Agent) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.q.Run(ctx, a) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("Run: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// waitFor polls cond until it holds or 5 seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *harness) queued() int { return len(h.q.List()) }

func TestEnqueueDeliver(t *testing.T) {
	h := newHarness(t, nil)
	a := newAgent(nil)
	stop := h.run(a)
	defer stop()
	body := "Message-ID: <abc@example.org>\r\nSubject: hi\r\n\r\nhello\r\n"
	id := h.enqueue("alice@example.org", []string{"bob@example.net", "carol@example.net"}, body)
	waitFor(t, "delivery", func() bool { return h.queued() == 0 })
	got := a.deliveries()
	if len(got) != 2 {
		t.Fatalf("deliveries = %d, want 2", len(got))
	}
	for _, d := range got {
		if d.id != id || d.content != body || d.sender != "alice@example.org" {
			t.Errorf("delivery %+v", d)
		}
	}
	logs := h.logs.String()
	for _, want := range []string{
		"postcote/cleanup[",
		string(id) + ": message-id=<abc@example.org>",
		string(id) + ": from=<alice@example.org>, size=" + fmt.Sprint(len(body)) + ", nrcpt=2 (queue active)",
		string(id) + ": to=<bob@example.net>, relay=virtual, delay=0, delays=0/0/0/0, dsn=2.0.0, status=sent (250 2.0.0 Ok)",
		string(id) + ": removed",
	} {
		waitFor(t, "log "+want, func() bool { return strings.Contains(h.logs.String(), want) })
	}
	_ = logs
}

func TestEnqueueTooBig(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.MaxMessageSize = 100; o.LargeThreshold = 50 })
	env := &Envelope{Sender: "a@example.org", Recipients: []Recipient{{Address: "b@example.net"}}}
	err := h.q.Enqueue(context.Background(), env, strings.NewReader(strings.Repeat("x", 101)))
	if !errors.Is(err, ErrMessageTooBig) {
		t.Fatalf("err = %v, want ErrMessageTooBig", err)
	}
	env.ID = ""
	if err := h.q.Enqueue(context.Background(), env, strings.NewReader(strings.Repeat("x", 100))); err != nil {
		t.Fatalf("100 bytes: %v", err)
	}
	if n := h.queued(); n != 1 {
		t.Fatalf("queued = %d, want 1", n)
	}
}

type failReader struct{ n int }

func (f *failReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("connection reset")
	}
	k := min(len(p), f.n)
	for i := range p[:k] {
		p[i] = 'x'
	}
	f.n -= k
	return k, nil
}

func TestEnqueueReadErrorQueuesNothing(t *testing.T) {
	for _, size := range []int{10, 3000} {
		h := newHarness(t, func(o *Options) { o.LargeThreshold = 1000 })
		env := &Envelope{Sender: "a@example.org", Recipients: []Recipient{{Address: "b@example.net"}}}
		if err := h.q.Enqueue(context.Background(), env, &failReader{n: size}); err == nil {
			t.Fatalf("size %d: no error", size)
		}
		if n := h.queued(); n != 0 {
			t.Fatalf("size %d: queued = %d", size, n)
		}
		h.reopen()
		if n := h.queued(); n != 0 {
			t.Fatalf("size %d: after reopen queued = %d", size, n)
		}
	}
}

func TestLargeMessage(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.LargeThreshold = 1000 })
	body := "Subject: big\r\n\r\n" + strings.Repeat("0123456789", 500)
	id := h.enqueue("a@example.org", []string{"b@example.net"}, body)
	h.reopen()
	a := newAgent(nil)
	stop := h.run(a)
	waitFor(t, "delivery", func() bool { return h.queued() == 0 })
	stop()
	got := a.deliveries()
	if len(got) != 1 || got[0].id != id || got[0].content != body {
		t.Fatalf("got %d deliveries, content ok=%v", len(got), len(got) == 1 && got[0].content == body)
	}
}

func TestReopenDeliversPendingOnce(t *testing.T) {
	h := newHarness(t, nil)
	var ids []ID
	for i := 0; i < 20; i++ {
		ids = append(ids, h.enqueue("a@example.org", []string{"b@example.net"}, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
	}
	h.reopen()
	if n := h.queued(); n != 20 {
		t.Fatalf("after reopen: %d queued, want 20", n)
	}
	a := newAgent(nil)
	stop := h.run(a)
	waitFor(t, "delivery", func() bool { return h.queued() == 0 })
	stop()
	h.reopen()
	a2 := newAgent(nil)
	stop = h.run(a2)
	// Give a wrong implementation the chance to deliver again.
	h.enqueue("x@example.org", []string{"y@example.net"}, "marker")
	waitFor(t, "marker", func() bool { return h.queued() == 0 })
	stop()
	count := map[ID]int{}
	for _, d := range a.deliveries() {
		count[d.id]++
	}
	for _, id := range ids {
		if count[id] != 1 {
			t.Errorf("%s delivered %d times", id, count[id])
		}
	}
	if n := len(a2.deliveries()); n != 1 {
		t.Errorf("second run delivered %d, want only the marker", n)
	}
}
