package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"postcote/internal/maillog"
)

// benchRouter routes user<N>@… to one of ten destinations and accepts
// everything.
type benchRouter struct{}

func (benchRouter) Route(_ context.Context, rcpt string) (Destination, error) {
	local, _, _ := strings.Cut(rcpt, "@")
	return Destination{Transport: "smtp", Nexthop: fmt.Sprintf("d%c.example", local[len(local)-1])}, nil
}

func (benchRouter) Limits(string) Limits {
	return Limits{Concurrency: 20, Recipients: 50, Process: 100, Initial: 5, FailedCohorts: 1}
}

func (r benchRouter) DeliverTo(_ context.Context, _ Destination, msg *Message, rcpts []int) []Result {
	return r.Deliver(context.Background(), msg, rcpts)
}

func (benchRouter) Deliver(_ context.Context, _ *Message, rcpts []int) []Result {
	res := make([]Result, 0, len(rcpts))
	for _, i := range rcpts {
		res = append(res, Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "250 ok", RemoteReply: "250 ok", Relay: "none"})
	}
	return res
}

// BenchmarkDeliverRouted is BenchmarkDeliver through the per-destination
// scheduler: messages spread over ten destinations (concurrency limit 20
// each, slow start from 5, process limit 100), results recorded durably.
func BenchmarkDeliverRouted(b *testing.B) {
	q, err := Open(benchDir(b), Options{Logger: maillog.Discard(), Hostname: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	enqueueConcurrently(b, q, b.N, 50)
	q.mu.Lock()
	before := q.fsyncs
	q.mu.Unlock()
	b.ResetTimer()
	start := time.Now()
	stop := runQueue(q, benchRouter{})
	for {
		q.mu.Lock()
		n := len(q.msgs)
		q.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	stop()
	b.StopTimer()
	q.mu.Lock()
	syncs := q.fsyncs - before
	q.mu.Unlock()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(syncs)/float64(b.N), "fsyncs/msg")
}
