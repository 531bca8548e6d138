package pickup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/queue"
)

// fakeQueue records what pickup queues; fail makes Enqueue fail.
type fakeQueue struct {
	mu   sync.Mutex
	n    int
	got  []*queue.Envelope
	body []string
	fail error
}

func (q *fakeQueue) NewID() queue.ID {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	return queue.ID("4ABC" + string(rune('A'+q.n)))
}

func (q *fakeQueue) Enqueue(ctx context.Context, env *queue.Envelope, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return q.fail
	}
	q.got = append(q.got, env)
	q.body = append(q.body, string(b))
	return nil
}

func (q *fakeQueue) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.got)
}

func newPickup(t *testing.T, q Queue) (*Pickup, string) {
	t.Helper()
	root := t.TempDir()
	p, err := New(Options{Dir: filepath.Join(root, "maildrop"), CorruptDir: filepath.Join(root, "corrupt"),
		WakeSocket: filepath.Join(root, "public", "pickup"), Site: testSite, Queue: q, Interval: time.Hour, MaxSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return p, root
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestScan(t *testing.T) {
	q := &fakeQueue{}
	p, root := newPickup(t, q)
	drop := filepath.Join(root, "maildrop")
	st, _ := os.Stat(drop)
	if st.Mode()&os.ModePerm != 0o733 || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("maildrop mode %v, want sticky 0733", st.Mode())
	}
	for _, r := range []string{"a@x.example", "b"} {
		if _, err := Write(drop, &Submission{Recipients: []string{r}}, strings.NewReader("Subject: "+r+"\n\nhi\n"), 0); err != nil {
			t.Fatal(err)
		}
	}
	// A file being written, a corrupt file, a hard link and a symlink.
	os.WriteFile(filepath.Join(drop, tempPrefix+"x"), []byte("partial"), 0o600)
	os.WriteFile(filepath.Join(drop, "junk"), []byte("not a maildrop file"), 0o600)
	secret := filepath.Join(root, "secret")
	os.WriteFile(secret, []byte(magic+"\nR thief@x.example\n\nsecret\n"), 0o600)
	os.Link(secret, filepath.Join(drop, "link"))
	os.Symlink(secret, filepath.Join(drop, "symlink"))
	big := filepath.Join(drop, "big")
	os.WriteFile(big, []byte(magic+"\nR u\n\n"+strings.Repeat("x", maxHeaderSize+2000)), 0o600)

	if n := p.Scan(context.Background()); n != 2 {
		t.Fatalf("Scan queued %d, want 2", n)
	}
	if got := names(t, drop); len(got) != 1 || got[0] != tempPrefix+"x" {
		t.Errorf("maildrop holds %v, want only the temporary file", got)
	}
	if got := names(t, filepath.Join(root, "corrupt")); len(got) != 4 {
		t.Errorf("corrupt holds %v, want junk, link, symlink, big", got)
	}
	if q.got[1].Recipients[0].Address != "b@example.com" || !strings.Contains(q.body[1], "Subject: b\r\n") {
		t.Errorf("second message: %+v %q", q.got[1], q.body[1])
	}
	for _, b := range q.body {
		if strings.Contains(b, "secret") {
			t.Fatal("a hard-linked file was queued")
		}
	}
}

func TestScanKeepsFileWhenQueueFails(t *testing.T) {
	q := &fakeQueue{fail: errors.New("disk full")}
	p, root := newPickup(t, q)
	drop := filepath.Join(root, "maildrop")
	if _, err := Write(drop, &Submission{Recipients: []string{"u"}}, strings.NewReader("hi\n"), 0); err != nil {
		t.Fatal(err)
	}
	if n := p.Scan(context.Background()); n != 0 {
		t.Fatalf("queued %d with a failing queue", n)
	}
	if len(names(t, drop)) != 1 {
		t.Fatal("file removed although the queue refused it")
	}
	q.mu.Lock()
	q.fail = nil
	q.mu.Unlock()
	if n := p.Scan(context.Background()); n != 1 || len(names(t, drop)) != 0 {
		t.Fatalf("retry: queued %d, left %v", n, names(t, drop))
	}
}

func TestStaleTemporaryRemoved(t *testing.T) {
	q := &fakeQueue{}
	p, root := newPickup(t, q)
	drop := filepath.Join(root, "maildrop")
	old := filepath.Join(drop, tempPrefix+"old")
	os.WriteFile(old, nil, 0o600)
	os.Chtimes(old, time.Now().Add(-25*time.Hour), time.Now().Add(-25*time.Hour))
	p.Scan(context.Background())
	if len(names(t, drop)) != 0 {
		t.Errorf("abandoned temporary file kept: %v", names(t, drop))
	}
}

// TestRunWakes: a datagram on the socket makes Run scan at once (the
// interval is an hour), and Run removes its socket when it stops.
func TestRunWakes(t *testing.T) {
	q := &fakeQueue{}
	p, root := newPickup(t, q)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	drop := filepath.Join(root, "maildrop")
	if _, err := Write(drop, &Submission{Recipients: []string{"u"}}, strings.NewReader("hi\n"), 0); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(root, "public", "pickup")
	for deadline := time.Now().Add(10 * time.Second); q.count() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("pickup did not wake up")
		}
		Wake(sock)
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestRealQueue: a maildrop file ends up durable in a real spool.
func TestRealQueue(t *testing.T) {
	qdir := t.TempDir()
	rq, err := queue.Open(qdir, queue.Options{Hostname: "mx.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	defer rq.Close()
	p, root := newPickup(t, rq)
	if _, err := Write(filepath.Join(root, "maildrop"), &Submission{Recipients: []string{"u@x.example"}, Sender: "s@x.example", SenderSet: true},
		bytes.NewReader([]byte("Subject: real\n\nbody\n")), 0); err != nil {
		t.Fatal(err)
	}
	if n := p.Scan(context.Background()); n != 1 {
		t.Fatalf("queued %d", n)
	}
	list := rq.List()
	if len(list) != 1 || list[0].Sender != "s@x.example" || list[0].Recipients[0].Address != "u@x.example" {
		t.Fatalf("queue holds %+v", list)
	}
}

func TestWaiting(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, &Submission{Extract: true, Sender: "s", SenderSet: true}, strings.NewReader("To: a@x.example\n\nb\n"), 0); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, tempPrefix+"partial"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, "junk"), []byte("x"), 0o600)
	list, err := Waiting(dir, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Sender != "s@example.com" || len(list[0].Recipients) != 1 ||
		list[0].Recipients[0].Address != "a@x.example" || list[0].Size != int64(len("To: a@x.example\n\nb\n")) {
		t.Fatalf("Waiting = %+v", list)
	}
}

// permanentErr is a refusal that says it will not go away (a mail loop).
type permanentErr struct{}

func (permanentErr) Error() string   { return "554 5.4.0 too many hops" }
func (permanentErr) Temporary() bool { return false }

// A message the front end refuses for good is not retried forever: it is
// moved aside (kept, never deleted), and the next file goes through.
func TestScanSetsAsidePermanentRefusal(t *testing.T) {
	q := &fakeQueue{fail: fmt.Errorf("cleanup: %w", permanentErr{})}
	p, root := newPickup(t, q)
	drop := filepath.Join(root, "maildrop")
	if _, err := Write(drop, &Submission{Recipients: []string{"u"}}, strings.NewReader("hi\n"), 0); err != nil {
		t.Fatal(err)
	}
	if n := p.Scan(context.Background()); n != 0 {
		t.Fatalf("queued %d with a refusing queue", n)
	}
	if got := names(t, drop); len(got) != 0 {
		t.Errorf("maildrop still holds %v: it would be retried forever", got)
	}
	if got := names(t, filepath.Join(root, "corrupt")); len(got) != 1 {
		t.Errorf("corrupt holds %v, want the refused file", got)
	}
}
