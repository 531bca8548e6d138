package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/queue"
	"postcote/internal/sasl"
	"postcote/internal/testenv"
)

// fakeQueue keeps messages in memory.
type fakeQueue struct {
	mu      sync.Mutex
	n       int
	msgs    []storedMessage
	fail    error         // Enqueue fails with this after reading
	started chan struct{} // receives when an Enqueue begins, if non-nil
	discard bool          // do not keep content (benchmarks)
}

type storedMessage struct {
	env     queue.Envelope
	content string
}

func (q *fakeQueue) NewID() queue.ID {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	return queue.ID(fmt.Sprintf("4TEST%04d", q.n))
}

func (q *fakeQueue) Enqueue(ctx context.Context, env *queue.Envelope, content io.Reader) error {
	if q.started != nil {
		q.started <- struct{}{}
	}
	var buf bytes.Buffer
	var w io.Writer = &buf
	if q.discard {
		w = io.Discard
	}
	if _, err := io.Copy(w, content); err != nil {
		return fmt.Errorf("fake queue: %w", err)
	}
	if q.fail != nil {
		return q.fail
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.discard {
		q.msgs = append(q.msgs, storedMessage{*env, buf.String()})
	}
	return nil
}

func (q *fakeQueue) messages() []storedMessage {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]storedMessage(nil), q.msgs...)
}

// fakeAddrs: example.com is mydestination, virtual.test a virtual mailbox
// domain, alias.test a virtual alias domain, relay.test a relay domain.
type fakeAddrs struct {
	known map[string]bool
	fail  bool
}

func newFakeAddrs() *fakeAddrs {
	return &fakeAddrs{known: map[string]bool{
		"user@example.com": true, "postmaster@mx.example.com": true, "postmaster@example.com": true,
		"user@virtual.test": true, "u%x@virtual.test": true, "group@alias.test": true,
		"anyone@relay.test": true,
	}}
}

func (a *fakeAddrs) Classify(_ context.Context, domain string) (Class, error) {
	if a.fail {
		return Other, errors.New("directory unavailable")
	}
	switch domain {
	case "example.com", "mx.example.com", "[127.0.0.1]":
		return Local, nil
	case "virtual.test":
		return VirtualMailbox, nil
	case "alias.test":
		return VirtualAlias, nil
	case "relay.test":
		return Relay, nil
	}
	return Other, nil
}

func (a *fakeAddrs) KnownRecipient(_ context.Context, address string) (bool, error) {
	return a.known[strings.ToLower(address)], nil
}

// fakeAuth accepts user/secret; "down" is a back end failure.
type fakeAuth struct{}

func (fakeAuth) CheckPassword(_ context.Context, req sasl.Request) (string, error) {
	switch {
	case req.User == "down":
		return "", fmt.Errorf("ldap: %w", sasl.ErrTempFail)
	case req.User == "user@example.com" && req.Password == "secret":
		return req.User, nil
	}
	return "", sasl.ErrAuthFailed
}

// testServer is a live server on 127.0.0.1 with its fakes.
type testServer struct {
	srv   *Server
	addr  string
	queue *fakeQueue
	addrs *fakeAddrs
	log   *maillog.Buffer
	tls   *tls.Config // client config trusting the server certificate
}

// baseOptions: 127.0.0.1 is not in mynetworks, so the test client is an
// untrusted stranger unless a test says otherwise.
func baseOptions() Options {
	return Options{
		Hostname:       "mx.example.com",
		ServiceName:    "smtp",
		MyNetworks:     []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		ErrorSleepTime: -1,
		Timeouts:       Timeouts{Command: 5 * time.Second},
	}
}

func startServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	return startServerAuth(t, opts, fakeAuth{})
}

// startServerAuth is startServer with another password checker.
func startServerAuth(t testing.TB, opts Options, auth sasl.PasswordChecker) *testServer {
	t.Helper()
	ts := &testServer{queue: &fakeQueue{}, addrs: newFakeAddrs(), log: &maillog.Buffer{}}
	if opts.Logger == nil {
		opts.Logger = maillog.New(ts.log, "mx", false)
	}
	srv, err := New(opts, ts.queue, ts.addrs, auth)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = l.Addr().String()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ts
}

// tlsPair makes a certificate for mx.example.com, localhost and
// 127.0.0.1 signed by a fresh test CA, returning the server config, a
// client config trusting the CA, and the CA certificate in PEM.
func tlsPair(t testing.TB) (*tls.Config, *tls.Config, []byte) {
	t.Helper()
	ca := testenv.NewTestCA(t, "smtpd test CA")
	return ca.ServerTLS(t, "mx.example.com", "localhost", "127.0.0.1"), ca.ClientTLS("mx.example.com"), ca.CertPEM
}

// client is a line-level SMTP client for tests.
type client struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dial(t testing.TB, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	cl := &client{t: t, conn: c, r: bufio.NewReader(c)}
	return cl
}

// greet dials and reads the banner.
func greet(t testing.TB, addr string) *client {
	c := dial(t, addr)
	c.expect("220 *")
	return c
}

func (c *client) send(lines ...string) {
	c.t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// reply reads one whole (possibly multi-line) reply.
func (c *client) reply() string {
	c.t.Helper()
	var lines []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("read reply (after %q): %v", lines, err)
		}
		l = strings.TrimRight(l, "\r\n")
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "\n")
		}
	}
}

// expect reads one reply and matches it against a pattern with "*"
// wildcards.
func (c *client) expect(pattern string) string {
	c.t.Helper()
	got := c.reply()
	if !match(pattern, got) {
		c.t.Fatalf("reply %q, want %q", got, pattern)
	}
	return got
}

// cmd sends one command and checks the reply.
func (c *client) cmd(line, pattern string) string {
	c.t.Helper()
	c.send(line)
	return c.expect(pattern)
}

// startTLS upgrades the connection after a 220 to STARTTLS.
func (c *client) startTLS(cfg *tls.Config) {
	c.t.Helper()
	c.cmd("STARTTLS", "220 2.0.0 Ready to start TLS")
	tc := tls.Client(c.conn, cfg)
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.r = bufio.NewReader(tc)
}

// closed says whether the server has closed the connection.
func (c *client) closed() bool {
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := c.r.ReadByte()
	return err != nil
}

// match compares s against a pattern where "*" matches any run of
// characters (including none).
func match(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}

// waitFor polls cond until it holds or a few seconds pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
