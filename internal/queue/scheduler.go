package queue

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Agent delivers messages: the transports implement it. Deliver tries the
// recipients rcpts (indexes into msg.Envelope.Recipients, all pending) and
// returns one Result per recipient. A recipient without a result is
// deferred. It should return promptly when ctx is done.
type Agent interface {
	Deliver(ctx context.Context, msg *Message, rcpts []int) []Result
}

// AgentFunc adapts a function to Agent.
type AgentFunc func(ctx context.Context, msg *Message, rcpts []int) []Result

// Deliver calls f.
func (f AgentFunc) Deliver(ctx context.Context, msg *Message, rcpts []int) []Result {
	return f(ctx, msg, rcpts)
}

// Message is a queued message handed to an Agent.
type Message struct {
	ID       ID
	Envelope Envelope // a copy; changing it changes nothing in the queue
	Size     int64
	q        *Queue
}

// Open returns the message content (exactly as received).
func (m *Message) Open() (io.ReadCloser, error) { return m.q.openContent(m.ID) }

// Status is the outcome of one delivery attempt for one recipient.
type Status int

// Delivery outcomes.
const (
	StatusSent     Status = iota + 1 // delivered; the recipient is done
	StatusDeferred                   // temporary failure: retry later
	StatusBounced                    // permanent failure: return to sender
)

func (s Status) String() string {
	switch s {
	case StatusSent:
		return "sent"
	case StatusDeferred:
		return "deferred"
	case StatusBounced:
		return "bounced"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// Result is what happened to one recipient.
type Result struct {
	Rcpt   int
	Status Status
	DSN    string // enhanced status code (RFC 3463), e.g. "2.0.0", "4.4.1", "5.1.1"
	// Reply is the text Postfix shows in parentheses in the log and in
	// bounces: "250 2.0.0 Ok: queued as 4cYv…", "host mx[1.2.3.4] said:
	// 550 5.1.1 No such user (in reply to RCPT TO command)",
	// "connect to mx[1.2.3.4]:25: Connection refused".
	Reply string
	// RemoteReply is the remote server's own reply when the verdict came
	// from one (Diagnostic-Code: smtp; …, RFC 3464 2.3.6), else "".
	RemoteReply string
	RemoteMTA   string // the remote host name for Remote-MTA, "" if none
	Relay       string // "mail.example.com[192.0.2.1]:25", "private/dovecot-lmtp", "virtual", "local", "none"
	Transport   string // program name for the log line: "smtp", "lmtp", "virtual"…; default "qmgr"
	// For NOTIFY=SUCCESS (RFC 3461 5.2.2): DSNPassedOn means the next hop
	// accepted the NOTIFY parameters and reports success itself, so no
	// notice is sent here; Relayed means the next hop does not do DSN
	// (the notice says Action: relayed instead of delivered).
	DSNPassedOn bool
	Relayed     bool
	ConnDelay   time.Duration // connection setup (delays=…/…/c/…)
	Delay       time.Duration // transmission (delays=…/…/…/d)
}

// Run delivers queued messages through agent until ctx is done, then
// waits for deliveries under way to be recorded and returns nil. New
// messages start at once (Enqueue wakes the scheduler); deferred ones
// when their retry time comes.
//
// When agent is a Router, Run schedules as Postfix's qmgr does: each due
// message (at most ActiveLimit at once) has its pending recipients
// routed and grouped by destination into deliveries of at most the
// transport's recipient limit, and each destination runs its deliveries
// under its concurrency window, rate delay and dead-destination
// throttle, and its transport's process limit (see Limits); the
// transports' waiting destinations are served round-robin, so a slow
// destination delays only its own mail. A plain Agent gets every pending
// recipient of a message in one call, at most Concurrency calls at once.
//
// The results of one message's deliveries are recorded together once
// the last of them is done (one update, one bounce or delay notice per
// attempt, as Postfix sends one per pass of a message through its active
// queue); so a crash repeats deliveries, never loses one.
func (q *Queue) Run(ctx context.Context, agent Agent) error {
	q.mu.Lock()
	if q.running {
		q.mu.Unlock()
		return errors.New("queue: Run is already running")
	}
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	q.running = true
	s := newSched(ctx, q, agent)
	q.sched = s
	q.mu.Unlock()
	defer func() {
		q.mu.Lock()
		q.running = false
		q.sched = nil
		q.mu.Unlock()
	}()

	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		now := q.now()
		q.promoteDue(now)
		s.activateReady()
		s.fireTimers(now)
		s.dispatch(now)
		done := s.takeDone()
		sleep := q.opts.QueueRunDelay
		if len(q.retry) > 0 {
			if d := q.retry[0].at.Sub(now); d < sleep {
				sleep = d
			}
		}
		if len(s.timers) > 0 {
			if d := s.timers[0].at.Sub(now); d < sleep {
				sleep = d
			}
		}
		q.mu.Unlock()
		s.completeAsync(done)
		if sleep < time.Millisecond {
			sleep = time.Millisecond
		}
		timer.Reset(sleep)
		select {
		case <-ctx.Done():
			s.stop()
			return nil
		case <-q.wake:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (e *entry) pendingRcpts() []int {
	var idx []int
	for i := range e.env.Recipients {
		if e.env.Recipients[i].Status == Pending {
			idx = append(idx, i)
		}
	}
	return idx
}

// kick wakes the scheduler.
func (q *Queue) kick() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// schedule puts e where the scheduler will find it: the ready list when
// due, the retry heap otherwise. Messages held, in delivery or without
// pending recipients are left alone. q.mu is held.
func (q *Queue) schedule(e *entry, now time.Time) {
	if e.held || e.inflight || e.queued {
		return
	}
	if !e.nextRetry.After(now) {
		if len(e.pendingRcpts()) == 0 {
			return
		}
		e.queued = true
		e.readyAt = now
		q.ready = append(q.ready, e.env.ID)
		return
	}
	heap.Push(&q.retry, retryItem{e.nextRetry, e.env.ID})
}

// promoteDue moves deferred messages whose time has come to the ready
// list. Heap items that no longer match their message are dropped.
func (q *Queue) promoteDue(now time.Time) {
	for len(q.retry) > 0 && !q.retry[0].at.After(now) {
		it := heap.Pop(&q.retry).(retryItem)
		e := q.msgs[it.id]
		if e == nil || !e.nextRetry.Equal(it.at) {
			continue
		}
		q.schedule(e, now)
	}
}

type retryItem struct {
	at time.Time
	id ID
}

type retryHeap []retryItem

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(retryItem)) }
func (h *retryHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}

// callAgent runs one delivery; a panic in the agent defers the
// recipients instead of taking the whole server down.
func (q *Queue) callAgent(msg *Message, deliver func() []Result) (results []Result) {
	defer func() {
		if p := recover(); p != nil {
			q.logf("qmgr", "warning: %s: delivery agent failed: %v", msg.ID, p)
			results = nil // every recipient is deferred by finish
		}
	}()
	return deliver()
}

// attemptTimes are the times of one attempt at a message, for the
// delays=a/b/c/d of its log lines; spans, when set, has each recipient's
// own delivery start and end.
type attemptTimes struct {
	arrival, enqueued, ready, start time.Time
	spans                           map[int]span
}

// span is when one delivery ran.
type span struct{ start, end time.Time }

// backoff is Postfix's retry interval (qmgr_active.c): the time the
// message has been queued, clamped to [minimal_backoff_time,
// maximal_backoff_time]. As retries happen at that age, the interval
// doubles from the minimum until it reaches the maximum.
func (q *Queue) backoff(age time.Duration) time.Duration {
	if age < q.opts.MinimalBackoff {
		return q.opts.MinimalBackoff
	}
	if age > q.opts.MaximalBackoff {
		return q.opts.MaximalBackoff
	}
	return age
}

// Flush makes every deferred message due now and forgets which
// destinations are dead (postqueue -f).
func (q *Queue) Flush() {
	q.mu.Lock()
	now := q.now()
	for _, e := range q.msgs {
		if e.nextRetry.After(now) {
			e.nextRetry = time.Time{}
			q.schedule(e, now)
		}
	}
	if q.sched != nil {
		q.sched.reviveDead(now)
	}
	q.mu.Unlock()
	q.kick()
}
