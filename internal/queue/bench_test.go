package queue

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"postcote/internal/maillog"
)

// benchDir is where benchmark spools go: a real disk matters for fsync
// figures. POSTCOTE_BENCH_DIR overrides the default temporary directory.
func benchDir(b *testing.B) string {
	if d := os.Getenv("POSTCOTE_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "queue-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

var benchBody = func() []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.net\r\nSubject: benchmark\r\nMessage-ID: <bench@example.org>\r\n\r\n")
	for b.Len() < 5<<10 {
		b.WriteString("The quick brown fox jumps over the lazy dog, again and again.\r\n")
	}
	return b.Bytes()[:5<<10]
}()

// BenchmarkEnqueue measures durable Enqueue of 5 KiB messages with 1, 10
// and 50 concurrent writers (SMTP sessions), reporting messages per second
// and fsyncs (file plus directory) per message.
func BenchmarkEnqueue(b *testing.B) {
	for _, writers := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			q, err := Open(benchDir(b), Options{Logger: maillog.Discard(), Hostname: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			b.SetBytes(int64(len(benchBody)))
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			var next sync.Mutex
			left := b.N
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						next.Lock()
						if left == 0 {
							next.Unlock()
							return
						}
						left--
						next.Unlock()
						env := &Envelope{Sender: "a@example.org", Recipients: []Recipient{{Address: "b@example.net"}}}
						if err := q.Enqueue(context.Background(), env, bytes.NewReader(benchBody)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			q.mu.Lock()
			syncs := q.fsyncs
			q.mu.Unlock()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			b.ReportMetric(float64(syncs)/float64(b.N), "fsyncs/msg")
		})
	}
}

// BenchmarkDeliver measures how fast queued messages go through the
// scheduler to a no-op agent, results recorded durably (group-committed).
func BenchmarkDeliver(b *testing.B) {
	q, err := Open(benchDir(b), Options{Logger: maillog.Discard(), Hostname: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	var wg sync.WaitGroup
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < b.N; i += 50 {
				env := &Envelope{Sender: "a@example.org", Recipients: []Recipient{{Address: "b@example.net"}}}
				if err := q.Enqueue(context.Background(), env, bytes.NewReader(benchBody)); err != nil {
					b.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	q.mu.Lock()
	before := q.fsyncs
	q.mu.Unlock()
	done := make(chan struct{})
	agent := AgentFunc(func(ctx context.Context, msg *Message, rcpts []int) []Result {
		res := make([]Result, 0, len(rcpts))
		for _, i := range rcpts {
			res = append(res, Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 ok", Relay: "none"})
		}
		return res
	})
	b.ResetTimer()
	start := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			q.mu.Lock()
			n := len(q.msgs)
			q.mu.Unlock()
			if n == 0 {
				close(done)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	runDone := make(chan struct{})
	go func() { q.Run(ctx, agent); close(runDone) }()
	<-done
	elapsed := time.Since(start)
	cancel()
	<-runDone
	b.StopTimer()
	q.mu.Lock()
	syncs := q.fsyncs - before
	q.mu.Unlock()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(syncs)/float64(b.N), "fsyncs/msg")
}

// BenchmarkDiskFsync measures the raw fdatasync rate of the benchmark
// directory's disk (append 5 KiB, sync), the ceiling for one-fsync-per-
// message designs.
func BenchmarkDiskFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := f.Write(benchBody); err != nil {
			b.Fatal(err)
		}
		if err := fdatasync(f); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "fsyncs/s")
}
