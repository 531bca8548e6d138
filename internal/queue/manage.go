package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// State is where a message is, as mailq shows it.
type State int

// Message states.
const (
	StateActive   State = iota // being delivered or due ('*' in mailq)
	StateDeferred              // waiting for a retry (' ')
	StateHold                  // on hold (postsuper -h) ('!')
)

func (s State) String() string {
	switch s {
	case StateActive:
		return "active"
	case StateDeferred:
		return "deferred"
	case StateHold:
		return "hold"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Summary describes one queued message for postqueue -p / mailq.
type Summary struct {
	ID         ID
	State      State
	Arrival    time.Time
	Size       int64
	Sender     string
	Recipients []Recipient // all recipients with their status and last error
	NextRetry  time.Time   // zero when due now
}

// List returns every queued message, oldest first.
func (q *Queue) List() []Summary {
	q.mu.Lock()
	now := q.now()
	out := make([]Summary, 0, len(q.msgs))
	for id, e := range q.msgs {
		s := Summary{ID: id, Arrival: e.env.Arrival, Size: e.size, Sender: e.env.Sender,
			Recipients: append([]Recipient(nil), e.env.Recipients...), NextRetry: e.nextRetry}
		switch {
		case e.held:
			s.State = StateHold
		case e.inflight || !e.nextRetry.After(now):
			s.State = StateActive
		default:
			s.State = StateDeferred
		}
		out = append(out, s)
	}
	q.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Arrival.Equal(out[j].Arrival) {
			return out[i].Arrival.Before(out[j].Arrival)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// targets resolves an ID argument: "ALL" means every message, as
// postsuper accepts it.
func (q *Queue) targets(id ID) ([]ID, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if id == "ALL" {
		ids := make([]ID, 0, len(q.msgs))
		for k := range q.msgs {
			ids = append(ids, k)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		return ids, nil
	}
	if _, ok := q.msgs[id]; !ok {
		return nil, fmt.Errorf("queue: %s: %w", id, ErrNotFound)
	}
	return []ID{id}, nil
}

// Hold puts a message (or "ALL") on hold: it stays queued but is not
// delivered until released (postsuper -h). Durable on return. It returns
// how many messages changed.
func (q *Queue) Hold(id ID) (int, error) {
	return q.manage(id, recHold, "placed on hold", func(e *entry) bool { return !e.held })
}

// Release takes a message (or "ALL") off hold and makes it due now
// (postsuper -H).
func (q *Queue) Release(id ID) (int, error) {
	return q.manage(id, recRelease, "released from hold", func(e *entry) bool { return e.held })
}

// Delete removes a message (or "ALL") from the queue (postsuper -d). A
// delivery under way finishes, but its outcome is not recorded.
func (q *Queue) Delete(id ID) (int, error) {
	return q.manage(id, recRemove, "removed", func(*entry) bool { return true })
}

func (q *Queue) manage(id ID, typ byte, verb string, applies func(*entry) bool) (int, error) {
	ids, err := q.targets(id)
	if err != nil {
		return 0, err
	}
	var recs []pending
	var done []ID
	q.mu.Lock()
	for _, m := range ids {
		if e := q.msgs[m]; e != nil && applies(e) {
			recs = append(recs, pending{data: encodeSimple(typ, m), rec: &record{typ: typ, id: m}})
			done = append(done, m)
		}
	}
	q.mu.Unlock()
	if len(recs) == 0 {
		return 0, nil
	}
	if err := q.commit(context.Background(), recs); err != nil {
		return 0, err
	}
	for _, m := range done {
		q.logf("postsuper", "%s: %s", m, verb)
	}
	return len(done), nil
}

// WriteMailq prints the queue in Postfix's mailq / postqueue -p layout
// for long queue IDs (src/postqueue/showq_compat.c): a heading, per
// message the ID with '*' (active) or '!' (hold), size, arrival time and
// sender, then the reason and address of each pending recipient, and the
// "-- N Kbytes in M Requests." total, or "Mail queue is empty".
func WriteMailq(w io.Writer, list []Summary) error {
	var b strings.Builder
	const strFmt = "%-17s %8s %-19s %s\n"
	var total int64
	n := 0
	for _, s := range list {
		if n > 0 {
			b.WriteString("\n")
		} else {
			fmt.Fprintf(&b, strFmt, "----Queue ID-----", "--Size--", "---Arrival Time----", "--Sender/Recipient------")
		}
		mark := ' '
		switch s.State {
		case StateActive:
			mark = '*'
		case StateHold:
			mark = '!'
		}
		sender := s.Sender
		if sender == "" {
			sender = "MAILER-DAEMON"
		}
		arrival := s.Arrival.Local().Format("Mon Jan _2 15:04:05")
		fmt.Fprintf(&b, "%-17s %8d %19.19s %s\n", string(s.ID)+string(mark), s.Size, arrival, clean(sender))
		saved := ""
		for _, r := range s.Recipients {
			if r.Status != Pending {
				continue
			}
			// The reason of the last deferral, as showq reads it from the
			// defer log.
			why := ""
			if r.Attempts > 0 {
				why = clean(r.LastErr)
			}
			if why != saved {
				saved = why
				show := why
				if show == "" {
					show = "reason unavailable"
				}
				pad := 76 - len(show)
				if pad < 0 {
					pad = 0
				}
				fmt.Fprintf(&b, "%*s(%s)\n", pad, "", show)
			}
			fmt.Fprintf(&b, strFmt, "", "", "", clean(r.Address))
		}
		total += s.Size
		n++
	}
	if n == 0 {
		b.WriteString("Mail queue is empty\n")
	} else {
		req := "Requests"
		if n == 1 {
			req = "Request"
		}
		fmt.Fprintf(&b, "\n-- %d Kbytes in %d %s.\n", total/1024, n, req)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// FlushID makes one message due now, and forgets which destinations are
// dead, as postqueue -i asks Postfix's flush service to do. A message on
// hold stays on hold; an ID not queued is no error (Postfix's flush
// service answers OK for it too): it reports whether the message exists.
func (q *Queue) FlushID(id ID) bool {
	q.mu.Lock()
	defer q.kick()
	defer q.mu.Unlock()
	e := q.msgs[id]
	if e == nil {
		return false
	}
	now := q.now()
	if e.nextRetry.After(now) {
		e.nextRetry = time.Time{}
		q.schedule(e, now)
	}
	if q.sched != nil {
		q.sched.reviveDead(now)
	}
	return true
}

// Resubmit queues a requeued message: the server passes its cleanup
// (address rewriting, then Enqueue), so the message is processed as new
// mail is.
type Resubmit func(ctx context.Context, env *Envelope, content io.Reader) error

// Requeue is postsuper -r for a message (or "ALL") with Enqueue as the
// resubmission: see RequeueVia.
func (q *Queue) Requeue(id ID) (int, error) {
	return q.RequeueVia(context.Background(), id, q.Enqueue)
}

// RequeueVia is postsuper -r: each message is queued again under a new
// queue ID through resubmit, with the recipients still pending (those
// delivered or bounced are done, as Postfix's pickup skips them), their
// delivery history cleared and the original arrival time kept (so
// maximal_queue_lifetime still counts from it); then the old message is
// removed. It is due at once and off hold. A crash between the two
// steps leaves both copies (a duplicate, never a loss). A delivery of
// the old message under way finishes, but its outcome is not recorded.
// It returns how many messages were requeued.
func (q *Queue) RequeueVia(ctx context.Context, id ID, resubmit Resubmit) (int, error) {
	ids, err := q.targets(id)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, old := range ids {
		q.mu.Lock()
		e := q.msgs[old]
		var env Envelope
		if e != nil {
			env = cloneEnvelope(&e.env)
		}
		q.mu.Unlock()
		if e == nil {
			continue // gone meanwhile
		}
		env.Recipients = env.Recipients[:0:0]
		for _, r := range e.env.Recipients {
			if r.Status != Pending {
				continue
			}
			env.Recipients = append(env.Recipients, Recipient{Address: r.Address, OrigAddress: r.OrigAddress,
				DSNNotify: r.DSNNotify, DSNORcpt: r.DSNORcpt})
		}
		if len(env.Recipients) == 0 {
			continue
		}
		env.ID = q.NewID()
		content, err := q.openContent(old)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		err = resubmit(ctx, &env, content)
		content.Close()
		if err != nil {
			return n, fmt.Errorf("queue: requeue %s: %w", old, err)
		}
		if err := q.commit(ctx, []pending{{data: encodeSimple(recRemove, old), rec: &record{typ: recRemove, id: old}}}); err != nil {
			return n, fmt.Errorf("queue: requeue %s: queued again as %s, but the old copy could not be removed: %w", old, env.ID, err)
		}
		q.logf("postsuper", "%s: requeued", old)
		n++
	}
	return n, nil
}
