package e2e

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// slowLMTP is an LMTP server (RFC 2033) that accepts everything, holds
// each transaction for a while after the data, and counts transactions
// in progress at once.
type slowLMTP struct {
	ln   net.Listener
	hold time.Duration
	mu   sync.Mutex
	cur  int
	most int
	done int
	wg   sync.WaitGroup
}

func startSlowLMTP(t *testing.T, hold time.Duration) *slowLMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slowLMTP{ln: ln, hold: hold}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *slowLMTP) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprintf(c, "220 slow.example LMTP\r\n")
	rcpts := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb := strings.ToUpper(strings.Fields(line + " x")[0])
		switch verb {
		case "LHLO":
			fmt.Fprintf(c, "250-slow.example\r\n250-PIPELINING\r\n250 ENHANCEDSTATUSCODES\r\n")
		case "MAIL":
			s.mu.Lock()
			s.cur++
			s.most = max(s.most, s.cur)
			s.mu.Unlock()
			rcpts = 0
			fmt.Fprintf(c, "250 2.1.0 Ok\r\n")
		case "RCPT":
			rcpts++
			fmt.Fprintf(c, "250 2.1.5 Ok\r\n")
		case "DATA":
			fmt.Fprintf(c, "354 go ahead\r\n")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" || l == ".\n" {
					break
				}
			}
			time.Sleep(s.hold) // a slow mailbox server
			s.mu.Lock()
			s.cur--
			s.done++
			s.mu.Unlock()
			for i := 0; i < rcpts; i++ {
				fmt.Fprintf(c, "250 2.0.0 Ok: saved\r\n")
			}
		case "RSET":
			fmt.Fprintf(c, "250 2.0.0 Ok\r\n")
		case "QUIT":
			fmt.Fprintf(c, "221 2.0.0 Bye\r\n")
			return
		default:
			fmt.Fprintf(c, "250 2.0.0 Ok\r\n")
		}
	}
}

func (s *slowLMTP) counts() (most, done int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.most, s.done
}

// TestDestinationConcurrencyFromMainCF: lmtp_destination_concurrency_limit
// in main.cf bounds the deliveries to one LMTP server at once (Postfix's
// qmgr), while every message still gets through.
func TestDestinationConcurrencyFromMainCF(t *testing.T) {
	lmtp := startSlowLMTP(t, 300*time.Millisecond)
	p := testenv.NewDev(t)
	setMain(t, p, "virtual_transport", "lmtp:inet:"+lmtp.ln.Addr().String())
	setMain(t, p, "lmtp_destination_concurrency_limit", "2")
	p.Start()

	const n = 8
	for i := 0; i < n; i++ {
		if err := sendPlain(testenv.Addr(p.Ports.SMTP), "a@example.org", p.User, fmt.Sprintf("conc-%d", i), "hello"); err != nil {
			t.Fatalf("send %d: %v\n%s", i, err, p.Log())
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, done := lmtp.counts(); done >= n {
			break
		}
		if time.Now().After(deadline) {
			_, done := lmtp.counts()
			t.Fatalf("%d of %d messages delivered over LMTP after 30 s\n%s", done, n, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if most, _ := lmtp.counts(); most != 2 {
		t.Errorf("at most %d LMTP transactions at once, want lmtp_destination_concurrency_limit = 2", most)
	}
}
