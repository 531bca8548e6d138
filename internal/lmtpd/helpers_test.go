package lmtpd

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/mailstore"
	"postcote/internal/testenv"
	"postcote/internal/transport"
)

// users is a userdb: known users get a Maildir under dir; "tempfail@…"
// makes the back end fail.
type users struct{ dir string }

func (u users) LookupUser(_ context.Context, _, name string) (mailstore.User, bool, error) {
	local, _, _ := strings.Cut(name, "@")
	switch local {
	case "tempfail":
		return mailstore.User{}, false, errors.New("ldap server down")
	case "info", "sales", "bob":
		home := filepath.Join(u.dir, name)
		return mailstore.User{Name: name, Home: home, MailLocation: "maildir:~/Maildir", UID: -1, GID: -1}, true, nil
	}
	return mailstore.User{}, false, nil
}

type testServer struct {
	srv  *Server
	addr string
	dir  string
	log  *maillog.Buffer
}

// startServer runs a server on 127.0.0.1:0 delivering into t.TempDir()
// through transport.Mailbox; it is shut down when the test ends.
func startServer(t testing.TB, opts Options) *testServer {
	t.Helper()
	dir := t.TempDir()
	log := &maillog.Buffer{}
	if opts.Logger == nil {
		opts.Logger = maillog.New(log, "test", false)
	}
	if opts.Hostname == "" {
		opts.Hostname = "mx.example.jp"
	}
	mb := &transport.Mailbox{Users: users{dir}, Store: mailstore.NewStore(mailstore.Options{}), Delimiter: "+", Name: "lmtp"}
	srv := New(opts, mb)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return &testServer{srv: srv, addr: ln.Addr().String(), dir: dir, log: log}
}

// inbox returns the messages in a user's INBOX (new/).
func (ts *testServer) inbox(t testing.TB, user string) []string {
	t.Helper()
	return testenv.MaildirNew(t, filepath.Join(ts.dir, user, "Maildir"))
}

type client struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{t: t, c: c, r: bufio.NewReader(c)}
}

func (c *client) send(s string) {
	c.t.Helper()
	if _, err := c.c.Write([]byte(s)); err != nil {
		c.t.Fatal(err)
	}
}

// line reads one reply line without CRLF; "<closed>" at EOF.
func (c *client) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		if l == "" {
			return "<closed>"
		}
		c.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// match reports whether s matches pattern, where "*" matches any run.
func match(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for i, p := range parts[1:] {
		if i == len(parts)-2 {
			return strings.HasSuffix(s, p)
		}
		j := strings.Index(s, p)
		if j < 0 {
			return false
		}
		s = s[j+len(p):]
	}
	return true
}

func newReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
