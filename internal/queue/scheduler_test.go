package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeRouter is a Router for scheduler tests: a recipient's destination
// is "smtp:" and its domain; verdicts come from a function per domain;
// it counts the deliveries running per destination and remembers the
// most seen at once.
type fakeRouter struct {
	mu       sync.Mutex
	limits   map[string]Limits // by transport; "smtp" when routed by domain
	verdict  func(ctx context.Context, dest Destination, msg *Message, rcpt int) Result
	hold     map[string]chan struct{} // domain → closed to let its deliveries end
	running  map[string]int           // by destination, or by recipient with limit 1
	maxRun   map[string]int
	trans    int // running for the whole transport
	maxTrans int
	calls    []fakeCall
	routeErr map[string]error // by domain
}

type fakeCall struct {
	dest   Destination
	id     ID
	rcpts  []string
	start  time.Time
	notice bool
}

func newFakeRouter() *fakeRouter {
	return &fakeRouter{limits: map[string]Limits{}, hold: map[string]chan struct{}{},
		running: map[string]int{}, maxRun: map[string]int{}, routeErr: map[string]error{}}
}

func (f *fakeRouter) Route(_ context.Context, rcpt string) (Destination, error) {
	_, domain, _ := strings.Cut(rcpt, "@")
	f.mu.Lock()
	err := f.routeErr[domain]
	f.mu.Unlock()
	if err != nil {
		return Destination{}, err
	}
	return Destination{Transport: "smtp", Nexthop: domain}, nil
}

func (f *fakeRouter) Limits(transport string) Limits {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limits[transport]
}

func (f *fakeRouter) Deliver(ctx context.Context, msg *Message, rcpts []int) []Result {
	panic("the scheduler must call DeliverTo")
}

func (f *fakeRouter) DeliverTo(ctx context.Context, dest Destination, msg *Message, rcpts []int) []Result {
	key := dest.String()
	f.mu.Lock()
	if f.limits[dest.Transport].Recipients == 1 {
		key += "/" + msg.Envelope.Recipients[rcpts[0]].Address
	}
	f.running[key]++
	f.maxRun[key] = max(f.maxRun[key], f.running[key])
	f.trans++
	f.maxTrans = max(f.maxTrans, f.trans)
	c := fakeCall{dest: dest, id: msg.ID, start: time.Now(), notice: isNotice(msg)}
	for _, i := range rcpts {
		c.rcpts = append(c.rcpts, msg.Envelope.Recipients[i].Address)
	}
	f.calls = append(f.calls, c)
	hold := f.hold[dest.Nexthop]
	f.mu.Unlock()
	var out []Result
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			rcpts = nil // shut down: no verdict
		}
	}
	for _, i := range rcpts {
		if f.verdict != nil {
			out = append(out, f.verdict(ctx, dest, msg, i))
		} else {
			out = append(out, Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok", RemoteReply: "250 2.0.0 Ok", Relay: dest.Nexthop, Transport: "smtp"})
		}
	}
	f.mu.Lock()
	f.running[key]--
	f.trans--
	f.mu.Unlock()
	return out
}

func (f *fakeRouter) callsTo(nexthop string) []fakeCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeCall
	for _, c := range f.calls {
		if c.dest.Nexthop == nexthop && !c.notice {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeRouter) maxRunning(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxRun[key]
}

func (f *fakeRouter) runningNow(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[key]
}

// pendingTo counts the queued messages with a pending recipient at domain.
func (h *harness) pendingTo(domain string) int {
	n := 0
	for _, s := range h.q.List() {
		for _, r := range s.Recipients {
			if r.Status == Pending && strings.HasSuffix(r.Address, "@"+domain) {
				n++
				break
			}
		}
	}
	return n
}

// slowVerdict delivers after a pause, so that deliveries overlap.
func slowVerdict(d time.Duration) func(context.Context, Destination, *Message, int) Result {
	return func(_ context.Context, dest Destination, _ *Message, i int) Result {
		time.Sleep(d)
		return Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok", RemoteReply: "250 2.0.0 Ok", Relay: dest.Nexthop}
	}
}

func TestDestinationConcurrencyLimit(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lim     Limits
		wantMax int // the most deliveries to one destination at once
	}{
		{"limit 3", Limits{Concurrency: 3}, 3},
		{"limit 1", Limits{Concurrency: 1}, 1},
		{"slow start from 2", Limits{Concurrency: 4, Initial: 2}, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			f := newFakeRouter()
			f.limits["smtp"] = tc.lim
			f.verdict = slowVerdict(3 * time.Millisecond)
			// Queued before the scheduler starts: every destination has
			// a backlog, as after a restart or a flush.
			for i := 0; i < 30; i++ {
				h.enqueue("a@example.org", []string{fmt.Sprintf("u%d@one.example", i)}, "x\r\n")
				h.enqueue("a@example.org", []string{fmt.Sprintf("u%d@two.example", i)}, "x\r\n")
			}
			h.run(f)
			waitFor(t, "all delivered", func() bool { return h.queued() == 0 })
			for _, d := range []string{"smtp:one.example", "smtp:two.example"} {
				if got := f.maxRunning(d); got != tc.wantMax {
					t.Errorf("%s: at most %d deliveries at once, want the limit %d", d, got, tc.wantMax)
				}
			}
			// Both destinations ran side by side, each up to its limit.
			if f.maxTrans <= tc.wantMax {
				t.Errorf("transport ran at most %d at once: destinations did not run in parallel", f.maxTrans)
			}
		})
	}
}

func TestProcessLimit(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 5, Process: 3}
	f.verdict = slowVerdict(3 * time.Millisecond)
	h.run(f)
	for i := 0; i < 40; i++ {
		h.enqueue("a@example.org", []string{fmt.Sprintf("u@d%d.example", i%8)}, "x\r\n")
	}
	waitFor(t, "all delivered", func() bool { return h.queued() == 0 })
	if f.maxTrans > 3 {
		t.Errorf("%d deliveries of the transport at once, process limit 3", f.maxTrans)
	}
}

func TestRecipientBatches(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 20, Recipients: 50}
	h.run(f)
	var rcpts []string
	for i := 0; i < 120; i++ {
		rcpts = append(rcpts, fmt.Sprintf("u%d@big.example", i))
	}
	rcpts = append(rcpts, "x@small.example", "y@small.example")
	id := h.enqueue("a@example.org", rcpts, "x\r\n")
	waitFor(t, "delivered", func() bool { return strings.Contains(h.logs.String(), string(id)+": removed") })
	var sizes []int
	seen := map[string]bool{}
	for _, c := range f.callsTo("big.example") {
		if c.id != id {
			t.Fatalf("unexpected message %s", c.id)
		}
		sizes = append(sizes, len(c.rcpts))
		for _, r := range c.rcpts {
			if seen[r] {
				t.Errorf("%s delivered twice", r)
			}
			seen[r] = true
		}
	}
	if len(sizes) != 3 || sizes[0]+sizes[1]+sizes[2] != 120 || max(sizes[0], sizes[1], sizes[2]) != 50 || min(sizes[0], sizes[1], sizes[2]) != 20 {
		t.Errorf("batches %v, want 50, 50 and 20 recipients", sizes)
	}
	if c := f.callsTo("small.example"); len(c) != 1 || len(c[0].rcpts) != 2 {
		t.Errorf("small.example: %d deliveries, want one with both recipients", len(c))
	}
	// One removal, one set of log lines: the round was recorded once.
	if n := strings.Count(h.logs.String(), string(id)+": removed"); n != 1 {
		t.Errorf("%d removal lines, want 1", n)
	}
	if n := strings.Count(h.logs.String(), "status=sent"); n != 122 {
		t.Errorf("%d delivery lines, want 122", n)
	}
}

func TestRecipientLimitOneIsPerRecipient(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 2, Recipients: 1}
	f.verdict = slowVerdict(3 * time.Millisecond)
	for i := 0; i < 12; i++ {
		h.enqueue("a@example.org", []string{"alice@local.example", "bob@local.example"}, "x\r\n")
	}
	h.run(f)
	waitFor(t, "all delivered", func() bool { return h.queued() == 0 })
	for _, c := range f.callsTo("local.example") {
		if len(c.rcpts) != 1 {
			t.Fatalf("delivery with %d recipients, limit 1", len(c.rcpts))
		}
	}
	for _, k := range []string{"smtp:local.example/alice@local.example", "smtp:local.example/bob@local.example"} {
		if got := f.maxRunning(k); got > 2 || got < 1 {
			t.Errorf("%s: %d at once, want 1..2", k, got)
		}
	}
	// Concurrency counts per recipient: both users together exceed 2.
	if f.maxTrans < 3 {
		t.Errorf("at most %d deliveries at once: the limit was applied to the domain, not the recipient", f.maxTrans)
	}
}

func TestSlowDestinationDoesNotHoldUpOthers(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 20, Recipients: 50, Process: 100, Initial: 5, FailedCohorts: 1}
	f.hold["hang.example"] = make(chan struct{}) // never closed: hangs until shutdown
	stop := h.run(f)
	for i := 0; i < 100; i++ {
		h.enqueue("a@example.org", []string{fmt.Sprintf("u%d@hang.example", i)}, "x\r\n")
	}
	waitFor(t, "hanging deliveries", func() bool { return f.runningNow("smtp:hang.example") >= 5 })
	for i := 0; i < 10; i++ {
		h.enqueue("a@example.org", []string{fmt.Sprintf("u%d@ok.example", i)}, "x\r\n")
	}
	waitFor(t, "the healthy destination's 10 messages", func() bool { return h.pendingTo("ok.example") == 0 })
	if n := h.pendingTo("hang.example"); n != 100 {
		t.Errorf("%d messages for hang.example pending, want 100", n)
	}
	if got := f.maxRunning("smtp:hang.example"); got > 5 {
		t.Errorf("hang.example: %d deliveries at once; its window starts at 5 and nothing succeeded", got)
	}
	stop()
	// Shutdown: the hung deliveries end; nothing is lost.
	if n := h.pendingTo("hang.example"); n != 100 {
		t.Errorf("after shutdown %d messages for hang.example pending, want 100", n)
	}
}

// refused is a connection-level failure: no word from the server.
func refused(_ context.Context, dest Destination, _ *Message, i int) Result {
	if dest.Nexthop == "ok.example" || dest.Nexthop == "example.org" {
		return Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok", RemoteReply: "250 2.0.0 Ok", Relay: dest.Nexthop}
	}
	return Result{Rcpt: i, Status: StatusDeferred, DSN: "4.4.1", Reply: "connect to " + dest.Nexthop + "[192.0.2.9]:25: Connection refused", Relay: "none", Transport: "smtp"}
}

func TestDeadDestination(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 20, Initial: 5, FailedCohorts: 1}
	f.verdict = refused
	h.run(f)
	for i := 0; i < 60; i++ {
		h.enqueue("a@example.org", []string{fmt.Sprintf("u%d@dead.example", i)}, "x\r\n")
	}
	for i := 0; i < 5; i++ {
		h.enqueue("a@example.org", []string{fmt.Sprintf("u%d@ok.example", i)}, "x\r\n")
	}
	attempted := func() int {
		n := 0
		for _, s := range h.q.List() {
			if s.Recipients[0].Attempts > 0 {
				n++
			}
		}
		return n
	}
	waitFor(t, "every message tried or deferred", func() bool {
		return h.pendingTo("ok.example") == 0 && attempted() == 60
	})
	tries := len(f.callsTo("dead.example"))
	// Window 5, 1/5 cohort per failure: dead after about five failures;
	// the deliveries already started when it died end too.
	if tries > 15 {
		t.Errorf("%d deliveries tried to the dead destination, want it throttled after about 5", tries)
	}
	suspended := 0
	for _, s := range h.q.List() {
		if strings.HasPrefix(s.Recipients[0].LastErr, "delivery temporarily suspended: connect to dead.example") {
			suspended++
		}
	}
	if suspended != 60-tries {
		t.Errorf("%d recipients deferred as suspended, want %d (60 less the %d tried)", suspended, 60-tries, tries)
	}
	if !strings.Contains(h.logs.String(), "status=deferred (delivery temporarily suspended: connect to dead.example[192.0.2.9]:25: Connection refused)") {
		t.Errorf("no suspended deferral in the log:\n%s", h.logs.String())
	}

	// A flush forgets the dead state: the messages are tried again.
	h.q.Flush()
	waitFor(t, "retries after flush", func() bool { return len(f.callsTo("dead.example")) > tries })
}

func TestDeadDestinationComesBack(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 20, Initial: 1, FailedCohorts: 1}
	f.verdict = refused
	h.run(f)
	h.enqueue("a@example.org", []string{"u1@dead.example"}, "x\r\n")
	waitFor(t, "first try", func() bool { return len(f.callsTo("dead.example")) == 1 })
	waitFor(t, "recorded", func() bool { return strings.Contains(h.logs.String(), "status=deferred") })
	h.enqueue("a@example.org", []string{"u2@dead.example"}, "x\r\n")
	waitFor(t, "suspended", func() bool { return strings.Contains(h.logs.String(), "delivery temporarily suspended") })
	if n := len(f.callsTo("dead.example")); n != 1 {
		t.Fatalf("%d tries while dead, want 1", n)
	}
	// After minimal_backoff_time the destination is tried again, and
	// both messages are due.
	f.mu.Lock()
	f.verdict = nil
	f.mu.Unlock()
	h.clock.Advance(301 * time.Second)
	h.q.kick()
	waitFor(t, "delivered after the dead time", func() bool { return h.queued() == 0 })
}

func TestRateDelay(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Now = nil }) // real time
	f := newFakeRouter()
	const delay = 60 * time.Millisecond
	f.limits["smtp"] = Limits{Concurrency: 10, RateDelay: delay}
	for i := 0; i < 4; i++ {
		h.enqueue("a@example.org", []string{fmt.Sprintf("u%d@slow.example", i)}, "x\r\n")
	}
	h.enqueue("a@example.org", []string{"x@other.example"}, "x\r\n")
	h.run(f)
	waitFor(t, "delivered", func() bool { return h.queued() == 0 })
	calls := f.callsTo("slow.example")
	if len(calls) != 4 {
		t.Fatalf("%d deliveries, want 4", len(calls))
	}
	for i := 1; i < len(calls); i++ {
		if gap := calls[i].start.Sub(calls[i-1].start); gap < delay {
			t.Errorf("deliveries %d and %d %v apart, rate delay %v", i-1, i, gap, delay)
		}
	}
	if got := f.maxRunning("smtp:slow.example"); got != 1 {
		t.Errorf("%d at once with a rate delay, want 1", got)
	}
	// Another destination does not wait for it: its delivery starts
	// before slow.example's last (three delays after its first).
	if other := f.callsTo("other.example"); len(other) != 1 || !other[0].start.Before(calls[len(calls)-1].start) {
		t.Errorf("other.example waited for slow.example's rate delays")
	}
}

func TestOneNoticePerRound(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 20, Recipients: 1}
	f.verdict = func(_ context.Context, dest Destination, msg *Message, i int) Result {
		if isNotice(msg) {
			return Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 ok", RemoteReply: "250 ok"}
		}
		return Result{Rcpt: i, Status: StatusBounced, DSN: "5.1.1", Reply: "host said: 550 5.1.1 unknown", RemoteReply: "550 5.1.1 unknown"}
	}
	h.run(f)
	h.enqueue("a@example.org", []string{"x@one.example", "y@two.example", "z@two.example"}, "Subject: t\r\n\r\nx\r\n")
	waitFor(t, "bounce delivered", func() bool {
		return h.queued() == 0 && strings.Contains(h.logs.String(), "sender non-delivery notification")
	})
	if n := strings.Count(h.logs.String(), "sender non-delivery notification"); n != 1 {
		t.Errorf("%d non-delivery notices, want one for the three recipients", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	notices := 0
	for _, c := range f.calls {
		if c.notice {
			notices++
		}
	}
	if notices != 1 {
		t.Errorf("%d notices delivered, want 1", notices)
	}
}

func TestResolverFailureDefers(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 20}
	f.routeErr["ldap.example"] = errors.New("table lookup failed")
	h.run(f)
	id := h.enqueue("a@example.org", []string{"x@ldap.example", "y@ok.example"}, "x\r\n")
	waitFor(t, "attempt recorded", func() bool { return strings.Contains(h.logs.String(), "address resolver failure") })
	waitFor(t, "ok delivered", func() bool { return h.pendingTo("ok.example") == 0 })
	list := h.q.List()
	if len(list) != 1 || list[0].ID != id || list[0].Recipients[0].Status != Pending ||
		list[0].Recipients[0].LastErr != "address resolver failure: table lookup failed" {
		t.Fatalf("queue after resolver failure: %+v", list)
	}
}

func TestPlainAgentKeepsConcurrency(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Concurrency = 2 })
	var mu sync.Mutex
	running, most := 0, 0
	a := AgentFunc(func(ctx context.Context, msg *Message, rcpts []int) []Result {
		mu.Lock()
		running++
		most = max(most, running)
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		var out []Result
		for _, i := range rcpts {
			out = append(out, Result{Rcpt: i, Status: StatusSent})
		}
		return out
	})
	h.run(a)
	for i := 0; i < 12; i++ {
		h.enqueue("a@example.org", []string{"b@x.example", "c@y.example"}, "x\r\n")
	}
	waitFor(t, "delivered", func() bool { return h.queued() == 0 })
	if most > 2 || most < 1 {
		t.Errorf("%d deliveries at once, Concurrency 2", most)
	}
}

func TestHeldWhileWaitingIsNotDelivered(t *testing.T) {
	h := newHarness(t, nil)
	f := newFakeRouter()
	f.limits["smtp"] = Limits{Concurrency: 1}
	release := make(chan struct{})
	f.hold["busy.example"] = release
	ids := []ID{
		h.enqueue("a@example.org", []string{"u1@busy.example"}, "x\r\n"),
		h.enqueue("a@example.org", []string{"u2@busy.example"}, "x\r\n"),
		h.enqueue("a@example.org", []string{"u3@busy.example"}, "x\r\n"),
	}
	h.run(f)
	waitFor(t, "first delivery running", func() bool { return f.runningNow("smtp:busy.example") == 1 })
	first := f.callsTo("busy.example")[0].id
	var others []ID
	for _, id := range ids {
		if id != first {
			others = append(others, id)
		}
	}
	waiting, gone := others[0], others[1]
	if _, err := h.q.Hold(waiting); err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.Delete(gone); err != nil {
		t.Fatal(err)
	}
	close(release)
	waitFor(t, "first delivered", func() bool { return strings.Contains(h.logs.String(), string(first)+": removed") })
	waitFor(t, "the held message back on hold, not in delivery", func() bool {
		h.q.mu.Lock()
		defer h.q.mu.Unlock()
		e := h.q.msgs[waiting]
		return e != nil && !e.inflight
	})
	for _, c := range f.callsTo("busy.example") {
		if c.id != first {
			t.Errorf("%s delivered after it was held or deleted", c.id)
		}
	}
	if l := h.q.List(); len(l) != 1 || l[0].ID != waiting || l[0].State != StateHold || l[0].Recipients[0].Attempts != 0 {
		t.Errorf("queue: %+v", l)
	}
}
