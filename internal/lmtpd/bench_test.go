package lmtpd

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkDeliver measures LMTP deliveries per second through lmtpd
// into Maildir (transport.Mailbox and the real store, which fsyncs each
// message), with 1 and 10 clients each on its own connection sending
// one-recipient transactions of a 2 KiB message.
//
//	go test ./internal/lmtpd -run '^$' -bench Deliver -benchtime 2000x
func BenchmarkDeliver(b *testing.B) {
	body := "Subject: bench\r\nMessage-ID: <bench@example.org>\r\n\r\n" + strings.Repeat(strings.Repeat("z", 78)+"\r\n", 25) + ".\r\n"
	for _, clients := range []int{1, 10} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			ts := startServer(b, Options{})
			var next atomic.Int64
			var wg sync.WaitGroup
			errs := make(chan error, clients)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < clients; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					if err := benchClient(ts.addr, []string{"info", "bob", "sales"}[i%3], body, &next, int64(b.N)); err != nil {
						errs <- err
					}
				}(i)
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			close(errs)
			for err := range errs {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// benchClient delivers until the shared counter reaches n.
func benchClient(addr, user, body string, next *atomic.Int64, n int64) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	expect := func(prefix string) error {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(l, prefix) {
				return fmt.Errorf("got %q, want %s", l, prefix)
			}
			if len(l) < 4 || l[3] == ' ' {
				return nil
			}
		}
	}
	if err := expect("220"); err != nil {
		return err
	}
	fmt.Fprintf(c, "LHLO bench.example\r\n")
	if err := expect("250"); err != nil {
		return err
	}
	tx := fmt.Sprintf("MAIL FROM:<s@example.org>\r\nRCPT TO:<%s@example.jp>\r\nDATA\r\n", user)
	for next.Add(1) <= n {
		if _, err := fmt.Fprint(c, tx); err != nil {
			return err
		}
		for _, p := range []string{"250", "250", "354"} {
			if err := expect(p); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprint(c, body); err != nil {
			return err
		}
		if err := expect("250"); err != nil {
			return err
		}
	}
	fmt.Fprintf(c, "QUIT\r\n")
	return expect("221")
}
