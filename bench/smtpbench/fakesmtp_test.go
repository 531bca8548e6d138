package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSMTP is a tiny SMTP server for the load generator's tests: enough of
// RFC 5321 for EHLO/MAIL/RCPT/DATA/RSET/QUIT, with knobs to misbehave.
type fakeSMTP struct {
	t       *testing.T
	ln      net.Listener
	maildir string // when set, each accepted message is written to new/

	// rejectRcpt, when set, decides per RCPT (numbered from 0 across all
	// sessions) whether to refuse it with 550.
	rejectRcpt func(n int) bool
	// greeting replaces the 220 banner (to send garbage, for example).
	greeting string
	// silent makes the server accept connections and never answer.
	silent bool

	rcpts    atomic.Int64
	sessions atomic.Int64
	active   atomic.Int64
	peak     atomic.Int64

	mu       sync.Mutex
	messages [][]byte // un-dot-stuffed message data, as received
	wg       sync.WaitGroup
	conns    map[net.Conn]bool
}

func newFakeSMTP(t *testing.T, setup func(*fakeSMTP)) *fakeSMTP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeSMTP{t: t, ln: ln, conns: map[net.Conn]bool{}}
	if setup != nil {
		setup(s)
	}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(s.close)
	return s
}

func (s *fakeSMTP) addr() string { return s.ln.Addr().String() }

func (s *fakeSMTP) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *fakeSMTP) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.session(c)
		}()
	}
}

func (s *fakeSMTP) session(c net.Conn) {
	s.sessions.Add(1)
	n := s.active.Add(1)
	left := false
	leave := func() { // counted out before 221, when the client may move on
		if !left {
			left = true
			s.active.Add(-1)
		}
	}
	defer leave()
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	if s.silent {
		c.Read(make([]byte, 1)) // until the client gives up
		return
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	say := func(line string) { fmt.Fprintf(c, "%s\r\n", line) }
	if s.greeting != "" {
		say(s.greeting)
	} else {
		say("220 fake ESMTP")
	}
	rcptOK := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		verb, _, _ := strings.Cut(strings.ToUpper(strings.TrimRight(line, "\r\n")), " ")
		switch verb {
		case "EHLO":
			say("250-fake")
			say("250-PIPELINING")
			say("250 8BITMIME")
		case "MAIL":
			rcptOK = false
			say("250 2.1.0 Ok")
		case "RCPT":
			n := int(s.rcpts.Add(1) - 1)
			if s.rejectRcpt != nil && s.rejectRcpt(n) {
				say("550 5.1.1 <x>: Recipient address rejected")
				continue
			}
			rcptOK = true
			say("250 2.1.5 Ok")
		case "DATA":
			if !rcptOK {
				say("554 5.5.1 Error: no valid recipients")
				continue
			}
			say("354 End data with <CR><LF>.<CR><LF>")
			msg, err := readData(br)
			if err != nil {
				return
			}
			if err := s.store(msg); err != nil {
				say("451 4.3.0 " + err.Error())
				continue
			}
			say("250 2.0.0 Ok: queued")
		case "RSET":
			rcptOK = false
			say("250 2.0.0 Ok")
		case "QUIT":
			leave()
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Error: command not recognized")
		}
	}
}

// readData reads mail data up to the lone dot and undoes dot-stuffing
// (RFC 5321 4.5.2).
func readData(br *bufio.Reader) ([]byte, error) {
	var msg bytes.Buffer
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, err
		}
		if line == ".\r\n" {
			return msg.Bytes(), nil
		}
		msg.WriteString(strings.TrimPrefix(line, "."))
	}
}

func (s *fakeSMTP) store(msg []byte) error {
	s.mu.Lock()
	s.messages = append(s.messages, msg)
	n := len(s.messages)
	s.mu.Unlock()
	if s.maildir == "" {
		return nil
	}
	// Maildir delivery: write in tmp/, rename into new/.
	name := fmt.Sprintf("%d.M%dP%d.fake", time.Now().Unix(), n, os.Getpid())
	tmp := filepath.Join(s.maildir, "tmp", name)
	if err := os.WriteFile(tmp, msg, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(s.maildir, "new", name))
}

func (s *fakeSMTP) received() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]byte(nil), s.messages...)
}
