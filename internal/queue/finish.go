package queue

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// logLine is a log line to write once the records it reports are durable.
type logLine struct{ program, text string }

// finish records the outcome of one attempt at a message (all the
// deliveries of a round, see Run): per-recipient
// results, expiry, the bounce or delay notice they call for, and removal
// when every recipient is final, all in one group commit. Notices come
// first in the batch: if a crash tears the batch, the worst case is a
// notice whose recipient state was not yet recorded, so a duplicate
// notice later, never a lost one.
func (q *Queue) finish(msg *Message, rcpts []int, results []Result, t attemptTimes) {
	now := q.now()
	id := msg.ID
	env := cloneEnvelope(&msg.Envelope)
	given := make(map[int]bool, len(rcpts))
	for _, i := range rcpts {
		given[i] = true
	}
	byIdx := make(map[int]Result, len(results))
	for _, r := range results {
		if given[r.Rcpt] {
			if _, dup := byIdx[r.Rcpt]; !dup {
				byIdx[r.Rcpt] = r
			}
		}
	}

	q.mu.Lock()
	e := q.msgs[id]
	warned := e != nil && e.warned
	gone := e == nil
	q.mu.Unlock()

	var logs []logLine
	var ups []rcptUpdate
	var failed, deferred, sent []int
	relayed := map[int]bool{}
	for _, i := range rcpts {
		r, ok := byIdx[i]
		if !ok {
			r = Result{Rcpt: i, Status: StatusDeferred, DSN: "4.3.0", Reply: "delivery agent gave no result", Relay: "none"}
		}
		rc := &env.Recipients[i]
		rc.Attempts++
		rc.LastErr = r.Reply
		rc.DSN = r.DSN
		rc.RemoteMTA = r.RemoteMTA
		if r.RemoteReply != "" {
			rc.Diagnostic = "smtp; " + r.RemoteReply
		} else {
			rc.Diagnostic = "X-Postfix; " + r.Reply
		}
		status := r.Status
		switch status {
		case StatusSent:
			rc.Status = Delivered
			rc.DSN = defaultDSN(rc.DSN, '2')
			if !r.DSNPassedOn {
				sent = append(sent, i)
				relayed[i] = r.Relayed
			}
		case StatusBounced:
			rc.Status = Bounced
			rc.DSN = defaultDSN(rc.DSN, '5')
			failed = append(failed, i)
		default:
			status = StatusDeferred
			rc.DSN = defaultDSN(rc.DSN, '4')
			deferred = append(deferred, i)
		}
		program := r.Transport
		if program == "" {
			program = "qmgr"
		}
		rt, end := t, now
		if sp, ok := t.spans[i]; ok {
			rt.start, end = sp.start, sp.end
		}
		logs = append(logs, logLine{program, q.deliveryLine(id, rc, r, status, rt, end)})
	}

	age := now.Sub(env.Arrival)
	lifetime := q.opts.MaximalQueueLifetime
	if env.Sender == "" {
		lifetime = q.opts.BounceQueueLifetime
	}
	var nextRetry time.Time
	if len(deferred) > 0 {
		if age >= lifetime {
			// Postfix qmgr_active.c: a message past its lifetime has its
			// deferred recipients returned after the last attempt.
			for _, i := range deferred {
				rc := &env.Recipients[i]
				rc.Status = Bounced
				rc.DSN = "5" + rc.DSN[1:] // RFC 3463: the failure is now permanent
				failed = append(failed, i)
			}
			logs = append(logs, logLine{"qmgr", fmt.Sprintf("%s: from=<%s>, status=expired, returned to sender", id, clean(env.Sender))})
			deferred = nil
		} else {
			nextRetry = now.Add(q.backoff(age))
		}
	}
	for _, i := range rcpts {
		ups = append(ups, rcptUpdate{i, env.Recipients[i].state()})
	}

	var recs []pending
	var after []logLine
	if !gone {
		recs, after = q.failureNotices(&env, failed, msg, now, recs, after) // notify.go
		if notice := q.successNotice(&env, sent, relayed, msg, now); notice != nil {
			recs = append(recs, *notice)
			after = append(after, logLine{"bounce", fmt.Sprintf("%s: sender delivery status notification: %s", id, notice.rec.id)})
		}
		if len(deferred) > 0 && !warned && q.opts.DelayWarningTime > 0 && age >= q.opts.DelayWarningTime {
			warned = true
			recs, after = q.delayNotices(&env, deferred, msg, now, recs, after) // notify.go
		}
		recs, after = q.errorNotices(&env, &msg.Envelope, deferred, msg, now, recs, after) // notify.go
	}
	recs = append(recs, pending{data: encodeUpdate(id, warned, nextRetry, ups), rec: &record{typ: recUpdate, id: id, flags: flagsIf(warned, flagWarned), nextRetry: nextRetry, updates: ups}})
	done := true
	for i := range env.Recipients {
		if env.Recipients[i].Status == Pending {
			done = false
		}
	}
	if done && !gone {
		recs = append(recs, pending{data: encodeSimple(recRemove, id), rec: &record{typ: recRemove, id: id}})
		after = append(after, logLine{"qmgr", fmt.Sprintf("%s: removed", id)})
	}

	err := q.commit(context.Background(), recs)
	q.mu.Lock()
	if e := q.msgs[id]; e != nil {
		e.inflight = false
		if err != nil && !e.nextRetry.After(now) {
			// Not recorded: try again later, not in a tight loop.
			e.nextRetry = now.Add(q.opts.MinimalBackoff)
		}
		q.schedule(e, now)
	}
	q.mu.Unlock()
	if err != nil {
		q.logf("qmgr", "warning: %s: could not record delivery results (they will be retried): %v", id, err)
		return
	}
	for _, l := range logs {
		q.logf(l.program, "%s", l.text)
	}
	for _, l := range after {
		q.logf(l.program, "%s", l.text)
	}
	for _, p := range recs {
		for _, l := range p.logs {
			q.logf(l.program, "%s", l.text)
		}
	}
}

func flagsIf(b bool, f uint64) uint64 {
	if b {
		return f
	}
	return 0
}

// defaultDSN returns dsn if it is an enhanced status code of class cls,
// else cls.0.0 (RFC 3463 3.1: the class must match the outcome).
func defaultDSN(dsn string, cls byte) string {
	if validDSN(dsn) && dsn[0] == cls {
		return dsn
	}
	return string(cls) + ".0.0"
}

// validDSN checks RFC 3463 syntax: class "." subject "." detail, with
// 1–3 digit subject and detail.
func validDSN(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if len(p) < 1 || len(p) > 3 {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// deliveryLine formats Postfix's per-recipient log line:
// "ID: to=<a>, orig_to=<b>, relay=r, delay=1.2, delays=a/b/c/d, dsn=2.0.0, status=sent (reply)".
func (q *Queue) deliveryLine(id ID, rc *Recipient, r Result, st Status, t attemptTimes, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: to=<%s>", id, clean(rc.Address))
	if rc.OrigAddress != "" && rc.OrigAddress != rc.Address {
		fmt.Fprintf(&b, ", orig_to=<%s>", clean(rc.OrigAddress))
	}
	relay := r.Relay
	if relay == "" {
		relay = "none"
	}
	// delays=a/b/c/d (Postfix 2.3+): before the queue manager, in the
	// queue manager, connection setup, transmission.
	a := t.enqueued.Sub(t.arrival)
	bq := t.start.Sub(t.ready)
	c := r.ConnDelay
	d := r.Delay
	if d == 0 {
		d = now.Sub(t.start) - c
	}
	fmt.Fprintf(&b, ", relay=%s, delay=%s, delays=%s/%s/%s/%s, dsn=%s, status=%s (%s)",
		clean(relay), fmtDelay(now.Sub(t.arrival)), fmtDelay(a), fmtDelay(bq), fmtDelay(c), fmtDelay(d),
		rc.DSN, st, clean(r.Reply))
	return b.String()
}

// fmtDelay prints seconds as Postfix does: two significant digits below
// ten seconds with a resolution of 10ms, whole seconds above.
func fmtDelay(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := d.Seconds()
	var out string
	switch {
	case s >= 10:
		return fmt.Sprintf("%d", int64(s))
	case s >= 1:
		out = fmt.Sprintf("%.1f", float64(int64(s*10))/10)
	case s >= 0.01:
		out = fmt.Sprintf("%.2f", float64(int64(s*100))/100)
	default:
		return "0"
	}
	out = strings.TrimRight(out, "0")
	return strings.TrimSuffix(out, ".")
}
