package authd

import (
	"context"
	"testing"

	"postcote/internal/sasl"
)

// BenchmarkAuthPlain measures AUTH PLAIN requests per second through the
// auth socket (client and server in this process, a checker that answers
// at once: the protocol's cost, not a password scheme's).
func BenchmarkAuthPlain(b *testing.B) {
	_, path := startServer(b, Options{})
	cl, err := NewClient(path, ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	req := sasl.Request{Service: "smtp", User: "alice", Password: "secret"}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := cl.CheckPassword(context.Background(), req); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auths/s")
}

// BenchmarkAuthPlainSerial is one request at a time, as one Postfix smtpd
// process sends them.
func BenchmarkAuthPlainSerial(b *testing.B) {
	_, path := startServer(b, Options{})
	cl, err := NewClient(path, ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	req := sasl.Request{Service: "smtp", User: "alice", Password: "secret"}
	for b.Loop() {
		if _, err := cl.CheckPassword(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "auths/s")
}
