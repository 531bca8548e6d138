package queue

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestFlushID(t *testing.T) {
	h := newHarness(t, nil)
	a := newDeferAgent(h.clock)
	h.run(a)
	id1 := h.enqueue("a@example.org", []string{"b@example.com"}, "x\r\n")
	id2 := h.enqueue("a@example.org", []string{"c@example.com"}, "x\r\n")
	h.settled(a, id1, 1)
	h.settled(a, id2, 1)
	a.setAccept("b@example.com")
	a.setAccept("c@example.com")
	if !h.q.FlushID(id1) {
		t.Fatalf("FlushID(%s) = false for a queued message", id1)
	}
	waitFor(t, "the flushed message delivered", func() bool { return h.queued() == 1 })
	if l := h.q.List(); l[0].ID != id2 || l[0].State != StateDeferred {
		t.Errorf("the other message: %+v, want it still deferred", l[0])
	}
	if h.q.FlushID("4jZFXc0013z15") {
		t.Errorf("FlushID of an unknown ID = true")
	}
	// A held message stays on hold.
	if _, err := h.q.Hold(id2); err != nil {
		t.Fatal(err)
	}
	h.q.FlushID(id2)
	if l := h.q.List(); len(l) != 1 || l[0].State != StateHold {
		t.Errorf("after FlushID of a held message: %+v", l)
	}
}

func TestRequeue(t *testing.T) {
	h := newHarness(t, nil)
	a := newDeferAgent(h.clock)
	stop := h.run(a)
	arrival := h.clock.Now()
	a.setAccept("done@example.com")
	id := h.enqueue("a@example.org", []string{"done@example.com", "b@example.com", "c@example.com"}, "Subject: r\r\n\r\nbody\r\n")
	h.settled(a, id, 1)
	stop()
	if _, err := h.q.Hold(id); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Minute)

	// Resubmission through a cleanup that rewrites c@ to d@.
	var got *Envelope
	var body string
	rewrite := func(ctx context.Context, env *Envelope, r io.Reader) error {
		for i := range env.Recipients {
			if env.Recipients[i].Address == "c@example.com" {
				env.Recipients[i].Address = "d@example.com"
			}
		}
		b, _ := io.ReadAll(r)
		body = string(b)
		got = env
		return h.q.Enqueue(ctx, env, strings.NewReader(body))
	}
	n, err := h.q.RequeueVia(context.Background(), id, rewrite)
	if err != nil || n != 1 {
		t.Fatalf("RequeueVia = %d, %v", n, err)
	}
	l := h.q.List()
	if len(l) != 1 || l[0].ID == id || l[0].ID != got.ID {
		t.Fatalf("after requeue: %+v, want only the new copy", l)
	}
	m := l[0]
	if m.State != StateActive || !m.Arrival.Equal(arrival) || body != "Subject: r\r\n\r\nbody\r\n" {
		t.Errorf("new copy: state %v arrival %v (want %v) body %q", m.State, m.Arrival, arrival, body)
	}
	if len(m.Recipients) != 2 || m.Recipients[0].Address != "b@example.com" || m.Recipients[1].Address != "d@example.com" ||
		m.Recipients[0].Attempts != 0 || m.Recipients[0].LastErr != "" || m.Recipients[1].OrigAddress != "c@example.com" {
		t.Errorf("new copy's recipients: %+v", m.Recipients)
	}
	if !strings.Contains(h.logs.String(), string(id)+": requeued") {
		t.Errorf("no requeued log line")
	}

	// A failing resubmission keeps the message.
	n, err = h.q.RequeueVia(context.Background(), "ALL", func(context.Context, *Envelope, io.Reader) error {
		return errors.New("451 4.3.0 cleanup failed")
	})
	if err == nil || n != 0 || len(h.q.List()) != 1 || h.q.List()[0].ID != m.ID {
		t.Errorf("failed requeue: %d, %v, queue %+v", n, err, h.q.List())
	}
	// Requeue with Enqueue survives a restart as one message.
	if n, err := h.q.Requeue("ALL"); err != nil || n != 1 {
		t.Fatalf("Requeue(ALL) = %d, %v", n, err)
	}
	h.reopen()
	if l := h.q.List(); len(l) != 1 || l[0].ID == m.ID {
		t.Errorf("after reopen: %+v", l)
	}
	if _, err := h.q.Requeue("4jZFXc0013z15"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Requeue of an unknown ID: %v", err)
	}
}
