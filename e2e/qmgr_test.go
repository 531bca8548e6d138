package e2e

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
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

// deferredID waits until postqueue -p lists one deferred message (with
// its reason) other than not, and returns its queue ID.
func deferredID(t *testing.T, p *testenv.Postcote, not string) string {
	t.Helper()
	line := regexp.MustCompile(`(?m)^([0-9A-Za-z]+) +\d+ \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d +s@elsewhere\.example$`)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, errOut, code := tool(t, p, "", "postqueue", "-p")
		if code != 0 {
			t.Fatalf("postqueue -p: %d %s", code, errOut)
		}
		if m := line.FindStringSubmatch(out); m != nil && m[1] != not && strings.Contains(out, "(") {
			return m[1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deferred message (other than %q):\n%s\n%s", not, out, p.Log())
		}
	}
}

// TestPostqueueIPostsuperR: postsuper -r requeues a message under a new
// ID (through the server, and on the spool when it is down), postqueue
// -i delivers a deferred message at once; messages and exit codes are
// Postfix's.
func TestPostqueueIPostsuperR(t *testing.T) {
	p := testenv.NewDev(t)
	setMain(t, p, "defer_transports", "virtual")
	p.Start()
	if _, errOut, code := tool(t, p, "Subject: requeue\n\nbody\n", "sendmail", "-f", "s@elsewhere.example", p.User); code != 0 {
		t.Fatalf("sendmail: %d %s", code, errOut)
	}
	id1 := deferredID(t, p, "")

	_, errOut, code := tool(t, p, "", "postsuper", "-r", id1)
	if code != 0 || errOut != fmt.Sprintf("postsuper: %s: requeued\npostsuper: Requeued: 1 message\n", id1) {
		t.Errorf("postsuper -r: %d %q", code, errOut)
	}
	id2 := deferredID(t, p, id1) // queued again, tried again, deferred again

	_, errOut, code = tool(t, p, "", "postqueue", "-i", "no/such")
	if code != 64 || errOut != "postqueue: fatal: Cannot flush queue ID - invalid name: \"no/such\"\n" {
		t.Errorf("postqueue -i with a bad ID: %d %q", code, errOut)
	}
	if _, errOut, code = tool(t, p, "", "postqueue", "-i", "4jZFXc0013z15"); code != 0 || errOut != "" {
		t.Errorf("postqueue -i of an ID not queued: %d %q", code, errOut)
	}

	p.Stop()
	if _, errOut, code = tool(t, p, "", "postqueue", "-i", id2); code != 69 || errOut != "postqueue: fatal: Cannot flush mail queue - mail system is down\n" {
		t.Errorf("postqueue -i with the server down: %d %q", code, errOut)
	}
	_, errOut, code = tool(t, p, "", "postsuper", "-r", "ALL")
	if code != 0 || errOut != fmt.Sprintf("postsuper: %s: requeued\npostsuper: Requeued: 1 message\n", id2) {
		t.Errorf("postsuper -r ALL with the server down: %d %q", code, errOut)
	}
	p.Start()
	id3 := deferredID(t, p, id2)

	// Deliverable now, but deferred until its retry time: -i sends it.
	p.Stop()
	setMain(t, p, "defer_transports", "")
	p.Start()
	if _, errOut, code = tool(t, p, "", "postqueue", "-i", id3); code != 0 || errOut != "" {
		t.Errorf("postqueue -i: %d %q", code, errOut)
	}
	if got := waitForFiles(t, maildir(p), 1); len(got) != 1 || got[0] != "requeue" {
		t.Errorf("delivered: %q", got)
	}
}
