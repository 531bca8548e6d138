package queue

import (
	"context"
	"math"
	"time"
)

// Destination is one of the queue manager's delivery queues, as Postfix's
// qmgr(8) has them: a transport (the master.cf service name) and its next
// hop. Concurrency is counted per destination; with a recipient limit of
// 1 it is counted per recipient (see Limits.Recipients).
type Destination struct {
	Transport string // "smtp", "lmtp", "virtual", "local", "relay", "error"…
	Nexthop   string // "example.com", "[mx.example.com]:25", "unix:private/dovecot-lmtp"…
}

// String returns "transport:nexthop".
func (d Destination) String() string { return d.Transport + ":" + d.Nexthop }

// Limits are one transport's scheduling settings (postconf(5),
// SCHEDULER_README). Zero means "no limit" for Concurrency, Recipients
// and Process.
type Limits struct {
	// Concurrency: <transport>_destination_concurrency_limit, deliveries
	// to one destination at once.
	Concurrency int
	// Recipients: <transport>_destination_recipient_limit, recipients in
	// one delivery. With 1 the destination is the recipient, as in
	// Postfix 2.5 and later: Concurrency then limits the deliveries to one
	// recipient (local_destination_concurrency_limit = 2 means two
	// deliveries to one local user at once).
	Recipients int
	// Process: master.cf maxproc of the transport ("-" is
	// default_process_limit), deliveries by the transport at once, over
	// all its destinations.
	Process int
	// Initial: initial_destination_concurrency (or
	// <transport>_initial_destination_concurrency), the window a
	// destination starts with. Each successful delivery adds 1/window to
	// it and each failed one takes 1/window away (Postfix's default
	// positive and negative feedback, "1/concurrency"), between 1 and
	// Concurrency. 0 starts at Concurrency (no slow start).
	Initial int
	// FailedCohorts: <transport>_destination_concurrency_failed_cohort_limit.
	// A failed delivery counts 1/window cohorts; once FailedCohorts are
	// reached without a success in between, the destination is dead for
	// minimal_backoff_time: its other recipients are deferred without a
	// try ("delivery temporarily suspended: …"). 0: never dead.
	FailedCohorts int
	// RateDelay: <transport>_destination_rate_delay, the pause between
	// two deliveries to one destination; when set the destination's
	// concurrency is 1.
	RateDelay time.Duration
}

// Router is an Agent that lets the queue schedule per destination: the
// queue asks it where each recipient goes, groups the recipients of a
// message by destination into deliveries of at most Limits.Recipients,
// and runs them under the destination's and the transport's limits, so
// a slow or dead destination holds up only its own mail. Run uses it
// when the Agent it is given implements it; a plain Agent gets every
// recipient of a message in one call, at most Options.Concurrency calls
// at once.
type Router interface {
	Agent
	// Route resolves a recipient address (Postfix's trivial-rewrite
	// resolve). An error defers the recipient ("address resolver
	// failure").
	Route(ctx context.Context, rcpt string) (Destination, error)
	// Limits returns the transport's scheduling settings.
	Limits(transport string) Limits
	// DeliverTo delivers msg to rcpts, all routed to dest.
	DeliverTo(ctx context.Context, dest Destination, msg *Message, rcpts []int) []Result
}

// destKey names a destination queue: with a recipient limit of 1 the
// recipient is part of it.
type destKey struct{ transport, nexthop, rcpt string }

// destQueue is the scheduler's state for one destination: deliveries
// waiting, deliveries running, the concurrency window and the dead
// destination throttle (Postfix qmgr_queue.c).
type destQueue struct {
	key    destKey
	dest   Destination
	tq     *transQueue
	jobs   []*job // waiting, oldest first
	active int

	window      float64 // concurrency window; +Inf when unlimited
	success     float64 // positive feedback accumulated (hysteresis 1)
	failure     float64 // negative feedback accumulated (hysteresis 1)
	failCohorts float64
	failedAt    time.Time // the last failure
	forgetAt    time.Time // the timer set to forget it once failures are old

	dead      bool
	deadUntil time.Time
	deadWhy   Result // the failure that made it dead, for the deferrals

	notBefore time.Time // rate delay: no delivery starts before
	timerAt   time.Time // the rate delay timer set, to set it once
	listed    bool      // in tq.runnable
}

// transQueue is one transport's state: its limits and the destinations
// with deliveries that may start, served round-robin.
type transQueue struct {
	name     string
	lim      Limits
	active   int
	runnable []*destQueue
}

func (tq *transQueue) full() bool { return tq.lim.Process > 0 && tq.active >= tq.lim.Process }

// initialWindow is where a new or revived destination starts.
func initialWindow(lim Limits) float64 {
	if lim.Concurrency <= 0 && lim.Initial <= 0 {
		return math.Inf(1)
	}
	w := lim.Initial
	if w <= 0 || (lim.Concurrency > 0 && w > lim.Concurrency) {
		w = lim.Concurrency
	}
	return float64(w)
}

// limit is how many deliveries the destination may have at once now.
func (dq *destQueue) limit() int {
	lim := dq.tq.lim
	if lim.RateDelay > 0 {
		return 1
	}
	w := dq.window
	if lim.Concurrency > 0 && w > float64(lim.Concurrency) {
		w = float64(lim.Concurrency)
	}
	if math.IsInf(w, 1) || w > math.MaxInt32 {
		return math.MaxInt32
	}
	return max(1, int(w))
}

// canStart: a waiting delivery may start now, as far as the destination
// is concerned (the transport's process limit is checked apart).
func (dq *destQueue) canStart(now time.Time) bool {
	return len(dq.jobs) > 0 && !dq.dead && !now.Before(dq.notBefore) && dq.active < dq.limit()
}

// positive is Postfix's qmgr_queue_unthrottle: a delivery reached the
// destination. The failed cohorts are forgotten and the window grows by
// 1/window per success until Concurrency.
func (dq *destQueue) positive() {
	dq.failCohorts = 0
	lim := dq.tq.lim
	if math.IsInf(dq.window, 1) || (lim.Concurrency > 0 && dq.window >= float64(lim.Concurrency)) {
		return
	}
	fb := 1 / dq.window
	dq.success += fb
	for dq.success+fb/2 >= 1 {
		dq.window++
		dq.success--
		dq.failure = 0
	}
	if lim.Concurrency > 0 && dq.window > float64(lim.Concurrency) {
		dq.window = float64(lim.Concurrency)
	}
}

// negative is Postfix's qmgr_queue_throttle: a delivery could not reach
// the destination. It counts 1/window failed cohorts (dead at
// FailedCohorts) and shrinks the window by 1/window per failure, not
// below 1. It reports whether the destination just died.
func (dq *destQueue) negative(why Result, now time.Time, deadFor time.Duration) bool {
	lim := dq.tq.lim
	w := dq.window
	if math.IsInf(w, 1) {
		w = float64(max(1, dq.active+1))
	}
	dq.failCohorts += 1 / w
	if lim.FailedCohorts > 0 && dq.failCohorts >= float64(lim.FailedCohorts) {
		dq.dead = true
		dq.deadUntil = now.Add(deadFor)
		dq.deadWhy = why
		return true
	}
	if math.IsInf(dq.window, 1) {
		return false
	}
	fb := 1 / dq.window
	dq.failure -= fb
	for dq.failure-fb/2 < 0 {
		dq.window--
		dq.success = 0
		dq.failure++
	}
	if dq.window < 1 {
		dq.window = 1
	}
	return false
}

// revive ends the dead state (its time is up, or postqueue -f/-i).
func (dq *destQueue) revive() {
	dq.dead = false
	dq.deadUntil = time.Time{}
	dq.deadWhy = Result{}
	dq.failCohorts = 0
	dq.window = initialWindow(dq.tq.lim)
	dq.success, dq.failure = 0, 0
}

// suspended is the verdict for a recipient of a dead destination
// (Postfix: "delivery temporarily suspended: " and the reason).
func (dq *destQueue) suspended(rcpt int) Result {
	r := dq.deadWhy
	dsn := r.DSN
	if !validDSN(dsn) || dsn[0] != '4' {
		dsn = "4.4.1"
	}
	return Result{Rcpt: rcpt, Status: StatusDeferred, DSN: dsn,
		Reply: "delivery temporarily suspended: " + r.Reply, Relay: "none", Transport: "error"}
}

// timerItem wakes a destination at a time: the end of a rate delay or of
// the dead state. Items that no longer match are skipped.
type timerItem struct {
	at time.Time
	dq *destQueue
}

type timerHeap []timerItem

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timerItem)) }
func (h *timerHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
