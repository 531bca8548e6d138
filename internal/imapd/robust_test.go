package imapd

import (
	"context"
	"fmt"
	"io"
	"net"
	"postcote/internal/maillog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// TestHugeLineBounded sends a 50 MiB line without a line end: the server
// must answer "* BAD" and close once MaxLineLength is passed, without
// buffering the line.
func TestHugeLineBounded(t *testing.T) {
	ts := startServer(t, Options{AllowPlaintextAuth: true}, nil)
	rc := dialRaw(t, ts.addr)
	rc.line()
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	chunk := []byte("a1 LOGIN " + strings.Repeat("x", 64*1024))
	sent := 0
	errc := make(chan error, 1)
	go func() {
		for sent < 50<<20 {
			if _, err := rc.c.Write(chunk); err != nil {
				errc <- err
				return
			}
			sent += len(chunk)
		}
		errc <- nil
	}()
	l := rc.line()
	if !strings.HasPrefix(l, "* BAD [TOOBIG]") {
		t.Fatalf("got %q", l)
	}
	if l := rc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q", l)
	}
	rc.c.Close()
	<-errc
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("heap grew by %d bytes", grown)
	}
}

// TestHugeLiteralRefused: a literal above the line limit is refused
// before it is sent (synchronising) and ends the session
// (non-synchronising) instead of being buffered.
func TestHugeLiteralRefused(t *testing.T) {
	ts := startServer(t, Options{AllowPlaintextAuth: true}, nil)
	rc := dialRaw(t, ts.addr)
	rc.line()
	rc.send("a1 LOGIN {1000000000}\r\n")
	if l := rc.line(); l != "a1 NO [TOOBIG] Literal too large." {
		t.Fatalf("got %q", l)
	}
	rc.send("a2 LOGIN {1000000000+}\r\n")
	if l := rc.line(); l != "a2 BAD [TOOBIG] Literal too large." {
		t.Fatalf("got %q", l)
	}
	if l := rc.line(); !strings.HasPrefix(l, "* BYE") {
		t.Fatalf("got %q", l)
	}
}

// TestDisconnectMidLiteral: a client that goes away in the middle of an
// APPEND literal leaves no message behind and no stuck session.
func TestDisconnectMidLiteral(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ts, _ := startStoreServer(t, kind, Options{AllowPlaintextAuth: true})
			rc := dialRaw(t, ts.addr)
			rc.login()
			rc.send("a1 APPEND INBOX {100}\r\n")
			if l := rc.line(); l != "+ OK" {
				t.Fatalf("got %q", l)
			}
			rc.send("From: x@example.org\r\n\r\nonly part of it")
			rc.c.Close()
			waitFor(t, func() bool { return sessionCount(ts.srv) == 0 })

			rc = dialRaw(t, ts.addr)
			rc.login()
			rc.send("a2 STATUS INBOX (MESSAGES)\r\n")
			if l := rc.line(); l != "* STATUS INBOX (MESSAGES 0)" {
				t.Fatalf("got %q", l)
			}
		})
	}
}

func sessionCount(s *Server) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConcurrentSessions runs 50 sessions on one mailbox at once (run
// with -race): each appends, stores flags, fetches and expunges its own
// message while the others do the same.
func TestConcurrentSessions(t *testing.T) {
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ts, deliver := startStoreServer(t, kind, Options{AllowPlaintextAuth: true, MaxUserIPConnections: 100})
			deliver("alice", "INBOX", sampleMessage)
			const n = 50
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					if err := concurrentClient(ts.addr, i); err != nil {
						errs <- fmt.Errorf("client %d: %w", i, err)
					}
				}(i)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			rc := dialRaw(t, ts.addr)
			rc.login()
			rc.send("s STATUS INBOX (MESSAGES)\r\n")
			if l := rc.line(); l != "* STATUS INBOX (MESSAGES 1)" {
				t.Errorf("after the sessions: %q", l)
			}
		})
	}
}

func concurrentClient(addr string, i int) error {
	c, err := imapclient.DialInsecure(addr, nil)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login("alice", "secret").Wait(); err != nil {
		return err
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		return err
	}
	msg := fmt.Sprintf("Subject: client %d\r\n\r\nbody %d\r\n", i, i)
	ap := c.Append("INBOX", int64(len(msg)), nil)
	ap.Write([]byte(msg))
	ap.Close()
	ad, err := ap.Wait()
	if err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if err := c.Noop().Wait(); err != nil {
		return err
	}
	uids := imap.UIDSetNum(ad.UID)
	msgs, err := c.Fetch(uids, &imap.FetchOptions{Envelope: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{}}}).Collect()
	if err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	if len(msgs) != 1 || msgs[0].Envelope.Subject != fmt.Sprintf("client %d", i) {
		return fmt.Errorf("fetch got %+v", msgs)
	}
	if err := c.Store(uids, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if err := c.UIDExpunge(uids).Close(); err != nil {
		return fmt.Errorf("expunge: %w", err)
	}
	if _, err := c.Search(&imap.SearchCriteria{Body: []string{"body"}}, nil).Wait(); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	return c.Logout().Wait()
}

// TestShutdownSaysBye: Shutdown sends "* BYE Server shutting down." to
// every session, idle or not, and returns once they ended.
func TestShutdownSaysBye(t *testing.T) {
	store := newMemStore()
	srv := New(Options{AllowPlaintextAuth: true, Logger: newTestLogger(&maillog.Buffer{})}, store, testChecker{}, testUsers{root: t.TempDir()})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	a := dialRaw(t, l.Addr().String())
	a.line()
	b := dialRaw(t, l.Addr().String())
	b.login()
	b.send("i SELECT INBOX\r\n")
	b.until("i OK")
	b.send("j IDLE\r\n")
	b.line()
	waitFor(t, func() bool { return sessionCount(srv) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	for _, rc := range []*rawConn{a, b} {
		if l := rc.line(); l != "* BYE Server shutting down." {
			t.Errorf("got %q", l)
		}
		if _, err := rc.br.ReadByte(); err != io.EOF {
			t.Errorf("connection still open: %v", err)
		}
	}
	if err := <-done; err != ErrServerClosed {
		t.Errorf("Serve returned %v", err)
	}
}

// TestLimits: mail_max_userip_connections, the connection limit and the
// login timeout.
func TestLimits(t *testing.T) {
	t.Run("userip", func(t *testing.T) {
		ts := startServer(t, Options{AllowPlaintextAuth: true, MaxUserIPConnections: 1}, nil)
		a := dialRaw(t, ts.addr)
		a.login()
		b := dialRaw(t, ts.addr)
		b.line()
		b.send("x LOGIN alice secret\r\n")
		if l := b.line(); l != "x NO [LIMIT] Maximum number of connections from user+IP exceeded (mail_max_userip_connections=1)" {
			t.Errorf("got %q", l)
		}
		a.send("y LOGOUT\r\n")
		a.until("y OK")
		waitFor(t, func() bool { return sessionCount(ts.srv) == 1 })
		b.send("z LOGIN alice secret\r\n")
		if l := b.until("z "); !strings.HasPrefix(l[len(l)-1], "z OK") {
			t.Errorf("got %q", l)
		}
	})
	t.Run("connections", func(t *testing.T) {
		ts := startServer(t, Options{MaxConnections: 1}, nil)
		a := dialRaw(t, ts.addr)
		a.line()
		b := dialRaw(t, ts.addr)
		if l := b.line(); l != "* BYE Too many connections, try again later." {
			t.Errorf("got %q", l)
		}
	})
	t.Run("login-timeout", func(t *testing.T) {
		ts := startServer(t, Options{LoginTimeout: 200 * time.Millisecond}, nil)
		a := dialRaw(t, ts.addr)
		a.line()
		if l := a.line(); l != "* BYE Disconnected for inactivity." {
			t.Errorf("got %q", l)
		}
		waitFor(t, func() bool { return strings.Contains(ts.log.String(), "Disconnected (no auth attempts") })
	})
}

// TestLogLines checks the Dovecot-shaped login and logout lines.
func TestLogLines(t *testing.T) {
	ts := startServer(t, Options{AllowPlaintextAuth: true}, nil)
	a := dialRaw(t, ts.addr)
	a.login()
	a.send("q LOGOUT\r\n")
	a.until("q OK")
	b := dialRaw(t, ts.addr)
	b.line()
	b.send("f LOGIN alice nope\r\n")
	b.line()
	b.c.Close()
	waitFor(t, func() bool { return strings.Contains(ts.log.String(), "auth failed") })
	log := ts.log.String()
	for _, want := range []string{
		"postcote/imap-login[", "]: Login: user=<alice>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=",
		"postcote/imap(alice)<", "]: Disconnected: Logged out in=",
		"imap-login[", "]: Disconnected (auth failed, 1 attempts in 0 secs): user=<alice>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, session=<",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}
