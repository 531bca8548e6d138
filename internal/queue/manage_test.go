package queue

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

func TestWriteMailq(t *testing.T) {
	at := func(mo time.Month, d, h, m, s int) time.Time { return time.Date(2026, mo, d, h, m, s, 0, time.Local) }
	refused := "connect to mx.example.com[192.0.2.1]:25: Connection refused"
	list := []Summary{
		{ID: "4jZFXc0000z1", State: StateActive, Arrival: at(11, 25, 10, 0, 0), Size: 1234, Sender: "alice@example.org",
			Recipients: []Recipient{{Address: "bob@example.net"}, {Address: "done@example.net", Status: Delivered}, {Address: "carol@example.net"}}},
		{ID: "4jZFXc0001z2", State: StateDeferred, Arrival: at(11, 25, 9, 5, 7), Size: 20480, Sender: "",
			Recipients: []Recipient{
				{Address: "dave@example.com", Attempts: 2, LastErr: refused},
				{Address: "erin@example.com", Attempts: 2, LastErr: refused},
				{Address: "frank@example.org", Attempts: 1, LastErr: "host mx.example.org[192.0.2.9] said: 451 4.3.0 Try again later (in reply to end of DATA command)"},
			}},
		{ID: "4jZFXc0002z3", State: StateHold, Arrival: at(11, 3, 23, 59, 59), Size: 512, Sender: "held@example.org",
			Recipients: []Recipient{{Address: "x@example.net"}}},
	}
	want, err := os.ReadFile("testdata/mailq.txt")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		list []Summary
		want string
	}{
		{"three", list, string(want)},
		{"empty", nil, "Mail queue is empty\n"},
		{"one", list[2:], "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n" +
			"4jZFXc0002z3!          512 Tue Nov  3 23:59:59 held@example.org\n" +
			"                                               x@example.net\n\n-- 0 Kbytes in 1 Request.\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteMailq(&b, tc.list); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
		})
	}
}

func TestHoldReleaseDelete(t *testing.T) {
	h := newHarness(t, nil)
	held := h.enqueue("a@example.org", []string{"held@example.net"}, "held\r\n")
	gone := h.enqueue("a@example.org", []string{"gone@example.net"}, "gone\r\n")
	if n, err := h.q.Hold(held); err != nil || n != 1 {
		t.Fatalf("Hold: %d, %v", n, err)
	}
	if n, err := h.q.Hold(held); err != nil || n != 0 {
		t.Fatalf("Hold again: %d, %v (want 0, nil)", n, err)
	}
	if n, err := h.q.Delete(gone); err != nil || n != 1 {
		t.Fatalf("Delete: %d, %v", n, err)
	}
	if _, err := h.q.Delete("4jZFXc9999z9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete unknown: %v", err)
	}
	h.reopen() // both changes must be durable
	list := h.q.List()
	if len(list) != 1 || list[0].ID != held || list[0].State != StateHold {
		t.Fatalf("after reopen: %+v", list)
	}
	a := newAgent(nil)
	stop := h.run(a)
	defer stop()
	marker := h.enqueue("a@example.org", []string{"m@example.net"}, "marker\r\n")
	waitFor(t, "marker delivered", func() bool { return len(a.deliveries()) >= 1 })
	for _, d := range a.deliveries() {
		if d.id != marker {
			t.Fatalf("delivered %s (held or deleted)", d.id)
		}
	}
	if n, err := h.q.Release(held); err != nil || n != 1 {
		t.Fatalf("Release: %d, %v", n, err)
	}
	waitFor(t, "released message delivered", func() bool { return h.queued() == 0 })
	logs := h.logs.String()
	for _, want := range []string{string(held) + ": placed on hold", string(held) + ": released from hold", "postsuper[", string(gone) + ": removed"} {
		if !bytes.Contains([]byte(logs), []byte(want)) {
			t.Errorf("log lacks %q", want)
		}
	}
}

func TestManageAll(t *testing.T) {
	h := newHarness(t, nil)
	for i := 0; i < 5; i++ {
		h.enqueue("a@example.org", []string{"b@example.net"}, "x\r\n")
	}
	if n, err := h.q.Hold("ALL"); err != nil || n != 5 {
		t.Fatalf("Hold ALL: %d, %v", n, err)
	}
	for _, s := range h.q.List() {
		if s.State != StateHold {
			t.Fatalf("%s not held", s.ID)
		}
	}
	if n, err := h.q.Release("ALL"); err != nil || n != 5 {
		t.Fatalf("Release ALL: %d, %v", n, err)
	}
	if n, err := h.q.Delete("ALL"); err != nil || n != 5 {
		t.Fatalf("Delete ALL: %d, %v", n, err)
	}
	h.reopen()
	if n := h.queued(); n != 0 {
		t.Fatalf("%d left after Delete ALL and reopen", n)
	}
}

func TestFlush(t *testing.T) {
	h := newHarness(t, nil)
	a := newDeferAgent(h.clock)
	stop := h.run(a)
	defer stop()
	id := h.enqueue("a@example.org", []string{"b@example.com"}, "x\r\n")
	h.settled(a, id, 1)
	a.setAccept("b@example.com")
	h.q.Flush() // no clock change: only the flush makes it due
	waitFor(t, "flushed delivery", func() bool { return h.queued() == 0 })
}

func TestNewIDShape(t *testing.T) {
	c := newClock()
	q := &Queue{opts: Options{Now: c.Now}}
	prev := ID("")
	for i := 0; i < 1000; i++ {
		id := q.NewID()
		if !ValidID(string(id)) || len(id) < 12 {
			t.Fatalf("bad ID %q", id)
		}
		if id <= prev && len(id) == len(prev) {
			t.Fatalf("IDs not increasing: %q then %q", prev, id)
		}
		usec, ok := idTime(id)
		if !ok || usec/1e6 != c.Now().Unix() {
			t.Fatalf("%q: time %d, %v", id, usec, ok)
		}
		prev = id
	}
	// Postfix's example from the documentation decodes to a 2022 time.
	if usec, ok := idTime("4cYvZb0yq2z1Q"); !ok || time.UnixMicro(usec).Year() < 2015 {
		t.Fatalf("decode example: %d %v", usec, ok)
	}
	// Digits come from the safe alphabet, most significant first.
	if got := encodeSafe(51, 52, 2); got != "0z" {
		t.Errorf("encodeSafe(51) = %q", got)
	}
	if got := encodeSafe(52, 52, 1); got != "10" {
		t.Errorf("encodeSafe(52) = %q", got)
	}
}
