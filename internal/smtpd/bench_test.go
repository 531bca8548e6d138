package smtpd

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

// BenchmarkSMTPAccept measures the protocol's own cost: concurrent
// sessions each sending 5 KiB messages (MAIL, RCPT, DATA pipelined) to a
// queue that discards them. It reports messages per second.
//
//	go test -run '^$' -bench SMTPAccept ./internal/smtpd/
func BenchmarkSMTPAccept(b *testing.B) {
	line := strings.Repeat("x", 76) + "\r\n"
	body := "Subject: bench\r\n\r\n" + strings.Repeat(line, 5*1024/len(line)) + ".\r\n"
	for _, sessions := range []int{10, 50} {
		b.Run(fmt.Sprintf("sessions=%d", sessions), func(b *testing.B) {
			opts := baseOptions()
			opts.MaxConnections = sessions + 10
			opts.ClientConnectionCountLimit = -1
			ts := startServer(b, opts)
			ts.queue.discard = true
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			errs := make(chan error, sessions)
			b.SetBytes(int64(len(body)))
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < sessions; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := benchSession(ts.addr, body, &left); err != nil {
						errs <- err
					}
				}()
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

func benchSession(addr, body string, left *atomic.Int64) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReader(c)
	w := bufio.NewWriter(c)
	expect := func(code string) error {
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return err
			}
			if !strings.HasPrefix(l, code) {
				return fmt.Errorf("got %q, want %s", l, code)
			}
			if len(l) < 4 || l[3] != '-' {
				return nil
			}
		}
	}
	if err := expect("220"); err != nil {
		return err
	}
	w.WriteString("EHLO bench.example\r\n")
	w.Flush()
	if err := expect("250"); err != nil {
		return err
	}
	for left.Add(-1) >= 0 {
		w.WriteString("MAIL FROM:<bench@remote.example>\r\nRCPT TO:<user@example.com>\r\nDATA\r\n")
		w.Flush()
		for _, code := range []string{"250", "250", "354"} {
			if err := expect(code); err != nil {
				return err
			}
		}
		w.WriteString(body)
		w.Flush()
		if err := expect("250"); err != nil {
			return err
		}
	}
	w.WriteString("QUIT\r\n")
	w.Flush()
	return expect("221")
}
