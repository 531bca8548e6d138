package dnsx

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

const zone = `# test zone
example.org     MX   10 mx.example.org.
mx.example.org  A    127.0.0.2
v6.example.org  AAAA ::1
null.example    MX   0 .
127.0.0.2       PTR  mx.example.org.
2001:db8::25    PTR  v6.example.org
2.0.0.127.zen.example TXT "listed" " here; \"quoted\"" # a comment
2.0.0.127.zen.example A 127.0.0.2
broken.example  SERVFAIL
2001:DB8:0::53  SERVFAIL
`

func TestStaticResolver(t *testing.T) {
	r, err := ParseStaticResolver(strings.NewReader(zone))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type result struct {
		got      string
		err      error
		notFound bool
	}
	join := func(v []string, err error) result {
		return result{strings.Join(v, ","), err, IsNotFound(err)}
	}
	mx := func(name string) result {
		m, err := r.LookupMX(ctx, name)
		var s []string
		for _, x := range m {
			s = append(s, x.Host)
		}
		return join(s, err)
	}
	ip := func(name string) result {
		a, err := r.LookupIPAddr(ctx, name)
		var s []string
		for _, x := range a {
			s = append(s, x.IP.String())
		}
		return join(s, err)
	}
	tests := []struct {
		name     string
		res      result
		want     string
		failure  bool // an error is expected
		notFound bool // … and it is "not found", not temporary
	}{
		{"MX", mx("Example.ORG."), "mx.example.org", false, false},
		{"null MX", mx("null.example"), ".", false, false},
		{"MX of a host (NODATA)", mx("mx.example.org"), "", true, true},
		{"MX of nothing (NXDOMAIN)", mx("nowhere.example"), "", true, true},
		{"MX SERVFAIL", mx("broken.example"), "", true, false},
		{"A", ip("mx.example.org"), "127.0.0.2", false, false},
		{"AAAA", ip("v6.example.org"), "::1", false, false},
		{"A SERVFAIL", ip("BROKEN.example."), "", true, false},
		{"A missing", ip("example.org"), "", true, true},
		{"PTR", join(r.LookupAddr(ctx, "127.0.0.2")), "mx.example.org.", false, false},
		{"PTR v4-mapped", join(r.LookupAddr(ctx, "::ffff:127.0.0.2")), "mx.example.org.", false, false},
		{"PTR v6", join(r.LookupAddr(ctx, "2001:db8:0::25")), "v6.example.org.", false, false},
		{"PTR missing", join(r.LookupAddr(ctx, "192.0.2.1")), "", true, true},
		{"PTR SERVFAIL", join(r.LookupAddr(ctx, "2001:db8::53")), "", true, false},
		{"PTR bad address", join(r.LookupAddr(ctx, "x")), "", true, false},
		{"TXT", join(r.LookupTXT(ctx, "2.0.0.127.zen.example")), `listed here; "quoted"`, false, false},
		{"TXT missing", join(r.LookupTXT(ctx, "mx.example.org")), "", true, true},
	}
	for _, tc := range tests {
		if tc.res.got != tc.want || (tc.res.err != nil) != tc.failure || tc.res.notFound != tc.notFound {
			t.Errorf("%s: got %q, %v (not found %v); want %q, error %v, not found %v",
				tc.name, tc.res.got, tc.res.err, tc.res.notFound, tc.want, tc.failure, tc.notFound)
		}
		if tc.failure && IsTemporary(tc.res.err) == tc.notFound {
			t.Errorf("%s: IsTemporary(%v) = %v", tc.name, tc.res.err, !tc.notFound)
		}
	}
}

func TestParseStaticResolverErrors(t *testing.T) {
	for _, bad := range []string{"x MX ten y", "x A ::1", "x AAAA 1.2.3.4", "x TXT y", "x TXT", `x TXT "open`,
		"x A", "x", "x SERVFAIL y", "host PTR y", "1.2.3.4 PTR", "x CNAME y", "x A fe80::1%eth0"} {
		if _, err := ParseStaticResolver(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// slowResolver blocks until its context ends, as an unanswering server.
type slowResolver struct{ *StaticResolver }

func (slowResolver) LookupMX(ctx context.Context, _ string) ([]*net.MX, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestWithTimeout(t *testing.T) {
	r := WithTimeout(slowResolver{&StaticResolver{}}, 20*time.Millisecond)
	start := time.Now()
	_, err := r.LookupMX(context.Background(), "example.org")
	if !IsTemporary(err) || time.Since(start) > 5*time.Second {
		t.Errorf("err %v after %v", err, time.Since(start))
	}
	var de *net.DNSError
	if !errors.As(err, &de) || !de.IsTimeout {
		t.Errorf("err %v is not a DNS timeout", err)
	}
	// A wrapped resolver is not wrapped twice.
	if w, ok := WithTimeout(r, time.Second).(timeoutResolver); !ok || w.d != time.Second {
		t.Errorf("rewrapped: %#v", w)
	}
	// A cancelled context is a temporary failure for the static tables too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&StaticResolver{}).LookupTXT(ctx, "x"); !IsTemporary(err) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestReverse(t *testing.T) {
	tests := []struct{ in, want string }{
		{"1.2.3.4", "4.3.2.1"},
		{"::ffff:1.2.3.4", "4.3.2.1"},
		{"2001:db8::1", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"},
	}
	for _, tc := range tests {
		if got := Reverse(netip.MustParseAddr(tc.in)); got != tc.want {
			t.Errorf("Reverse(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}
