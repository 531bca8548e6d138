package queue

import (
	"container/heap"
	"context"
	"fmt"
	"sync"
	"time"
)

// job is one delivery: recipients of one message, all to one destination.
type job struct {
	r     *round
	dq    *destQueue
	rcpts []int
}

// round is one attempt at a message: its pending recipients when it
// became due, split into jobs. Its results are recorded together when
// the last job is done.
type round struct {
	msg         *Message
	enqueued    time.Time
	ready       time.Time
	retry       bool // the message had attempts before ("queue active" log)
	rcpts       []int
	tried       []int // recipients with a verdict (a delivery ran, or the scheduler decided)
	results     []Result
	spans       map[int]span
	outstanding int // jobs not done
}

// sched is the state of one Run: the destinations and transports with
// mail, and the messages in a round. Its fields are guarded by q.mu.
type sched struct {
	ctx     context.Context
	q       *Queue
	agent   Agent
	router  Router // agent as a Router, nil for a plain Agent
	dests   map[destKey]*destQueue
	trans   map[string]*transQueue
	timers  timerHeap
	active  int      // messages in a round
	routing int      // rounds being routed (activate running)
	done    []*round // rounds complete, to record outside q.mu
	// stopping: ctx is done; deliveries not started are dropped.
	stopping bool
	wg       sync.WaitGroup
}

func newSched(ctx context.Context, q *Queue, agent Agent) *sched {
	s := &sched{ctx: ctx, q: q, agent: agent, dests: map[destKey]*destQueue{}, trans: map[string]*transQueue{}}
	s.router, _ = agent.(Router)
	return s
}

// maxRouting bounds the messages being routed at once (routing may
// query LDAP or SQL tables; Postfix's qmgr resolves one at a time).
const maxRouting = 32

// activateReady starts a round for each due message, up to ActiveLimit
// messages in rounds. q.mu is held.
func (s *sched) activateReady() {
	q := s.q
	now := q.now()
	limit := q.opts.ActiveLimit
	if s.router == nil {
		limit = min(limit, q.opts.Concurrency) // each round holds its slot until recorded
	}
	for s.active < limit && s.routing < maxRouting && len(q.ready) > 0 {
		id := q.ready[0]
		q.ready[0] = ""
		q.ready = q.ready[1:]
		e := q.msgs[id]
		if e == nil {
			continue
		}
		e.queued = false
		rcpts := e.pendingRcpts()
		if e.inflight || e.held || len(rcpts) == 0 {
			continue
		}
		if e.nextRetry.After(now) {
			q.schedule(e, now) // its retry time moved: wait in the heap
			continue
		}
		e.inflight = true
		r := &round{
			msg:      &Message{ID: id, Envelope: cloneEnvelope(&e.env), Size: e.size, q: q},
			enqueued: e.enqueued, ready: e.readyAt, rcpts: rcpts,
		}
		for i := range e.env.Recipients {
			r.retry = r.retry || e.env.Recipients[i].Attempts > 0
		}
		s.active++
		if s.router == nil {
			// Nothing to resolve: one delivery, queued at once (it logs
			// "queue active" when it starts, see start).
			s.queueJobs(r, []*group{{lim: Limits{Concurrency: q.opts.Concurrency}, rcpts: rcpts}}, nil, now)
			continue
		}
		s.routing++
		s.wg.Add(1)
		go s.activate(r)
	}
	if len(q.ready) == 0 {
		q.ready = nil // let the backing array go
	}
}

// group is the recipients of a round bound for one destination.
type group struct {
	key   destKey
	dest  Destination
	lim   Limits
	rcpts []int
	jobs  []*job
}

// activate routes a round's recipients (Postfix's qmgr asks
// trivial-rewrite to resolve each) and queues its jobs at their
// destinations. It runs without q.mu: routing may consult tables.
func (s *sched) activate(r *round) {
	defer s.wg.Done()
	q := s.q
	s.logActive(r)
	groups, failed := s.route(r)
	q.mu.Lock()
	s.routing--
	s.queueJobs(r, groups, failed, q.now())
	done := s.takeDone()
	q.mu.Unlock()
	for _, d := range done {
		s.complete(d)
	}
	q.kick()
}

// logActive logs, for a message tried before, what Postfix's qmgr logs
// each time a message enters the active queue again.
func (s *sched) logActive(r *round) {
	if r.retry {
		msg := r.msg
		s.q.logf("qmgr", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)", msg.ID, clean(msg.Envelope.Sender), msg.Size, len(msg.Envelope.Recipients))
	}
}

// route groups a round's recipients by destination; failed are the
// recipients the router could not resolve, deferred.
func (s *sched) route(r *round) (groups []*group, failed []Result) {
	byKey := map[destKey]*group{}
	lims := map[string]Limits{}
	for _, i := range r.rcpts {
		addr := r.msg.Envelope.Recipients[i].Address
		d, err := s.routeOne(addr)
		if err != nil {
			failed = append(failed, Result{Rcpt: i, Status: StatusDeferred, DSN: "4.3.0",
				Reply: "address resolver failure: " + err.Error(), Relay: "none"})
			continue
		}
		lim, ok := lims[d.Transport]
		if !ok {
			lim = s.router.Limits(d.Transport)
			lims[d.Transport] = lim
		}
		k := destKey{transport: d.Transport, nexthop: d.Nexthop}
		if lim.Recipients == 1 {
			k.rcpt = addr
		}
		g := byKey[k]
		if g == nil {
			g = &group{key: k, dest: d, lim: lim}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.rcpts = append(g.rcpts, i)
	}
	return groups, failed
}

// queueJobs splits each group into deliveries of at most its recipient
// limit and queues them at its destination (a dead one defers them at
// once). Rounds that end here go to s.done. q.mu is held.
func (s *sched) queueJobs(r *round, groups []*group, failed []Result, now time.Time) {
	for _, f := range failed {
		r.tried = append(r.tried, f.Rcpt)
		r.results = append(r.results, f)
	}
	if s.stopping {
		s.done = append(s.done, r)
		return
	}
	njobs := 0
	for _, g := range groups {
		n := g.lim.Recipients
		if n <= 0 {
			n = len(g.rcpts)
		}
		for rest := g.rcpts; len(rest) > 0; {
			k := min(n, len(rest))
			g.jobs = append(g.jobs, &job{r: r, rcpts: rest[:k:k]})
			rest = rest[k:]
		}
		njobs += len(g.jobs)
	}
	if njobs == 0 {
		s.done = append(s.done, r)
		return
	}
	r.outstanding = njobs
	for _, g := range groups {
		dq := s.destQueue(g, now)
		for _, j := range g.jobs {
			j.dq = dq
			if dq.dead {
				s.verdict(j, nil, span{now, now})
				continue
			}
			dq.jobs = append(dq.jobs, j)
		}
		s.list(dq, now)
	}
}

// routeOne asks the router, turning a panic into an error.
func (s *sched) routeOne(addr string) (d Destination, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("resolver failed: %v", p)
		}
	}()
	return s.router.Route(s.ctx, addr)
}

// destQueue returns the queue of g's destination, made on first use;
// the transport's limits are refreshed with g's (a reload may change
// them). q.mu is held.
func (s *sched) destQueue(g *group, now time.Time) *destQueue {
	tq := s.trans[g.key.transport]
	if tq == nil {
		tq = &transQueue{name: g.key.transport}
		s.trans[g.key.transport] = tq
	}
	tq.lim = g.lim
	dq := s.dests[g.key]
	if dq == nil {
		dq = &destQueue{key: g.key, dest: g.dest, tq: tq, window: initialWindow(g.lim)}
		s.dests[g.key] = dq
	}
	if dq.dead && !now.Before(dq.deadUntil) {
		dq.revive()
	}
	return dq
}

// list makes dq runnable when a delivery of it may start, or sets a
// timer for the end of its rate delay. q.mu is held.
func (s *sched) list(dq *destQueue, now time.Time) {
	switch {
	case dq.listed || len(dq.jobs) == 0:
	case dq.canStart(now):
		dq.listed = true
		dq.tq.runnable = append(dq.tq.runnable, dq)
	case !dq.dead && dq.active == 0 && now.Before(dq.notBefore) && !dq.timerAt.Equal(dq.notBefore):
		dq.timerAt = dq.notBefore
		heap.Push(&s.timers, timerItem{dq.notBefore, dq})
	}
}

// dispatch starts deliveries: per transport, while it is under its
// process limit, the next runnable destination in turn. q.mu is held.
func (s *sched) dispatch(now time.Time) {
	for _, tq := range s.trans {
		for len(tq.runnable) > 0 && !tq.full() {
			dq := tq.runnable[0]
			tq.runnable[0] = nil
			tq.runnable = tq.runnable[1:]
			dq.listed = false
			if !dq.canStart(now) {
				s.list(dq, now) // a timer, if its rate delay is why
				continue
			}
			j := dq.jobs[0]
			dq.jobs[0] = nil
			dq.jobs = dq.jobs[1:]
			if len(dq.jobs) == 0 {
				dq.jobs = nil
			}
			if e := s.q.msgs[j.r.msg.ID]; e == nil || e.held {
				// Deleted or put on hold while it waited: not tried.
				j.r.outstanding--
				if j.r.outstanding == 0 {
					s.done = append(s.done, j.r)
				}
				s.list(dq, now)
				continue
			}
			dq.active++
			tq.active++
			s.start(j)
			s.list(dq, now) // to the back of the ring
		}
		if len(tq.runnable) == 0 {
			tq.runnable = nil
		}
	}
}

// start runs one delivery in its own goroutine.
func (s *sched) start(j *job) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		q := s.q
		orig := j.r.msg
		if s.router == nil {
			s.logActive(j.r) // a plain Agent's round is its one delivery
		}
		// Each delivery has its own copy: agents may change it.
		msg := &Message{ID: orig.ID, Envelope: cloneEnvelope(&orig.Envelope), Size: orig.Size, q: q}
		begin := q.now()
		var res []Result
		if s.router != nil {
			res = q.callAgent(msg, func() []Result { return s.router.DeliverTo(s.ctx, j.dq.dest, msg, j.rcpts) })
		} else {
			res = q.callAgent(msg, func() []Result { return s.agent.Deliver(s.ctx, msg, j.rcpts) })
		}
		s.jobDone(j, res, span{begin, q.now()})
	}()
}

// jobDone records a delivery's results in its round, gives the
// destination its feedback, and records the round when it was the last.
func (s *sched) jobDone(j *job, res []Result, sp span) {
	q := s.q
	q.mu.Lock()
	now := q.now()
	dq := j.dq
	// A plain Agent's slot is held until the results are recorded (its
	// Concurrency bounds the messages in delivery); a Router's is free
	// once the delivery ends, as a Postfix delivery agent's process is.
	plain := s.router == nil
	if !plain {
		dq.active--
		dq.tq.active--
	}
	if dq.tq.lim.RateDelay > 0 {
		// The next delivery starts a rate delay after this one ended.
		dq.notBefore = now.Add(dq.tq.lim.RateDelay)
	}
	// No feedback from deliveries cut short by shutdown, nor for a plain
	// Agent (its Concurrency is fixed).
	if s.router != nil && s.ctx.Err() == nil {
		if why, failed := siteFailure(j.rcpts, res); !failed {
			dq.positive()
		} else if !dq.dead {
			dq.failedAt = now
			if dq.negative(why, now, q.opts.MinimalBackoff) {
				s.kill(dq, now)
			} else if !dq.forgetAt.After(now) {
				// Kept while the failure counts (see forget).
				dq.forgetAt = now.Add(q.opts.MinimalBackoff)
				heap.Push(&s.timers, timerItem{dq.forgetAt, dq})
			}
		}
	}
	s.verdict(j, res, sp)
	s.list(dq, now)
	s.forget(dq, now)
	done := s.takeDone()
	q.mu.Unlock()
	for _, r := range done {
		s.complete(r)
	}
	if plain {
		q.mu.Lock()
		dq.active--
		dq.tq.active--
		now := q.now()
		s.list(dq, now)
		s.forget(dq, now)
		q.mu.Unlock()
	}
	q.kick()
}

// siteFailure decides Postfix's per-destination feedback for a delivery:
// it reached the destination when any recipient got a final verdict or
// a reply from the remote server; otherwise (connection refused, time
// out: every recipient deferred without a word from the server) it
// failed, and why is the first reason given.
func siteFailure(rcpts []int, res []Result) (why Result, failed bool) {
	want := make(map[int]bool, len(rcpts))
	for _, i := range rcpts {
		want[i] = true
	}
	why = Result{DSN: "4.3.0", Reply: "delivery agent gave no result"}
	first := true
	for _, r := range res {
		if !want[r.Rcpt] {
			continue
		}
		if r.Status == StatusSent || r.Status == StatusBounced || r.RemoteReply != "" {
			return Result{}, false
		}
		if first {
			why, first = r, false
		}
	}
	return why, true
}

// verdict adds a job's results to its round (res nil for a dead
// destination: every recipient is deferred without a try). q.mu is held.
func (s *sched) verdict(j *job, res []Result, sp span) {
	r := j.r
	if res == nil && j.dq.dead {
		for _, i := range j.rcpts {
			res = append(res, j.dq.suspended(i))
		}
	}
	if r.spans == nil {
		r.spans = make(map[int]span, len(r.rcpts))
	}
	for _, i := range j.rcpts {
		r.tried = append(r.tried, i)
		r.spans[i] = sp
	}
	r.results = append(r.results, res...)
	r.outstanding--
	if r.outstanding == 0 {
		s.done = append(s.done, r)
	}
}

// kill makes dq dead: its waiting deliveries are deferred without a try,
// and it comes back after minimal_backoff_time. q.mu is held.
func (s *sched) kill(dq *destQueue, now time.Time) {
	for _, j := range dq.jobs {
		s.verdict(j, nil, span{now, now})
	}
	dq.jobs = nil
	heap.Push(&s.timers, timerItem{dq.deadUntil, dq})
}

// fireTimers revives destinations whose dead time is over and lists
// those whose rate delay has passed. q.mu is held.
func (s *sched) fireTimers(now time.Time) {
	for len(s.timers) > 0 && !s.timers[0].at.After(now) {
		it := heap.Pop(&s.timers).(timerItem)
		dq := it.dq
		if s.dests[dq.key] != dq {
			continue // forgotten meanwhile
		}
		if dq.dead && !now.Before(dq.deadUntil) {
			dq.revive()
		}
		if dq.failCohorts > 0 && !dq.forgetAt.After(now) {
			if at := dq.failedAt.Add(s.q.opts.MinimalBackoff); at.After(now) {
				dq.forgetAt = at // failed again since: look again then
				heap.Push(&s.timers, timerItem{at, dq})
			}
		}
		s.list(dq, now)
		s.forget(dq, now)
	}
}

// forget drops an idle destination, and its window with it, as Postfix
// drops an empty queue; but one that failed recently is kept for
// minimal_backoff_time, so that failures of mail trickling in one
// message at a time add up to a dead destination. q.mu is held.
func (s *sched) forget(dq *destQueue, now time.Time) {
	recent := dq.failCohorts > 0 && now.Before(dq.failedAt.Add(s.q.opts.MinimalBackoff))
	if len(dq.jobs) == 0 && dq.active == 0 && !dq.dead && !dq.listed && !recent && !now.Before(dq.notBefore) {
		delete(s.dests, dq.key)
	}
}

// reviveDead ends every dead state now (postqueue -f and -i: Postfix's
// flush asks qmgr to forget dead destinations). q.mu is held.
func (s *sched) reviveDead(now time.Time) {
	for _, dq := range s.dests {
		if dq.dead {
			dq.revive()
			s.list(dq, now)
			s.forget(dq, now)
		}
	}
}

// takeDone returns the rounds complete so far. q.mu is held.
func (s *sched) takeDone() []*round {
	d := s.done
	s.done = nil
	return d
}

// completeAsync records rounds in the background (for the scheduler
// loop, which must not wait for the disk).
func (s *sched) completeAsync(rounds []*round) {
	for _, r := range rounds {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.complete(r)
		}()
	}
}

// complete records a round: its results in one commit (finish), or,
// when nothing was tried (shutdown), puts the message back as it was.
func (s *sched) complete(r *round) {
	q := s.q
	if len(r.tried) > 0 {
		var first time.Time
		for _, sp := range r.spans {
			if first.IsZero() || sp.start.Before(first) {
				first = sp.start
			}
		}
		if first.IsZero() {
			first = q.now()
		}
		q.finish(r.msg, r.tried, r.results, attemptTimes{arrival: r.msg.Envelope.Arrival, enqueued: r.enqueued,
			ready: r.ready, start: first, spans: r.spans})
	}
	q.mu.Lock()
	if len(r.tried) == 0 {
		if e := q.msgs[r.msg.ID]; e != nil {
			e.inflight = false
			q.schedule(e, q.now())
		}
	}
	s.active--
	q.mu.Unlock()
	q.kick()
}

// stop drops the deliveries not started, then waits for those under way
// and for every round to be recorded.
func (s *sched) stop() {
	q := s.q
	q.mu.Lock()
	s.stopping = true
	for _, dq := range s.dests {
		for _, j := range dq.jobs {
			j.r.outstanding--
			if j.r.outstanding == 0 {
				s.done = append(s.done, j.r)
			}
		}
		dq.jobs = nil
	}
	done := s.takeDone()
	q.mu.Unlock()
	for _, r := range done {
		s.complete(r)
	}
	s.wg.Wait()
}
