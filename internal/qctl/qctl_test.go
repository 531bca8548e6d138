package qctl

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/queue"
)

// fakeQueue is a queue of three messages in three states.
type fakeQueue struct {
	msgs     map[queue.ID]queue.State
	flushed  int
	flushIDs []queue.ID
}

func newFake() *fakeQueue {
	return &fakeQueue{msgs: map[queue.ID]queue.State{"4AAA": queue.StateActive, "4BBB": queue.StateDeferred, "4CCC": queue.StateHold}}
}

func (f *fakeQueue) List() []queue.Summary {
	var out []queue.Summary
	for _, id := range []queue.ID{"4AAA", "4BBB", "4CCC"} {
		if st, ok := f.msgs[id]; ok {
			out = append(out, queue.Summary{ID: id, State: st, Sender: "s@x", Size: 10})
		}
	}
	return out
}

func (f *fakeQueue) set(id queue.ID, apply func(queue.State) bool, to queue.State, del bool) (int, error) {
	st, ok := f.msgs[id]
	if !ok {
		return 0, queue.ErrNotFound
	}
	if !apply(st) {
		return 0, nil
	}
	if del {
		delete(f.msgs, id)
	} else {
		f.msgs[id] = to
	}
	return 1, nil
}

func (f *fakeQueue) Hold(id queue.ID) (int, error) {
	return f.set(id, func(s queue.State) bool { return s != queue.StateHold }, queue.StateHold, false)
}
func (f *fakeQueue) Release(id queue.ID) (int, error) {
	return f.set(id, func(s queue.State) bool { return s == queue.StateHold }, queue.StateActive, false)
}
func (f *fakeQueue) Delete(id queue.ID) (int, error) {
	return f.set(id, func(queue.State) bool { return true }, 0, true)
}
func (f *fakeQueue) Requeue(id queue.ID) (int, error) {
	return f.set(id, func(queue.State) bool { return true }, queue.StateActive, false)
}
func (f *fakeQueue) Flush() { f.flushed++ }
func (f *fakeQueue) FlushID(id queue.ID) bool {
	f.flushIDs = append(f.flushIDs, id)
	_, ok := f.msgs[id]
	return ok
}

func TestApply(t *testing.T) {
	tests := []struct {
		verb, id string
		queues   []string
		want     []queue.ID
		err      error
	}{
		{Hold, "ALL", nil, []queue.ID{"4AAA", "4BBB"}, nil},
		{Hold, "ALL", []string{"deferred"}, []queue.ID{"4BBB"}, nil},
		{Release, "ALL", nil, []queue.ID{"4CCC"}, nil},
		{Delete, "4BBB", nil, []queue.ID{"4BBB"}, nil},
		{Delete, "4BBB", []string{"hold"}, nil, nil},
		{Delete, "4ZZZ", nil, nil, nil},
		{Delete, "ALL", []string{"incoming"}, []queue.ID{"4AAA"}, nil},
		{Delete, "../x", nil, nil, ErrInvalidID},
		{Delete, "ALL", []string{"bogus"}, nil, errors.New("unknown queue name: bogus")},
		{Requeue, "ALL", []string{"hold", "deferred"}, []queue.ID{"4BBB", "4CCC"}, nil},
		{Requeue, "4AAA", nil, []queue.ID{"4AAA"}, nil},
		{Requeue, "4ZZZ", nil, nil, nil},
	}
	for _, tt := range tests {
		got, err := Apply(newFake(), tt.verb, tt.id, tt.queues)
		if (err == nil) != (tt.err == nil) || (tt.err == ErrInvalidID && !errors.Is(err, ErrInvalidID)) {
			t.Errorf("%s %s %v: err %v, want %v", tt.verb, tt.id, tt.queues, err, tt.err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s %s %v = %v, want %v", tt.verb, tt.id, tt.queues, got, tt.want)
		}
	}
}

func startServer(t *testing.T, q Queue) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "public", "qmgr")
	s, err := Listen(path, q, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left behind: %v", err)
		}
	})
	return path
}

// TestRealQueue drives a real spool through the socket.
func TestRealQueue(t *testing.T) {
	q, err := queue.Open(t.TempDir(), queue.Options{Hostname: "mx.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	var ids []queue.ID
	for i := 0; i < 3; i++ {
		env := &queue.Envelope{Sender: "s@x.example", Recipients: []queue.Recipient{{Address: "r@y.example"}}}
		if err := q.Enqueue(context.Background(), env, strings.NewReader("Subject: x\r\n\r\nbody\r\n")); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, env.ID)
	}
	path := startServer(t, q)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o666 {
		t.Fatalf("socket mode: %v %v", st, err)
	}
	c, err := Dial(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	list, err := c.List()
	if err != nil || len(list) != 3 || list[0].ID != ids[0] || list[0].Recipients[0].Address != "r@y.example" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	if got, err := c.Apply(Hold, "ALL", nil); err != nil || len(got) != 3 {
		t.Fatalf("HOLD ALL = %v, %v", got, err)
	}
	if got, err := c.Apply(Release, string(ids[1]), []string{"hold"}); err != nil || !reflect.DeepEqual(got, []queue.ID{ids[1]}) {
		t.Fatalf("RELEASE = %v, %v", got, err)
	}
	if got, err := c.Apply(Delete, string(ids[0]), nil); err != nil || !reflect.DeepEqual(got, []queue.ID{ids[0]}) {
		t.Fatalf("DELETE = %v, %v", got, err)
	}
	if _, err := c.Apply(Delete, "no/such", nil); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("bad ID: %v", err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	list, _ = c.List()
	if len(list) != 2 || list[0].State != queue.StateActive || list[1].State != queue.StateHold {
		t.Fatalf("after changes: %+v", list)
	}
	if err := c.FlushID(string(ids[1])); err != nil {
		t.Fatalf("FLUSH ID: %v", err)
	}
	if err := c.FlushID("4jZFXc0013z15"); err != nil {
		t.Fatalf("FLUSH of an ID not queued: %v", err)
	}
	if err := c.FlushID("../x"); !errors.Is(err, ErrInvalidID) {
		t.Fatalf("FLUSH of a bad ID: %v", err)
	}
	got, err := c.Apply(Requeue, "ALL", []string{"hold"})
	if err != nil || !reflect.DeepEqual(got, []queue.ID{ids[2]}) {
		t.Fatalf("REQUEUE ALL hold = %v, %v", got, err)
	}
	list, _ = c.List()
	if len(list) != 2 || list[0].ID != ids[1] || list[1].ID == ids[2] || list[1].State != queue.StateActive {
		t.Fatalf("after REQUEUE: %+v", list)
	}
}

func TestProtocolErrors(t *testing.T) {
	path := startServer(t, newFake())
	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 4096)
	for _, tt := range []struct{ req, want string }{
		{"\n", "ERR empty request"},
		{"BOGUS\n", "ERR unknown request BOGUS"},
		{"DELETE\n", "ERR missing queue ID"},
		{"flush\n", "OK"},
		{"FLUSH 4AAA\n", "OK"},
		{"FLUSH 4ZZZ\n", "OK"},
		{"FLUSH a/b\n", "ERR invalid mail queue id: a/b"},
		{"FLUSH 4AAA 4BBB\n", "ERR usage: FLUSH [queue ID]"},
		{"REQUEUE\n", "ERR missing queue ID"},
		{strings.Repeat("x", 2000) + "\n", "ERR line too long"},
	} {
		if _, err := conn.Write([]byte(tt.req)); err != nil {
			t.Fatal(err)
		}
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("%.20q: %v", tt.req, err)
		}
		if got := strings.TrimSuffix(string(buf[:n]), "\n"); got != tt.want {
			t.Errorf("%.20q -> %q, want %q", tt.req, got, tt.want)
		}
	}
}

func TestUnprivilegedRefused(t *testing.T) {
	f := newFake()
	s := &Server{q: f, log: nil}
	s.log = nilLogger()
	for _, req := range []string{"DELETE ALL", "REQUEUE ALL", "HOLD 4AAA", "RELEASE ALL"} {
		if got := s.answer(req, false, 1000); got != "ERR permission denied" {
			t.Errorf("%s by uid 1000: %q", req, got)
		}
	}
	if len(f.msgs) != 3 {
		t.Error("an unprivileged DELETE changed the queue")
	}
	if got := s.answer("LIST", false, 1000); !strings.HasPrefix(got, "OK [") {
		t.Errorf("LIST by uid 1000: %q", got)
	}
	if got := s.answer("FLUSH", false, 1000); got != "OK" || f.flushed != 1 {
		t.Errorf("FLUSH by uid 1000: %q", got)
	}
	if got := s.answer("FLUSH 4BBB", false, 1000); got != "OK" || !reflect.DeepEqual(f.flushIDs, []queue.ID{"4BBB"}) {
		t.Errorf("FLUSH 4BBB by uid 1000: %q, flushed %v", got, f.flushIDs)
	}
}

func TestDialNotRunning(t *testing.T) {
	dir := t.TempDir()
	if _, err := Dial(context.Background(), filepath.Join(dir, "qmgr")); !errors.Is(err, ErrNotRunning) {
		t.Errorf("missing socket: %v", err)
	}
	// A socket file left by a dead server.
	ln, err := net.Listen("unix", filepath.Join(dir, "dead"))
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := Dial(context.Background(), filepath.Join(dir, "dead")); !errors.Is(err, ErrNotRunning) {
		t.Errorf("dead socket: %v", err)
	}
}

func nilLogger() *maillog.Logger { return maillog.Discard() }
