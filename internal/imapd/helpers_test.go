package imapd

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/mailstore"
	"postcote/internal/sasl"
)

// testChecker knows alice/secret and bob/hunter2; "down" fails
// temporarily.
type testChecker struct{}

func (testChecker) CheckPassword(ctx context.Context, req sasl.Request) (string, error) {
	switch {
	case req.User == "alice" && req.Password == "secret",
		req.User == "bob" && req.Password == "hunter2":
		return req.User, nil
	case req.User == "down":
		return "", sasl.ErrTempFail
	}
	return "", sasl.ErrAuthFailed
}

type testUsers struct{ root string }

func (u testUsers) LookupUser(ctx context.Context, service, user string) (mailstore.User, error) {
	return mailstore.User{Name: user, Home: u.root + "/" + user, MailLocation: "maildir:~/Maildir", UID: -1, GID: -1}, nil
}

// testServer is a running server on a loopback port.
type testServer struct {
	srv   *Server
	addr  string
	store mailstore.Store
	log   *maillog.Buffer
}

// startServer runs a Server with opts on 127.0.0.1:0 until the test ends.
func startServer(t testing.TB, opts Options, store mailstore.Store) *testServer {
	t.Helper()
	if store == nil {
		store = newMemStore()
	}
	log := &maillog.Buffer{}
	if opts.Logger == nil {
		opts.Logger = newTestLogger(log)
	}
	if opts.AuthFailureDelay == 0 {
		opts.AuthFailureDelay = time.Millisecond
	}
	ts := serveWith(t, New(opts, store, testChecker{}, testUsers{root: t.TempDir()}))
	ts.store, ts.log = store, log
	return ts
}

func newTestLogger(w *maillog.Buffer) *maillog.Logger { return maillog.New(w, "test", false) }

// serveWith serves srv on a loopback port and shuts it down when the
// test ends.
func serveWith(t testing.TB, srv *Server) *testServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return &testServer{srv: srv, addr: l.Addr().String()}
}

// rawConn is a line-level client for exact protocol checks.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (r *rawConn) send(s string) {
	r.t.Helper()
	if _, err := r.c.Write([]byte(s)); err != nil {
		r.t.Fatalf("write %q: %v", s, err)
	}
}

func (r *rawConn) line() string {
	r.t.Helper()
	l, err := r.br.ReadString('\n')
	if err != nil {
		r.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// until reads lines up to and including the one starting with prefix.
func (r *rawConn) until(prefix string) []string {
	r.t.Helper()
	var lines []string
	for {
		l := r.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, prefix) {
			return lines
		}
	}
}

// untilRaw is until returning the exact octets read.
func (r *rawConn) untilRaw(prefix string) string {
	r.t.Helper()
	var sb strings.Builder
	for {
		l, err := r.br.ReadString('\n')
		if err != nil {
			r.t.Fatalf("read: %v (got %q)", err, sb.String()+l)
		}
		sb.WriteString(l)
		if strings.HasPrefix(l, prefix) {
			return sb.String()
		}
	}
}

// login reads the greeting and logs alice in.
func (r *rawConn) login() {
	r.t.Helper()
	r.line()
	r.send("L LOGIN alice secret\r\n")
	if l := r.until("L "); !strings.HasPrefix(l[len(l)-1], "L OK") {
		r.t.Fatalf("login: %v", l)
	}
}

const sampleMessage = "From: Alice <alice@example.org>\r\n" +
	"To: Bob <bob@example.org>\r\n" +
	"Subject: Hello there\r\n" +
	"Date: Mon, 4 Mar 2024 10:00:00 +0100\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"\r\n" +
	"Hi Bob,\r\nthis is the body.\r\n"
