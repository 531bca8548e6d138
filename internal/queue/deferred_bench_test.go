package queue

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"postcote/internal/maillog"
)

// deferredN is the size of the deferred backlog BenchmarkDeferred10k
// builds (issue 5: "the queue's behaviour with 10,000 deferred messages").
const deferredN = 10000

// BenchmarkDeferred10k measures the queue holding 10,000 deferred 5 KiB
// messages: it enqueues them (50 concurrent writers), lets the scheduler
// hand each to an agent that defers every recipient, and then reports
//
//	heap-MiB        heap in use after a GC with the 10,000 deferred
//	heap-B/msg      heap allocated per deferred message (over the empty queue)
//	reopen-heap-MiB heap in use after a GC once Open has replayed them
//	spool-MiB       disk blocks the spool occupies (preallocation included)
//	seg-written-MiB bytes written to the segments (up to the last record)
//	seg-live-MiB    bytes of the live message records in them
//	enqueue-ms      queueing the 10,000 (50 writers)
//	defer-ms        first pass: the agent defers all 10,000, results recorded
//	close-ms        Close with 10,000 deferred
//	reopen-ms       Open of that spool: replay of every segment (the scan)
//	list-ms         one List() of the 10,000
//	flush-ms        Flush() until the agent has had all 10,000 again and
//	                every result is recorded durably
//
// It takes a few seconds (mostly fsyncs) and runs only with -bench:
//
//	go test -run XXX -bench Deferred10k -benchtime 1x ./internal/queue/
//
// POSTCOTE_BENCH_DIR puts the spool on a chosen disk (see benchDir).
func BenchmarkDeferred10k(b *testing.B) {
	for i := 0; i < b.N; i++ {
		deferredRun(b)
	}
}

// deferAll is an agent that defers every recipient, as a transport does
// when the next hop refuses connections, and counts its calls.
type deferAll struct{ calls atomic.Int64 }

func (a *deferAll) Deliver(ctx context.Context, msg *Message, rcpts []int) []Result {
	a.calls.Add(1)
	res := make([]Result, 0, len(rcpts))
	for _, i := range rcpts {
		res = append(res, Result{Rcpt: i, Status: StatusDeferred, DSN: "4.4.1",
			Reply: "connect to mx.example.net[192.0.2.1]:25: Connection refused", Relay: "none", Transport: "smtp"})
	}
	return res
}

func deferredRun(b *testing.B) {
	b.StopTimer()
	dir := benchDir(b)
	opts := Options{Logger: maillog.Discard(), Hostname: "bench", Concurrency: 100}
	base := heapAfterGC()

	q, err := Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { q.Close() }()
	b.StartTimer()

	start := time.Now()
	enqueueConcurrently(b, q, deferredN, 50)
	enqueueTime := time.Since(start)

	agent := &deferAll{}
	stop := runQueue(q, agent)
	waitDeferred(b, q, agent, deferredN, 1)
	stop()
	firstPass := time.Since(start) - enqueueTime

	b.StopTimer()
	heap := heapAfterGC()
	b.StartTimer()

	start = time.Now()
	list := q.List()
	listTime := time.Since(start)
	if len(list) != deferredN {
		b.Fatalf("List: %d messages, want %d", len(list), deferredN)
	}
	for _, s := range list {
		if s.State != StateDeferred {
			b.Fatalf("List: %s is %v, want deferred", s.ID, s.State)
		}
	}

	written, live := segmentBytes(q)
	start = time.Now()
	if err := q.Close(); err != nil {
		b.Fatal(err)
	}
	closeTime := time.Since(start)

	b.StopTimer()
	disk := spoolSize(b, dir)
	b.StartTimer()

	start = time.Now()
	q, err = Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	reopenTime := time.Since(start)
	b.StopTimer()
	reopenHeap := heapAfterGC()
	b.StartTimer()
	if n := countDeferred(q, 1); n != deferredN {
		b.Fatalf("after reopen: %d deferred messages, want %d", n, deferredN)
	}

	before := agent.calls.Load()
	stop = runQueue(q, agent)
	start = time.Now()
	q.Flush()
	waitDeferred(b, q, agent, deferredN, 2)
	flushTime := time.Since(start)
	stop()
	if got := agent.calls.Load() - before; got != deferredN {
		b.Fatalf("flush: agent called %d times, want %d", got, deferredN)
	}
	b.StopTimer()

	const mib = 1 << 20
	b.ReportMetric(float64(heap.inuse)/mib, "heap-MiB")
	b.ReportMetric((float64(heap.alloc)-float64(base.alloc))/deferredN, "heap-B/msg")
	b.ReportMetric(float64(reopenHeap.inuse)/mib, "reopen-heap-MiB")
	b.ReportMetric(float64(disk)/mib, "spool-MiB")
	b.ReportMetric(float64(written)/mib, "seg-written-MiB")
	b.ReportMetric(float64(live)/mib, "seg-live-MiB")
	b.ReportMetric(ms(enqueueTime), "enqueue-ms")
	b.ReportMetric(ms(firstPass), "defer-ms")
	b.ReportMetric(ms(listTime), "list-ms")
	b.ReportMetric(ms(closeTime), "close-ms")
	b.ReportMetric(ms(reopenTime), "reopen-ms")
	b.ReportMetric(ms(flushTime), "flush-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type heapStats struct{ inuse, alloc uint64 }

// heapAfterGC collects garbage twice (the second pass frees what the
// first one's finalizers released) and reads the heap figures.
func heapAfterGC() heapStats {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return heapStats{inuse: m.HeapInuse, alloc: m.HeapAlloc}
}

// enqueueConcurrently queues n copies of benchBody, one recipient each,
// from the given number of writers.
func enqueueConcurrently(b *testing.B, q *Queue, n, writers int) {
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n && !failed.Load(); i += writers {
				env := &Envelope{Sender: "a@example.org",
					Recipients: []Recipient{{Address: fmt.Sprintf("user%d@example.net", i)}}}
				if err := q.Enqueue(context.Background(), env, bytes.NewReader(benchBody)); err != nil {
					failed.Store(true)
					b.Error(err)
				}
			}
		}(w)
	}
	wg.Wait()
	if failed.Load() {
		b.FailNow()
	}
}

// runQueue starts Run and returns a function that stops it and waits.
func runQueue(q *Queue, agent Agent) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.Run(ctx, agent); close(done) }()
	return func() { cancel(); <-done }
}

// countDeferred counts messages not in delivery, due in the future, whose
// recipients have all had at least attempts attempts.
func countDeferred(q *Queue, attempts int) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.now()
	n := 0
	for _, e := range q.msgs {
		if e.inflight || e.queued || !e.nextRetry.After(now) {
			continue
		}
		ok := true
		for _, rc := range e.env.Recipients {
			ok = ok && rc.Status == Pending && rc.Attempts >= attempts
		}
		if ok {
			n++
		}
	}
	return n
}

// waitDeferred polls until n messages are deferred after the given number
// of attempts, failing after a minute.
func waitDeferred(b *testing.B, q *Queue, agent *deferAll, n, attempts int) {
	deadline := time.Now().Add(time.Minute)
	for countDeferred(q, attempts) < n {
		if time.Now().After(deadline) {
			b.Fatalf("after a minute only %d of %d messages deferred (%d agent calls)", countDeferred(q, attempts), n, agent.calls.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// spoolSize returns the disk space the spool's files occupy: allocated
// blocks, so preallocated segment space counts in full.
func spoolSize(b *testing.B, dir string) (disk int64) {
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			disk += st.Blocks * 512
		} else {
			disk += info.Size()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return disk
}

// segmentBytes returns the bytes written to the segments (up to their
// last record) and the bytes of their live message records.
func segmentBytes(q *Queue) (written, live int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, si := range q.segs {
		written += si.size
		live += si.liveBytes
	}
	return written, live
}
