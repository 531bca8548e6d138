package rewrite_test

import (
	"bufio"
	"context"
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
	"postcote/internal/rewrite"
	"postcote/internal/smtpd"
)

// This file runs smtpd in front of Cleanup, as the server wires them,
// and checks what a client sees: the relay restrictions refuse sender
// routing that cleanup would honour, and cleanup's failures reach the
// client as temporary or permanent errors with nothing queued.

type mapTable map[string][]string

func (m mapTable) Lookup(_ context.Context, key string) ([]string, error) { return m[key], nil }

type downTable struct{}

func (downTable) Lookup(context.Context, string) ([]string, error) {
	return nil, fmt.Errorf("connection refused")
}

// spool keeps what reaches the queue.
type spool struct {
	mu   sync.Mutex
	n    int
	envs []*queue.Envelope
}

func (s *spool) NewID() queue.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	return queue.ID(fmt.Sprintf("4cYvZb0yq2z%d", s.n))
}

func (s *spool) Enqueue(_ context.Context, env *queue.Envelope, r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.envs = append(s.envs, env)
	return nil
}

func (s *spool) queued() []*queue.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*queue.Envelope(nil), s.envs...)
}

// startCleanupServer runs smtpd with Cleanup on 127.0.0.1:0; trusted puts
// the test client in mynetworks.
func startCleanupServer(t *testing.T, trusted bool, virtual rewrite.Table) (string, *spool, *maillog.Buffer) {
	t.Helper()
	domains := &rewrite.Domains{
		Local:        rewrite.NewDomainList([]string{"example.com", "mx.example.com"}, false),
		VirtualAlias: rewrite.NewDomainList([]string{"virt.example"}, false),
	}
	rules := &rewrite.Addresses{Myorigin: "example.com", Domains: domains, VirtualAlias: virtual,
		SwapBangpath: true, PercentHack: true, ResolveDequoted: true}
	sp := &spool{}
	log := &maillog.Buffer{}
	logger := maillog.New(log, "mx", false)
	nets := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	if trusted {
		nets = append(nets, netip.MustParsePrefix("127.0.0.0/8"))
	}
	opts := smtpd.Options{Hostname: "mx.example.com", ServiceName: "smtp", MyNetworks: nets,
		ErrorSleepTime: -1, Timeouts: smtpd.Timeouts{Command: 5 * time.Second}, Logger: logger,
		RelayRestrictions: []string{"permit_mynetworks", "reject_unauth_destination"}}
	cleanup := &rewrite.Cleanup{Next: sp, Rules: rules, Log: logger}
	srv, err := smtpd.New(opts, cleanup, &rewrite.Recipients{Domains: domains, Rules: rules}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	return l.Addr().String(), sp, log
}

// dialog sends each command (DATA followed by the message) and returns
// the last line of each reply.
func dialog(t *testing.T, addr string, cmds ...string) []string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(conn)
	read := func() string {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if len(line) < 4 || line[3] != '-' {
				return strings.TrimRight(line, "\r\n")
			}
		}
	}
	read() // greeting
	var out []string
	for _, c := range append([]string{"EHLO client.example"}, cmds...) {
		fmt.Fprintf(conn, "%s\r\n", c)
		out = append(out, read())
	}
	fmt.Fprintf(conn, "QUIT\r\n")
	return out[1:]
}

func TestSMTPRelayTricksThroughCleanup(t *testing.T) {
	addr, sp, _ := startCleanupServer(t, false, nil)
	for _, rcpt := range []string{
		"<victim%elsewhere.example@example.com>",
		"<victim%elsewhere.example@MX.example.com.>",
		"<elsewhere.example!victim@example.com>",
		`<"victim@elsewhere.example"@example.com>`,
		"<victim%elsewhere.example>",
		"<elsewhere.example!victim>",
	} {
		got := dialog(t, addr, "MAIL FROM:<a@elsewhere.example>", "RCPT TO:"+rcpt)
		if !strings.HasPrefix(got[1], "554 5.7.1 ") || !strings.Contains(got[1], "Relay access denied") {
			t.Errorf("RCPT TO:%s from a stranger: %q, want 554 5.7.1 Relay access denied", rcpt, got[1])
		}
	}
	if q := sp.queued(); len(q) != 0 {
		t.Errorf("queued %d messages", len(q))
	}

	// The same address from a client in mynetworks is accepted and
	// routed by cleanup.
	addr, sp, _ = startCleanupServer(t, true, nil)
	got := dialog(t, addr, "MAIL FROM:<a@example.com>", "RCPT TO:<user%elsewhere.example@example.com>",
		`RCPT TO:<"kim@elsewhere.example"@Example.COM>`, "DATA", "Subject: s\r\n\r\nb\r\n.")
	if !strings.HasPrefix(got[4], "250 ") {
		t.Fatalf("trusted client: %q", got)
	}
	q := sp.queued()
	if len(q) != 1 || len(q[0].Recipients) != 2 || q[0].Recipients[0].Address != "user@elsewhere.example" || q[0].Recipients[1].Address != "kim@elsewhere.example" {
		t.Errorf("queued %+v", q)
	}
}

func TestSMTPCleanupFailures(t *testing.T) {
	loop := mapTable{"loop1@virt.example": {"loop2@virt.example"}, "loop2@virt.example": {"loop1@virt.example"}}
	hops := strings.Repeat("Received: from h by x; Mon, 1 Jan 2024 00:00:00 +0000\r\n", 49)
	for _, tc := range []struct {
		name    string
		virtual rewrite.Table
		rcpt    string
		msg     string
		rcptRe  string // the RCPT reply's start
		dataRe  string // the end-of-DATA reply's start
		log     string
	}{
		// Postfix 3.7: "451 4.6.0 Alias expansion error" after DATA.
		{"alias loop", loop, "loop1@virt.example", "Subject: s\r\n\r\nb\r\n", "250 ", "451 4.",
			"warning: 4cYvZb0yq2z1: unreasonable virtual_alias_maps map nesting for loop1@virt.example -- message not accepted, try again later"},
		// Postfix 3.7: "451 4.3.0 <x>: Temporary lookup failure" at RCPT.
		{"table down at RCPT", downTable{}, "x@virt.example", "", "451 4.3.0 <x@virt.example>: Temporary lookup failure", "",
			"[127.0.0.1]: 451 4.3.0 <x@virt.example>: Temporary lookup failure; from=<a@example.com> to=<x@virt.example>"},
		// Postfix 3.7: 49 Received headers and smtpd's own make 50:
		// "554 5.4.0 Error: too many hops".
		{"too many hops", nil, "user@example.com", hops + "Subject: s\r\n\r\nb\r\n", "250 ", "", "warning: 4cYvZb0yq2z1: message rejected: hopcount exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, sp, log := startCleanupServer(t, true, tc.virtual)
			cmds := []string{"MAIL FROM:<a@example.com>", "RCPT TO:<" + tc.rcpt + ">"}
			if tc.msg != "" {
				cmds = append(cmds, "DATA", tc.msg+".")
			}
			got := dialog(t, addr, cmds...)
			if !strings.HasPrefix(got[1], tc.rcptRe) {
				t.Errorf("RCPT: %q, want %q", got[1], tc.rcptRe)
			}
			if tc.msg != "" {
				if got[3][0] == '2' || !strings.HasPrefix(got[3], tc.dataRe) {
					t.Errorf("end of DATA: %q, want a failure starting %q", got[3], tc.dataRe)
				}
				t.Logf("end of DATA: %q", got[3])
			}
			if q := sp.queued(); len(q) != 0 {
				t.Errorf("queued %d messages", len(q))
			}
			if !strings.Contains(log.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, log.String())
			}
		})
	}
}
