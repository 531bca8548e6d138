package transport

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"postcote/internal/queue"
)

// cacheClient is a test client with the connection cache on (10 s idle
// limit unless changed), delivering to fake servers through testNet.
func cacheClient(t *testing.T, routes map[string]string) *SMTP {
	t.Helper()
	c, _, _ := newTestClient(t, exampleDNS(), routes)
	c.CacheOnDemand, c.CacheTimeLimit = true, 10*time.Second
	t.Cleanup(func() { c.Close() })
	return c
}

// sendN delivers n one-recipient messages to nexthop one after the other.
func sendN(t *testing.T, c *SMTP, n int, nexthop string) []queue.Result {
	t.Helper()
	var out []queue.Result
	for i := 0; i < n; i++ {
		res := c.Send(context.Background(), smtpEnv("a@example.org"), 10, opener(plainMsg), []int{0}, nexthop)
		if res[0].Status != queue.StatusSent {
			t.Fatalf("message %d: %+v", i+1, res[0])
		}
		out = append(out, res[0])
	}
	return out
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

func TestSMTPConnectionCacheReuse(t *testing.T) {
	f := startFakeMX(t, &fakeMX{ext: []string{"PIPELINING"}})
	c := cacheClient(t, map[string]string{"127.0.0.2:25": f.addr()})
	res := sendN(t, c, 3, "[mx1.example.org]")
	if n := f.connections(); n != 1 {
		t.Errorf("%d connections for 3 messages, want 1", n)
	}
	if res[0].Relay != "mx1.example.org[127.0.0.2]:25" {
		t.Errorf("first relay %q: a fresh session has no conn_use", res[0].Relay)
	}
	for i, want := range []string{"", "mx1.example.org[127.0.0.2]:25, conn_use=2", "mx1.example.org[127.0.0.2]:25, conn_use=3"} {
		if i > 0 && res[i].Relay != want {
			t.Errorf("message %d relay %q, want %q", i+1, res[i].Relay, want)
		}
	}
	cmds := f.commands()
	if count(cmds, "EHLO client.example") != 1 || count(cmds, "RSET") != 3 || count(cmds, "QUIT") != 0 {
		t.Errorf("commands %q: want one EHLO, RSET after each delivery, no QUIT yet", cmds)
	}
	if c.cache.size() != 1 {
		t.Errorf("cache holds %d sessions, want 1", c.cache.size())
	}
	c.Close()
	if c.cache.size() != 0 || count(f.commands(), "QUIT") != 1 {
		t.Errorf("after Close: %d cached, commands %q", c.cache.size(), f.commands())
	}
	// A closed cache keeps nothing.
	sendN(t, c, 1, "[mx1.example.org]")
	if c.cache.size() != 0 {
		t.Error("a closed cache took a session")
	}
}

// A session cached by one next hop serves another next hop whose MX is
// the same server address (Postfix caches by endpoint too).
func TestSMTPConnectionCacheByEndpoint(t *testing.T) {
	f := startFakeMX(t, &fakeMX{})
	c := cacheClient(t, map[string]string{"127.0.0.2:25": f.addr(), "127.0.0.3:25": f.addr()})
	sendN(t, c, 1, "[mx1.example.org]")
	res := sendN(t, c, 1, "example.org") // MX mx1 (127.0.0.2) first
	if n := f.connections(); n != 1 || !strings.HasSuffix(res[0].Relay, "conn_use=2") {
		t.Errorf("%d connections, relay %q; want 1 and a reused session", n, res[0].Relay)
	}
}

func TestSMTPConnectionCacheLimits(t *testing.T) {
	tests := []struct {
		name  string
		set   func(*SMTP)
		n     int
		conns int
	}{
		{"no caching without on-demand or destinations", func(c *SMTP) { c.CacheOnDemand = false }, 3, 3},
		{"smtp_connection_cache_destinations", func(c *SMTP) {
			c.CacheOnDemand = false
			c.CacheDestinations = func(_ context.Context, nh string) (bool, error) { return nh == "[mx1.example.org]", nil }
		}, 3, 1},
		{"destinations lookup error: no caching", func(c *SMTP) {
			c.CacheOnDemand = false
			c.CacheDestinations = func(context.Context, string) (bool, error) { return false, fmt.Errorf("table down") }
		}, 2, 2},
		{"reuse count limit 1: two messages per session", func(c *SMTP) { c.ReuseCountLimit = 1 }, 4, 2},
		{"reuse count limit 2: three messages per session", func(c *SMTP) { c.ReuseCountLimit = 2 }, 4, 2},
		{"reuse time limit over", func(c *SMTP) { c.ReuseTimeLimit = time.Nanosecond }, 3, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeMX(t, &fakeMX{})
			c := cacheClient(t, map[string]string{"127.0.0.2:25": f.addr()})
			tc.set(c)
			sendN(t, c, tc.n, "[mx1.example.org]")
			if n := f.connections(); n != tc.conns {
				t.Errorf("%d connections for %d messages, want %d", n, tc.n, tc.conns)
			}
		})
	}
}

// An idle session is ended with QUIT when its time in the cache is over.
func TestSMTPConnectionCacheTimeLimit(t *testing.T) {
	f := startFakeMX(t, &fakeMX{})
	c := cacheClient(t, map[string]string{"127.0.0.2:25": f.addr()})
	c.CacheTimeLimit = 50 * time.Millisecond
	sendN(t, c, 1, "[mx1.example.org]")
	deadline := time.Now().Add(5 * time.Second)
	for count(f.commands(), "QUIT") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no QUIT after the cache time limit: %q", f.commands())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if c.cache.size() != 0 {
		t.Error("the expired session is still cached")
	}
	sendN(t, c, 1, "[mx1.example.org]")
	if n := f.connections(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

// A cached session the server has dropped, or that gets 421 to MAIL, is
// replaced by a fresh connection; the message is delivered and the dead
// session is not counted against it.
func TestSMTPConnectionCacheStaleSession(t *testing.T) {
	for _, tc := range []struct {
		name string
		mx   *fakeMX
	}{
		{"closed after RSET", &fakeMX{dropAfterRSET: true}},
		{"closed after RSET, pipelining", &fakeMX{dropAfterRSET: true, ext: []string{"PIPELINING"}}},
		{"421 to MAIL", &fakeMX{mail421: true}},
		{"421 to MAIL, pipelining", &fakeMX{mail421: true, ext: []string{"PIPELINING"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeMX(t, tc.mx)
			c := cacheClient(t, map[string]string{"127.0.0.2:25": f.addr()})
			c.MXSessionLimit = 1 // the dead session must not use up the one session allowed
			res := sendN(t, c, 2, "[mx1.example.org]")
			if n := f.connections(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
			if strings.Contains(res[1].Relay, "conn_use") {
				t.Errorf("relay %q: the delivery used a fresh session", res[1].Relay)
			}
			if len(f.messages()) != 2 {
				t.Errorf("%d messages received, want 2", len(f.messages()))
			}
		})
	}
}

// TLS sessions are cached only with connection reuse on, and reused only
// under the same TLS policy.
func TestSMTPConnectionCacheTLS(t *testing.T) {
	_, srvTLS := testCA(t, "mx1.example.org")
	tests := []struct {
		name    string
		reuse   bool
		policy  map[string]string // smtp_tls_policy_maps
		hops    []string
		conns   int
		overTLS []bool
	}{
		{"TLS not cached by default", false, nil, []string{"[mx1.example.org]", "[mx1.example.org]"}, 2, []bool{true, true}},
		{"smtp_tls_connection_reuse", true, nil, []string{"[mx1.example.org]", "[mx1.example.org]"}, 1, []bool{true, true}},
		{"policy connection_reuse=yes", false, map[string]string{"[mx1.example.org]": "may connection_reuse=yes"},
			[]string{"[mx1.example.org]", "[mx1.example.org]"}, 1, []bool{true, true}},
		{"different policies do not share a session", true, map[string]string{"[mx1.example.org]": "none"},
			[]string{"[mx1.example.org]", "example.org"}, 2, []bool{false, true}},
		{"same policy shares a session across next hops", true, nil,
			[]string{"[mx1.example.org]", "example.org"}, 1, []bool{true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeMX(t, &fakeMX{tls: srvTLS})
			c := cacheClient(t, map[string]string{"127.0.0.2:25": f.addr(), "127.0.0.3:25": f.addr()})
			c.TLS = TLSPolicy{Level: "may", ConnectionReuse: tc.reuse}
			if tc.policy != nil {
				c.TLSPolicyMaps = []PolicyTable{policyMap(tc.policy)}
			}
			for _, h := range tc.hops {
				sendN(t, c, 1, h)
			}
			if n := f.connections(); n != tc.conns {
				t.Errorf("%d connections, want %d", n, tc.conns)
			}
			f.mu.Lock()
			used := append([]bool(nil), f.tlsUsed...)
			f.mu.Unlock()
			if fmt.Sprint(used) != fmt.Sprint(tc.overTLS) {
				t.Errorf("over TLS: %v, want %v", used, tc.overTLS)
			}
		})
	}
}

// Deliveries in parallel each get a session; all of them are cached and
// reused afterwards, none twice at once.
func TestSMTPConnectionCacheConcurrent(t *testing.T) {
	f := startFakeMX(t, &fakeMX{})
	c := cacheClient(t, map[string]string{"127.0.0.2:25": f.addr()})
	const workers, each = 4, 5
	errs := make(chan error, workers*each)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := 0; i < each; i++ {
				res := c.Send(context.Background(), smtpEnv("a@example.org"), 10, opener(plainMsg), []int{0}, "[mx1.example.org]")
				if res[0].Status != queue.StatusSent {
					errs <- fmt.Errorf("%+v", res[0])
				}
			}
		}()
	}
	for w := 0; w < workers; w++ {
		<-done
	}
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := f.connections(); n > workers {
		t.Errorf("%d connections for %d workers", n, workers)
	}
	if len(f.messages()) != workers*each {
		t.Errorf("%d messages, want %d", len(f.messages()), workers*each)
	}
}

// policyMap is a lookup table for tests.
type policyMap map[string]string

func (m policyMap) Lookup(_ context.Context, key string) ([]string, error) {
	if v, ok := m[key]; ok {
		return []string{v}, nil
	}
	return nil, nil
}

type failTable struct{}

func (failTable) Lookup(context.Context, string) ([]string, error) {
	return nil, &net.OpError{Op: "read", Err: fmt.Errorf("table server down")}
}
