package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		line              string
		tag, status, text string
		bad               bool
	}{
		{line: "* OK [CAPABILITY IMAP4rev1] hi", tag: "*", status: "OK", text: "[CAPABILITY IMAP4rev1] hi"},
		{line: "a ok Logged in", tag: "a", status: "OK", text: "Logged in"},
		{line: "a NO [AUTHENTICATIONFAILED] no", tag: "a", status: "NO", text: "[AUTHENTICATIONFAILED] no"},
		{line: "b BAD", tag: "b", status: "BAD"},
		{line: "* BYE bye", tag: "*", status: "BYE", text: "bye"},
		{line: "* 3 EXISTS", tag: "*", text: "3 EXISTS"},
		{line: "+ eA==", tag: "+", text: "eA=="},
		{line: "+", tag: "+"},
		{line: "", bad: true},
		{line: "a", bad: true},
		{line: "a FOO bar", bad: true},
		{line: "a(b OK x", bad: true},
		{line: " OK", bad: true},
	} {
		r, err := parseResponse(tc.line)
		if tc.bad {
			if err == nil {
				t.Errorf("parseResponse(%q) = %+v, want an error", tc.line, r)
			}
			continue
		}
		if err != nil || r.tag != tc.tag || r.status != tc.status || r.text != tc.text {
			t.Errorf("parseResponse(%q) = %+v, %v; want %q %q %q", tc.line, r, err, tc.tag, tc.status, tc.text)
		}
	}
}

func TestHasCapabilityAndQuote(t *testing.T) {
	for _, tc := range []struct {
		text string
		want bool
	}{
		{"[CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready", true},
		{"[capability imap4rev1 sasl-ir] ready", true},
		{"[CAPABILITY IMAP4rev1 AUTH=PLAIN] ready", false},
		{"ready SASL-IR", false},
		{"[CAPABILITY SASL-IR", false},
		{"[ALERT SASL-IR] x", false},
	} {
		if got := hasCapability(tc.text, "SASL-IR"); got != tc.want {
			t.Errorf("hasCapability(%q) = %v", tc.text, got)
		}
	}
	if q, err := quote(`a"b\c`); err != nil || q != `"a\"b\\c"` {
		t.Errorf("quote = %q, %v", q, err)
	}
	if _, err := quote("a\r\nb"); err == nil {
		t.Error("quote accepted CRLF")
	}
}

// fakeIMAP is a real-socket IMAP server that knows a few users. It
// answers LOGIN and AUTHENTICATE PLAIN (with or without SASL-IR) and
// counts connections.
type fakeIMAP struct {
	ln        net.Listener
	users     map[string]string
	saslIR    bool
	greeting  string // overrides the greeting when set
	mu        sync.Mutex
	conns     int
	logins    map[string]int
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// startFakeIMAP serves users; greeting, when given, replaces the
// greeting line (set before the first connection is served).
func startFakeIMAP(t *testing.T, users map[string]string, saslIR bool, greeting ...string) *fakeIMAP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeIMAP{ln: ln, users: users, saslIR: saslIR, logins: map[string]int{}}
	if len(greeting) > 0 {
		s.greeting = greeting[0]
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *fakeIMAP) close() {
	s.closeOnce.Do(func() { s.ln.Close() })
	s.wg.Wait()
}

func (s *fakeIMAP) addr() string { return s.ln.Addr().String() }

func (s *fakeIMAP) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	w := func(line string) { c.Write([]byte(line + "\r\n")) }
	switch {
	case s.greeting != "":
		w(s.greeting)
	case s.saslIR:
		w("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] fake ready")
	default:
		w("* OK fake ready")
	}
	check := func(tag, user, pass string) {
		if want, ok := s.users[user]; ok && want == pass {
			s.mu.Lock()
			s.logins[user]++
			s.mu.Unlock()
			w(tag + " OK Logged in")
		} else {
			w(tag + " NO [AUTHENTICATIONFAILED] Authentication failed.")
		}
	}
	plain := func(tag, ir string) {
		b, err := base64.StdEncoding.DecodeString(ir)
		parts := strings.Split(string(b), "\x00")
		if err != nil || len(parts) != 3 {
			w(tag + " BAD bad PLAIN")
			return
		}
		check(tag, parts[1], parts[2])
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		f := strings.Fields(strings.TrimRight(line, "\r\n"))
		if len(f) < 2 {
			w("* BAD no")
			continue
		}
		tag := f[0]
		switch strings.ToUpper(f[1]) {
		case "LOGIN":
			if len(f) != 4 {
				w(tag + " BAD args")
				continue
			}
			check(tag, strings.Trim(f[2], `"`), strings.Trim(f[3], `"`))
		case "AUTHENTICATE":
			if len(f) == 4 && s.saslIR {
				plain(tag, f[3])
				continue
			}
			w("+ ")
			ir, err := r.ReadString('\n')
			if err != nil {
				return
			}
			plain(tag, strings.TrimRight(ir, "\r\n"))
		case "LOGOUT":
			w("* BYE bye")
			w(tag + " OK Logout completed.")
			return
		default:
			w(tag + " BAD unknown")
		}
	}
}

func TestLogin(t *testing.T) {
	users := map[string]string{"u1@bench.test": "pw1", `q"uote@bench.test`: "p w"}
	ctx := context.Background()
	for _, ir := range []bool{false, true} {
		s := startFakeIMAP(t, users, ir)
		for _, mech := range []Mechanism{MechLogin, MechPlain} {
			if _, err := login(ctx, s.addr(), "u1@bench.test", "pw1", mech, 5*time.Second); err != nil {
				t.Errorf("saslIR=%v %s: %v", ir, mech, err)
			}
			if _, err := login(ctx, s.addr(), "u1@bench.test", "wrong", mech, 5*time.Second); !errors.Is(err, errLoginRefused) {
				t.Errorf("saslIR=%v %s, wrong password: %v, want refused", ir, mech, err)
			}
		}
		if _, err := login(ctx, s.addr(), `q"uote@bench.test`, "p w", MechPlain, 5*time.Second); err != nil {
			t.Errorf("quoted user: %v", err)
		}
		if _, err := login(ctx, s.addr(), "u1@bench.test", "pw1", "cram", 5*time.Second); err == nil {
			t.Error("unknown mechanism accepted")
		}
	}
	// A server that greets with BYE or PREAUTH is not logged in to.
	for _, g := range []string{"* BYE too busy", "* PREAUTH hello", "garbage"} {
		s := startFakeIMAP(t, users, false, g)
		if _, err := login(ctx, s.addr(), "u1@bench.test", "pw1", MechLogin, 5*time.Second); err == nil {
			t.Errorf("greeting %q: logged in", g)
		}
	}
}

// A server that never answers: the login ends at the timeout.
func TestLoginTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			buf := make([]byte, 10)
			c.Read(buf) // holds the connection open without a greeting
		}
	}()
	start := time.Now()
	if _, err := login(context.Background(), ln.Addr().String(), "u", "p", MechLogin, 200*time.Millisecond); err == nil {
		t.Fatal("no error from a silent server")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestLoadRun(t *testing.T) {
	users := map[string]string{}
	var accts []account
	for _, u := range []string{"a@x", "b@x", "c@x"} {
		users[u] = "pw-" + u
		accts = append(accts, account{u, "pw-" + u})
	}
	s := startFakeIMAP(t, users, true)
	ctx := context.Background()

	res, err := Load{Addr: s.addr(), Users: accts, Mech: MechPlain, Clients: 4, Logins: 30, Timeout: 5 * time.Second}.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.OK != 30 || res.Failed != 0 || res.Rate() <= 0 || res.P50 <= 0 || res.P99 < res.P50 {
		t.Fatalf("result %+v", res)
	}
	s.mu.Lock()
	if s.conns != 30 || s.logins["a@x"] != 10 || s.logins["b@x"] != 10 || s.logins["c@x"] != 10 {
		t.Errorf("server saw %d connections, logins %v; want 30, 10 each (a new connection per login, users in turn)", s.conns, s.logins)
	}
	s.mu.Unlock()

	// A duration ends the run by itself.
	start := time.Now()
	res, err = Load{Addr: s.addr(), Users: accts, Mech: MechLogin, Clients: 2, Duration: 150 * time.Millisecond, Timeout: 5 * time.Second}.Run(ctx)
	if err != nil || res.OK == 0 || res.Failed != 0 {
		t.Fatalf("duration run: %+v, %v", res, err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("a 150 ms run took %v", d)
	}

	// Wrong passwords are counted and shown, not hidden.
	bad := []account{{"a@x", "nope"}, {"b@x", "pw-b@x"}}
	res, err = Load{Addr: s.addr(), Users: bad, Mech: MechLogin, Clients: 1, Logins: 4, Timeout: 5 * time.Second}.Run(ctx)
	if err != nil || res.OK != 2 || res.Failed != 2 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "a@x") {
		t.Errorf("failing run: %+v, %v", res, err)
	}
	if len(res.failedUsers) != 2 || res.failedUsers[0].user != "a@x" || res.failedUsers[1].user != "a@x" {
		t.Errorf("failed users %v, want a@x twice (the warm-up retries them)", res.failedUsers)
	}
}

func TestLoadRefuses(t *testing.T) {
	ok := Load{Addr: "127.0.0.1:1", Users: []account{{"a", "b"}}, Mech: MechLogin, Clients: 1, Logins: 1, Timeout: time.Second}
	for name, mod := range map[string]func(*Load){
		"off-machine": func(l *Load) { l.Addr = "192.0.2.1:143" },
		"hostname":    func(l *Load) { l.Addr = "localhost:143" },
		"no users":    func(l *Load) { l.Users = nil },
		"no clients":  func(l *Load) { l.Clients = 0 },
		"unbounded":   func(l *Load) { l.Logins, l.Duration = 0, 0 },
		"no timeout":  func(l *Load) { l.Timeout = 0 },
	} {
		l := ok
		mod(&l)
		if _, err := l.Run(context.Background()); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	for _, tc := range []struct {
		p    int
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {1, time.Millisecond}} {
		if got := percentile(ds, tc.p); got != tc.want {
			t.Errorf("p%d = %v, want %v", tc.p, got, tc.want)
		}
	}
	if percentile(nil, 50) != 0 || percentile([]time.Duration{7}, 99) != 7 {
		t.Error("edge cases")
	}
}
