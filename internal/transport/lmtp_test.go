package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/lmtpd"
	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/testenv"
)

// lmtpUsers knows info@ and bob@ (Maildirs under dir); tempfail@ makes
// the userdb fail.
type lmtpUsers struct{ dir string }

func (u lmtpUsers) LookupUser(_ context.Context, _, name string) (mailstore.User, bool, error) {
	local, _, _ := strings.Cut(name, "@")
	switch local {
	case "tempfail":
		return mailstore.User{}, false, errors.New("userdb down")
	case "info", "bob":
		return mailstore.User{Name: name, Home: filepath.Join(u.dir, name), MailLocation: "maildir:~/Maildir", UID: -1, GID: -1}, true, nil
	}
	return mailstore.User{}, false, nil
}

// startLMTPD runs our LMTP server on ln; it stops when the test ends.
func startLMTPD(t *testing.T, ln net.Listener, tlsCfg *tls.Config) string {
	t.Helper()
	dir := t.TempDir()
	mb := &Mailbox{Users: lmtpUsers{dir}, Store: mailstore.NewStore(mailstore.Options{}), Delimiter: "+", Name: "lmtp"}
	srv := lmtpd.New(lmtpd.Options{Hostname: "mx.example.jp", TLS: tlsCfg, AddReceived: true}, mb)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return dir
}

// inboxOf returns the messages in the INBOX (new/) of user, whose home is
// under dir.
func inboxOf(t *testing.T, dir, user string) []string {
	t.Helper()
	return testenv.MaildirNew(t, filepath.Join(dir, user, "Maildir"))
}

const lmtpBody = "Subject: hi\r\nMessage-ID: <t1@example.org>\r\n\r\n.leading dot\r\nlast line without end"

func testEnvelope() *queue.Envelope {
	return &queue.Envelope{Sender: "s@example.org", Recipients: []queue.Recipient{
		{Address: "info@example.jp"}, {Address: "nobody@example.jp"}, {Address: "bob+x@example.jp"}, {Address: "tempfail@example.jp"},
	}}
}

// TestLMTPAgainstLMTPD delivers over unix and inet sockets, with and
// without STARTTLS, and checks each recipient's verdict in Postfix's
// words and the stored copies.
func TestLMTPAgainstLMTPD(t *testing.T) {
	tests := []struct {
		name      string
		unix      bool
		serverTLS bool
		level     string
		wantTLS   bool
	}{
		{name: "unix relative path", unix: true},
		{name: "inet clear", level: "none", serverTLS: true},
		{name: "inet may", level: "may", serverTLS: true, wantTLS: true},
		{name: "inet encrypt", level: "encrypt", serverTLS: true, wantTLS: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tlsCfg *tls.Config
			if tc.serverTLS {
				_, tlsCfg = testCA(t, "mx.example.jp")
			}
			qdir := t.TempDir()
			var ln net.Listener
			var err error
			nexthop := ""
			if tc.unix {
				os.Mkdir(filepath.Join(qdir, "private"), 0o700)
				ln, err = net.Listen("unix", filepath.Join(qdir, "private", "lmtp"))
				nexthop = "unix:private/lmtp"
			} else {
				ln, err = net.Listen("tcp", "127.0.0.1:0")
				nexthop = "inet:" + ln.Addr().String()
			}
			if err != nil {
				t.Fatal(err)
			}
			dir := startLMTPD(t, ln, tlsCfg)
			agent := &LMTP{Hostname: "client.example", QueueDir: qdir, TLSLevel: tc.level}
			env := testEnvelope()
			res := agent.Send(context.Background(), env, int64(len(lmtpBody)), strings.NewReader(lmtpBody), []int{0, 1, 2, 3}, nexthop)
			if len(res) != 4 {
				t.Fatalf("got %d results: %+v", len(res), res)
			}
			host := "127.0.0.1[127.0.0.1]"
			if tc.unix {
				host = "client.example[private/lmtp]"
			}
			want := []struct {
				status queue.Status
				dsn    string
				reply  string
			}{
				{queue.StatusSent, "2.0.0", "250 2.0.0 <info@example.jp> * Saved"},
				{queue.StatusBounced, "5.1.1", "host " + host + " said: 550 5.1.1 <nobody@example.jp> User doesn't exist: nobody@example.jp (in reply to RCPT TO command)"},
				{queue.StatusSent, "2.0.0", "250 2.0.0 <bob+x@example.jp> * Saved"},
				{queue.StatusDeferred, "4.3.0", "host " + host + " said: 451 4.3.0 <tempfail@example.jp> Temporary internal error (in reply to RCPT TO command)"},
			}
			for i, w := range want {
				r := res[i]
				if r.Rcpt != i || r.Status != w.status || r.DSN != w.dsn || !globMatch(w.reply, r.Reply) || r.Transport != "lmtp" {
					t.Errorf("recipient %d: got %+v, want %v %s %q", i, r, w.status, w.dsn, w.reply)
				}
			}
			for _, u := range []string{"info@example.jp", "bob@example.jp"} {
				msgs := inboxOf(t, dir, u)
				if len(msgs) != 1 {
					t.Fatalf("%s has %d messages, want 1", u, len(msgs))
				}
				m := msgs[0]
				if !strings.HasPrefix(m, "Return-Path: <s@example.org>\nDelivered-To: ") ||
					!strings.Contains(m, "\n.leading dot\nlast line without end\n") {
					t.Errorf("%s got %q", u, m)
				}
				with := "with LMTP id"
				if tc.wantTLS {
					with = "with LMTPS id"
				}
				if !strings.Contains(m, with) {
					t.Errorf("%s: Received header lacks %q: %q", u, with, m)
				}
			}
		})
	}
}

// globMatch matches with "*" as any run of characters.
func globMatch(pattern, s string) bool {
	before, after, ok := strings.Cut(pattern, "*")
	if !ok {
		return pattern == s
	}
	return strings.HasPrefix(s, before) && strings.HasSuffix(s[len(before):], after)
}

func TestLMTPConnectFailures(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(closedAddr)

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startLMTPD(t, plain, nil)

	tests := []struct {
		name, nexthop, level string
		status               queue.Status
		dsn, reply           string
	}{
		{"refused", "inet:[127.0.0.1]:" + port, "", queue.StatusDeferred, "4.4.1",
			"connect to 127.0.0.1[127.0.0.1]:" + port + ": Connection refused"},
		{"no socket", "unix:" + filepath.Join(t.TempDir(), "none"), "", queue.StatusDeferred, "4.4.1",
			"connect to *: No such file or directory"},
		{"encrypt without STARTTLS", "inet:" + plain.Addr().String(), "encrypt", queue.StatusDeferred, "4.7.4",
			"TLS is required, but was not offered by host 127.0.0.1[127.0.0.1]"},
		{"bad next hop", "inet:[127.0.0.1", "", queue.StatusDeferred, "4.3.5", "lmtp transport: bad next hop*"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agent := &LMTP{Hostname: "client.example", TLSLevel: tc.level}
			res := agent.Send(context.Background(), testEnvelope(), 10, strings.NewReader(lmtpBody), []int{0, 2}, tc.nexthop)
			if len(res) != 2 || res[1].Rcpt != 2 {
				t.Fatalf("results %+v", res)
			}
			for _, r := range res {
				if r.Status != tc.status || r.DSN != tc.dsn || !globMatch(tc.reply, r.Reply) {
					t.Errorf("got %+v, want %v %s %q", r, tc.status, tc.dsn, tc.reply)
				}
			}
		})
	}
}

// fakeServer answers an LMTP client from a script: for each line it
// reads it sends the next canned reply; "DATA" content is read to the dot.
func fakeServer(t *testing.T, greeting string, replies map[string]string, afterDot []string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		c.Write([]byte(greeting))
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\r\n")
			verb, _, _ := strings.Cut(line, " ")
			if strings.HasPrefix(line, "RCPT TO:") {
				verb = line
			}
			rep, ok := replies[verb]
			if !ok {
				rep = "500 5.5.1 Unknown command\r\n"
			}
			c.Write([]byte(rep))
			if verb == "QUIT" {
				return
			}
			if verb == "DATA" && strings.HasPrefix(rep, "354") {
				for {
					l, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if l == ".\r\n" {
						break
					}
				}
				c.Write([]byte(strings.Join(afterDot, "")))
			}
		}
	}()
	return ln.Addr().String()
}

// TestLMTPScripted covers servers without PIPELINING, MAIL refusals, a
// greeting refusal and mixed verdicts after the dot.
func TestLMTPScripted(t *testing.T) {
	lhlo := "250-mx\r\n250 ENHANCEDSTATUSCODES\r\n"
	tests := []struct {
		name     string
		greeting string
		replies  map[string]string
		afterDot []string
		want     []string // per recipient: status DSN reply-pattern
	}{
		{"mixed after dot without pipelining", "220 mx ready\r\n",
			map[string]string{"LHLO": lhlo, "MAIL": "250 2.1.0 OK\r\n", "RCPT TO:<info@example.jp>": "250 2.1.5 OK\r\n",
				"RCPT TO:<nobody@example.jp>": "250 2.1.5 OK\r\n", "DATA": "354 go\r\n", "QUIT": "221 bye\r\n"},
			[]string{"250 2.0.0 saved\r\n", "452 4.2.2 Mailbox full\r\n"},
			[]string{"sent 2.0.0 250 2.0.0 saved", "deferred 4.2.2 host 127.0.0.1[127.0.0.1] said: 452 4.2.2 Mailbox full (in reply to end of DATA command)"}},
		{"MAIL refused", "220 mx ready\r\n",
			map[string]string{"LHLO": lhlo, "MAIL": "553 5.1.8 Bad sender\r\n", "QUIT": "221 bye\r\n"}, nil,
			[]string{"bounced 5.1.8 host 127.0.0.1[127.0.0.1] said: 553 5.1.8 Bad sender (in reply to MAIL FROM command)",
				"bounced 5.1.8 *"}},
		{"MAIL deferred with pipelining", "220 mx ready\r\n",
			map[string]string{"LHLO": "250-mx\r\n250-PIPELINING\r\n250 SIZE 100\r\n", "MAIL": "452 4.3.1 Insufficient system storage\r\n",
				"RCPT TO:<info@example.jp>": "503 5.5.1 MAIL needed first\r\n", "RCPT TO:<nobody@example.jp>": "503 5.5.1 MAIL needed first\r\n",
				"DATA": "503 5.5.1 MAIL needed first\r\n", "QUIT": "221 bye\r\n"}, nil,
			[]string{"deferred 4.3.1 host 127.0.0.1[127.0.0.1] said: 452 4.3.1 Insufficient system storage (in reply to MAIL FROM command)",
				"deferred 4.3.1 *"}},
		{"greeting refused", "554 go away\r\n", map[string]string{"QUIT": "221 bye\r\n"}, nil,
			[]string{"bounced 5.0.0 host 127.0.0.1[127.0.0.1] refused to talk to me: 554 go away", "bounced 5.0.0 *"}},
		{"timeout after DATA", "220 mx ready\r\n",
			map[string]string{"LHLO": lhlo, "MAIL": "250 2.1.0 OK\r\n", "RCPT TO:<info@example.jp>": "250 2.1.5 OK\r\n",
				"RCPT TO:<nobody@example.jp>": "250 2.1.5 OK\r\n", "DATA": "354 go\r\n"},
			[]string{"250 2.0.0 saved\r\n"},
			[]string{"sent 2.0.0 *", "deferred 4.4.2 conversation with 127.0.0.1[127.0.0.1] timed out while receiving the end of DATA reply"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			addr := fakeServer(t, tc.greeting, tc.replies, tc.afterDot)
			agent := &LMTP{Hostname: "client.example", CommandTimeout: 2 * time.Second, DataTimeout: 2 * time.Second}
			if tc.name == "timeout after DATA" {
				// The fake server gives one of the two replies; the client times out.
				agent.DataTimeout = 500 * time.Millisecond
			}
			res := agent.Send(context.Background(), testEnvelope(), 10, strings.NewReader(lmtpBody), []int{0, 1}, "inet:"+addr)
			if len(res) != len(tc.want) {
				t.Fatalf("results %+v", res)
			}
			for i, w := range tc.want {
				f := strings.SplitN(w, " ", 3)
				r := res[i]
				if r.Status.String() != f[0] || r.DSN != f[1] || !globMatch(f[2], r.Reply) {
					t.Errorf("recipient %d: got %+v, want %q", i, r, w)
				}
			}
		})
	}
}

// TestLMTPDeliverFromQueue runs the agent as the queue runs it.
func TestLMTPDeliverFromQueue(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dir := startLMTPD(t, ln, nil)
	q, err := queue.Open(filepath.Join(t.TempDir(), "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	env := &queue.Envelope{Sender: "s@example.org", Recipients: []queue.Recipient{{Address: "info@example.jp"}}}
	if err := q.Enqueue(context.Background(), env, strings.NewReader(lmtpBody)); err != nil {
		t.Fatal(err)
	}
	agent := &LMTP{Hostname: "client.example"}
	results := make(chan []queue.Result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx, queue.AgentFunc(func(ctx context.Context, msg *queue.Message, rcpts []int) []queue.Result {
		r := agent.Deliver(ctx, msg, rcpts, "inet:"+ln.Addr().String())
		results <- r
		return r
	}))
	select {
	case res := <-results:
		if len(res) != 1 || res[0].Status != queue.StatusSent || res[0].Relay != "127.0.0.1[127.0.0.1]:"+strings.Split(ln.Addr().String(), ":")[1] {
			t.Errorf("got %+v", res)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
	}
	if n := len(inboxOf(t, dir, "info@example.jp")); n != 1 {
		t.Errorf("INBOX has %d messages, want 1", n)
	}
}

// TestLMTPVerify covers lmtp_tls_security_level = verify/secure: a
// certificate that chains to the trusted roots and names the host is
// accepted, one that does not defers with 4.7.5, and a level this client
// cannot honour defers instead of falling back to clear text.
func TestLMTPVerify(t *testing.T) {
	ca := testenv.NewTestCA(t, "postcote LMTP test CA")
	serverTLS := ca.ServerTLS(t, "mx.example.jp")
	roots := ca.Pool()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startLMTPD(t, ln, serverTLS)
	nexthop := "inet:" + ln.Addr().String()
	tests := []struct {
		name   string
		level  string
		cfg    *tls.Config
		status queue.Status
		dsn    string
		reply  string
	}{
		{"verify trusted", "verify", &tls.Config{RootCAs: roots, ServerName: "mx.example.jp"}, queue.StatusSent, "2.0.0", "250 2.0.0 <info@example.jp> * Saved"},
		{"secure trusted", "secure", &tls.Config{RootCAs: roots, ServerName: "mx.example.jp"}, queue.StatusSent, "2.0.0", "250 2.0.0 <info@example.jp> * Saved"},
		{"verify untrusted", "verify", nil, queue.StatusDeferred, "4.7.5", "Server certificate not verified: 127.0.0.1[127.0.0.1]: *"},
		{"verify wrong name", "verify", &tls.Config{RootCAs: roots, ServerName: "other.example"}, queue.StatusDeferred, "4.7.5", "Server certificate not verified: *"},
		{"dane unsupported", "dane", nil, queue.StatusDeferred, "4.7.5", "lmtp_tls_security_level = dane is not supported by this postcote"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			agent := &LMTP{Hostname: "client.example", TLSLevel: tc.level, TLS: tc.cfg}
			res := agent.Send(context.Background(), testEnvelope(), 10, strings.NewReader(lmtpBody), []int{0}, nexthop)
			if len(res) != 1 || res[0].Status != tc.status || res[0].DSN != tc.dsn || !globMatch(tc.reply, res[0].Reply) {
				t.Errorf("got %+v, want %v %s %q", res, tc.status, tc.dsn, tc.reply)
			}
		})
	}
}
