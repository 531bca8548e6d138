package queue

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

func segFiles(t *testing.T, dir string) []uint64 {
	t.Helper()
	nums, err := listSegments(filepath.Join(dir, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	return nums
}

// lastSegment returns the path of the newest segment holding records.
func lastSegment(t *testing.T, h *harness) string {
	t.Helper()
	nums := segFiles(t, h.dir)
	for i := len(nums) - 1; i >= 0; i-- {
		if st, err := os.Stat(h.q.segPath(nums[i])); err == nil && !allZeroFile(t, h.q.segPath(nums[i]), st.Size()) {
			return h.q.segPath(nums[i])
		}
	}
	t.Fatal("no segment with records")
	return ""
}

func allZeroFile(t *testing.T, path string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return allZero(f, 0, size)
}

func TestTornTailTruncated(t *testing.T) {
	tests := []struct {
		name  string
		tail  func(rec []byte) []byte
		zeros bool // preallocated space, not a torn record: kept
	}{
		{"half header", func(rec []byte) []byte { return rec[:7] }, false},
		{"header only", func(rec []byte) []byte { return rec[:recHeaderSize] }, false},
		{"short payload", func(rec []byte) []byte { return rec[:len(rec)-3] }, false},
		{"garbage then zeros", func(rec []byte) []byte { return append(rec[:20:20], make([]byte, 4096)...) }, false},
		{"zeros", func(rec []byte) []byte { return make([]byte, 4096) }, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			var ids []ID
			for i := 0; i < 3; i++ {
				ids = append(ids, h.enqueue("a@example.org", []string{"b@example.net"}, fmt.Sprintf("m%d\r\n", i)))
			}
			h.q.Close()
			seg := lastSegment(t, h)
			st, _ := os.Stat(seg)
			size := st.Size()
			f0, _ := os.Open(seg)
			res, _ := scanSegment(f0, size, func(int64, byte, []byte) error { return nil })
			f0.Close()
			good := res.end // the segment may be preallocated: zeros after the records
			env := &Envelope{Sender: "x@example.org", Recipients: []Recipient{{Address: "y@example.net"}}}
			rec, _ := encodeMessage("4jZFXc9999z9", env, 0, zeroTime(), 5, []byte("torn!"))
			f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(tc.tail(rec))
			f.Close()
			h.open()
			list := h.q.List()
			if len(list) != 3 {
				t.Fatalf("%d messages after recovery, want 3", len(list))
			}
			st, _ = os.Stat(seg)
			want := good
			if tc.zeros {
				want = size + 4096
			}
			if st.Size() != want {
				t.Errorf("segment size %d after recovery, want %d", st.Size(), want)
			}
			if truncated := strings.Contains(h.logs.String(), "truncating incomplete last record"); truncated == tc.zeros {
				t.Errorf("truncation logged: %v, want %v:\n%s", truncated, !tc.zeros, h.logs.String())
			}
			// Appending after the cut works and survives another reopen.
			h.enqueue("a@example.org", []string{"b@example.net"}, "after\r\n")
			h.reopen()
			if n := h.queued(); n != 4 {
				t.Fatalf("%d messages after second reopen, want 4", n)
			}
			if ents, _ := os.ReadDir(filepath.Join(h.dir, "corrupt")); len(ents) != 0 {
				t.Errorf("torn tail treated as corruption")
			}
		})
	}
}

func TestCorruptMiddleSalvaged(t *testing.T) {
	h := newHarness(t, nil)
	var ids []ID
	for i := 0; i < 3; i++ {
		ids = append(ids, h.enqueue("a@example.org", []string{"b@example.net"}, fmt.Sprintf("Subject: %d\r\n\r\nbody-%d\r\n", i, i)))
	}
	h.q.Close()
	var seg string
	var data []byte
	for _, n := range segFiles(t, h.dir) {
		b, err := os.ReadFile(h.q.segPath(n))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "body-1") {
			seg, data = h.q.segPath(n), b
		}
	}
	i := strings.Index(string(data), "body-1")
	data[i] ^= 0x20 // flip a bit in the second message's content
	os.WriteFile(seg, data, 0o600)

	h.open()
	list := h.q.List()
	got := map[ID]bool{}
	for _, s := range list {
		got[s.ID] = true
	}
	if len(list) != 2 || !got[ids[0]] || !got[ids[2]] {
		t.Fatalf("after recovery: %v, want %s and %s", got, ids[0], ids[2])
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "damaged at offset") || !strings.Contains(logs, "CRC mismatch") {
		t.Errorf("damage not reported loudly:\n%s", logs)
	}
	moved := filepath.Join(h.dir, "corrupt", filepath.Base(seg))
	if _, err := os.Stat(moved); err != nil {
		t.Errorf("damaged segment not moved to corrupt/: %v", err)
	}
	if _, err := os.Stat(seg); !os.IsNotExist(err) {
		t.Errorf("damaged segment still in the spool")
	}
	// The salvaged messages are durable in a fresh segment and deliverable.
	h.reopen()
	if strings.Count(h.logs.String(), "damaged at offset") != 1 {
		t.Errorf("damage reported again after salvage")
	}
	a := newAgent(nil)
	stop := h.run(a)
	waitFor(t, "delivery", func() bool { return h.queued() == 0 })
	stop()
	for _, d := range a.deliveries() {
		if !strings.Contains(d.content, "body-") {
			t.Errorf("salvaged content %q", d.content)
		}
	}
	if len(a.deliveries()) != 2 {
		t.Errorf("%d deliveries, want 2", len(a.deliveries()))
	}
}

func TestCompaction(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
	}{
		{"inline", "Subject: pinned\r\n\r\nkeep me\r\n"},
		{"large file", "Subject: pinned\r\n\r\n" + strings.Repeat("keep me, I am large\r\n", 200)},
	} {
		t.Run(tc.name, func(t *testing.T) { testCompaction(t, tc.body) })
	}
}

func testCompaction(t *testing.T, body string) {
	h := newHarness(t, func(o *Options) { o.SegmentSize = 8 << 10; o.LargeThreshold = 2000 })
	var accept atomic.Bool
	a := newAgent(func(msg *Message, i int) Result {
		if msg.Envelope.Recipients[i].Address == "slow@example.com" && !accept.Load() {
			return Result{Rcpt: i, Status: StatusDeferred, DSN: "4.4.1", Reply: "try later"}
		}
		return Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 ok"}
	})
	stop := h.run(a)
	defer stop()
	pinned := h.enqueue("a@example.org", []string{"slow@example.com"}, body)
	first := segFiles(t, h.dir)[0]
	filler := strings.Repeat("f", 1500)
	for i := 0; i < 60; i++ {
		h.enqueue("a@example.org", []string{"fast@example.net"}, filler)
		waitFor(t, "filler delivered", func() bool { return h.queued() == 1 })
	}
	nums := segFiles(t, h.dir)
	if nums[0] == first {
		t.Fatalf("segment %d pinned by a deferred message was not compacted away (segments %v)", first, nums)
	}
	if len(nums) > 4 {
		t.Errorf("%d segments on disk, want at most 4: %v", len(nums), nums)
	}
	if !strings.Contains(h.logs.String(), "compaction: copying") {
		t.Errorf("no compaction log line")
	}
	// The copy keeps content and state, across a reopen too.
	stop()
	h.reopen()
	s := h.q.List()
	if len(s) != 1 || s[0].ID != pinned || s[0].Recipients[0].Attempts != 1 || s[0].State != StateDeferred {
		t.Fatalf("after reopen: %+v", s)
	}
	accept.Store(true)
	a.mu.Lock()
	a.got = nil
	a.mu.Unlock()
	stop = h.run(a)
	h.q.Flush()
	waitFor(t, "pinned delivered", func() bool { return h.queued() == 0 })
	got := a.deliveries()
	if len(got) != 1 || got[0].id != pinned || got[0].content != body {
		t.Fatalf("deliveries %+v", got)
	}
	stop()
	if ents, _ := os.ReadDir(filepath.Join(h.dir, "large")); len(ents) != 0 {
		t.Errorf("large file left after delivery: %v", ents)
	}
}

func TestSecondOpenRefused(t *testing.T) {
	h := newHarness(t, nil)
	if _, err := Open(h.dir, h.opts); err == nil {
		t.Fatal("a second Open of the same spool succeeded")
	}
}

func TestClosedQueueRefuses(t *testing.T) {
	h := newHarness(t, nil)
	h.q.Close()
	env := &Envelope{Recipients: []Recipient{{Address: "b@example.net"}}}
	if err := h.q.Enqueue(context.Background(), env, strings.NewReader("x")); err == nil {
		t.Fatal("Enqueue after Close succeeded")
	}
}
