package queue

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSnapshotWhileOpen(t *testing.T) {
	h := newHarness(t, nil)
	a := h.enqueue("a@example.org", []string{"b@example.net", "c@example.net"}, "one\r\n")
	b := h.enqueue("", []string{"d@example.net"}, "two!\r\n")
	if _, err := h.q.Hold(b); err != nil {
		t.Fatal(err)
	}
	spare := filepath.Join(h.dir, "spool", spareName)
	waitFor(t, "spare segment", func() bool { _, err := os.Stat(spare); return err == nil })
	list, err := Snapshot(h.dir, h.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(spare); err != nil {
		t.Errorf("Snapshot changed the spool: %v", err)
	}
	if len(list) != 2 || list[0].ID != a || list[1].ID != b || list[1].State != StateHold ||
		list[0].Size != 5 || len(list[0].Recipients) != 2 || list[0].Sender != "a@example.org" {
		t.Fatalf("snapshot %+v", list)
	}
	if _, err := Snapshot(t.TempDir()+"/none", h.clock.Now()); err == nil {
		t.Fatal("snapshot of a missing spool succeeded")
	}
}

func TestQueueMinFree(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.QueueMinFree = 1 << 62 })
	env := &Envelope{Recipients: []Recipient{{Address: "b@example.net"}}}
	err := h.q.Enqueue(context.Background(), env, strings.NewReader("x"))
	if !errors.Is(err, ErrInsufficientStorage) {
		t.Fatalf("err = %v, want ErrInsufficientStorage", err)
	}
	h2 := newHarness(t, func(o *Options) { o.QueueMinFree = 1 << 10 })
	h2.enqueue("a@example.org", []string{"b@example.net"}, "x")
}

func TestEnqueueRejects(t *testing.T) {
	h := newHarness(t, nil)
	tests := []struct {
		name string
		env  Envelope
	}{
		{"no recipients", Envelope{}},
		{"none pending", Envelope{Recipients: []Recipient{{Address: "b@example.net", Status: Delivered}}}},
		{"bad id", Envelope{ID: "../../etc/passwd", Recipients: []Recipient{{Address: "b@example.net"}}}},
	}
	for _, tc := range tests {
		if err := h.q.Enqueue(context.Background(), &tc.env, strings.NewReader("x")); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	id := h.enqueue("a@example.org", []string{"b@example.net"}, "x")
	dup := &Envelope{ID: id, Recipients: []Recipient{{Address: "b@example.net"}}}
	if err := h.q.Enqueue(context.Background(), dup, strings.NewReader("y")); err == nil {
		t.Errorf("duplicate queue ID accepted")
	}
	if n := h.queued(); n != 1 {
		t.Errorf("%d queued, want 1", n)
	}
}

func TestAgentPanicDefers(t *testing.T) {
	h := newHarness(t, nil)
	stop := h.run(AgentFunc(func(ctx context.Context, msg *Message, rcpts []int) []Result { panic("boom") }))
	defer stop()
	id := h.enqueue("a@example.org", []string{"b@example.net"}, "x")
	waitFor(t, "deferral", func() bool {
		l := h.q.List()
		return len(l) == 1 && l[0].Recipients[0].Attempts == 1 && l[0].State == StateDeferred
	})
	if !strings.Contains(h.logs.String(), string(id)+": delivery agent failed: boom") {
		t.Errorf("panic not logged")
	}
}

func TestRecoveryFinishesDoneMessages(t *testing.T) {
	h := newHarness(t, nil)
	id := h.enqueue("a@example.org", []string{"b@example.net"}, "x")
	keep := h.enqueue("a@example.org", []string{"c@example.net"}, "y")
	h.q.Close()
	// As if the process died between the results and the removal record.
	seg := lastSegment(t, h)
	f, err := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(encodeUpdate(id, false, zeroTime(), []rcptUpdate{{0, rcpt{Status: Delivered, Attempts: 1, DSN: "2.0.0"}}}))
	f.Close()
	h.open()
	l := h.q.List()
	if len(l) != 1 || l[0].ID != keep {
		t.Fatalf("after recovery: %+v", l)
	}
	h.reopen()
	if n := h.queued(); n != 1 {
		t.Fatalf("removal not durable: %d queued", n)
	}
}

func TestFmtDelay(t *testing.T) {
	tests := []struct {
		secs float64
		want string
	}{
		{0, "0"}, {0.004, "0"}, {0.01, "0.01"}, {0.236, "0.23"}, {0.1, "0.1"},
		{1.25, "1.2"}, {4, "4"}, {9.99, "9.9"}, {12.7, "12"}, {2186.3, "2186"},
	}
	for _, tc := range tests {
		d := secondsToDuration(tc.secs)
		if got := fmtDelay(d); got != tc.want {
			t.Errorf("fmtDelay(%v) = %q, want %q", tc.secs, got, tc.want)
		}
	}
}

func TestWantsNotice(t *testing.T) {
	tests := []struct {
		notify         string
		failure, delay bool
	}{
		{"", true, true},
		{"NEVER", false, false},
		{"SUCCESS", false, false},
		{"FAILURE", true, false},
		{"delay,failure", true, true},
		{"SUCCESS,DELAY", false, true},
	}
	for _, tc := range tests {
		if got := wantsNotice(tc.notify, noticeFailure); got != tc.failure {
			t.Errorf("%q failure: %v", tc.notify, got)
		}
		if got := wantsNotice(tc.notify, noticeDelay); got != tc.delay {
			t.Errorf("%q delay: %v", tc.notify, got)
		}
	}
}

func TestXtextDecode(t *testing.T) {
	for in, want := range map[string]string{
		"rfc822;a+2Bb@example.org": "rfc822;a+b@example.org",
		"plain":                    "plain",
		"bad+Z":                    "bad+Z",
		"end+":                     "end+",
		"x+3D":                     "x=",
	} {
		if got := xtextDecode(in); got != want {
			t.Errorf("xtextDecode(%q) = %q, want %q", in, got, want)
		}
	}
}

func secondsToDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestGroupCommitSharesFsyncs(t *testing.T) {
	h := newHarness(t, nil)
	const writers, each = 50, 10
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				env := &Envelope{Sender: "a@example.org", Recipients: []Recipient{{Address: "b@example.net"}}}
				if err := h.q.Enqueue(context.Background(), env, strings.NewReader("Subject: x\r\n\r\nx\r\n")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	h.q.mu.Lock()
	syncs := h.q.fsyncs
	h.q.mu.Unlock()
	if n := h.queued(); n != writers*each {
		t.Fatalf("%d queued, want %d", n, writers*each)
	}
	if syncs >= writers*each*9/10 {
		t.Errorf("%d fsyncs for %d concurrent messages: commits are not shared", syncs, writers*each)
	}
	t.Logf("%d messages from %d writers: %d fsyncs", writers*each, writers, syncs)
}
