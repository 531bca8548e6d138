package rewrite

import (
	"context"
	"net/netip"
	"testing"
)

func TestClassify(t *testing.T) {
	d := &Domains{
		Local:          NewDomainList([]string{"mail.example.jp", "localhost"}, false),
		VirtualAlias:   NewDomainList([]string{"alias.example"}, false),
		VirtualMailbox: NewDomainList([]string{"example.jp", ".sub.example.net"}, false),
		Relay:          NewDomainList([]string{"relay.example"}, true),
	}
	for _, tc := range []struct {
		domain string
		want   Class
	}{
		{"", Local},
		{"localhost", Local},
		{"MAIL.Example.JP.", Local},
		{"alias.example", VirtualAlias},
		{"example.jp", VirtualMailbox},
		{"EXAMPLE.JP.", VirtualMailbox},
		{"x.example.jp", Default}, // no subdomain match without a leading dot
		{"a.sub.example.net", VirtualMailbox},
		{"sub.example.net", Default},
		{"relay.example", Relay},
		{"mx.relay.example", Relay}, // relay_domains match subdomains
		{"example.org", Default},
		{"example.jp.evil.example", Default},
		{"[127.0.0.1]", Default},
	} {
		if got := d.Classify(tc.domain); got != tc.want {
			t.Errorf("Classify(%q) = %v, want %v", tc.domain, got, tc.want)
		}
	}
}

func TestSplitAddress(t *testing.T) {
	for _, tc := range []struct{ in, local, domain string }{
		{"user@example.com", "user", "example.com"},
		{`"a@b"@example.com`, `"a@b"`, "example.com"},
		{"postmaster", "postmaster", ""},
	} {
		l, d := SplitAddress(tc.in)
		if l != tc.local || d != tc.domain {
			t.Errorf("SplitAddress(%q) = %q, %q", tc.in, l, d)
		}
	}
}

// TestClassifyLiterals: an address literal of one of our listen
// addresses is local (resolve_local), other literals are not ours, and a
// bare numeric domain counts only with resolve_numeric_domain.
func TestClassifyLiterals(t *testing.T) {
	base := Domains{
		Local:          NewDomainList([]string{"localhost", "[192.0.2.9]", "192.0.2.8"}, false),
		VirtualMailbox: NewDomainList([]string{"[198.51.100.1]"}, false),
		Interfaces: []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("192.0.2.1"),
			netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("fe80::1%eth0")},
	}
	numeric := base
	numeric.ResolveNumeric = true
	for _, tc := range []struct {
		d      *Domains
		domain string
		want   Class
	}{
		{&base, "[127.0.0.1]", Local},
		{&base, "[192.0.2.1]", Local},
		{&base, "[192.0.2.1].", Local},
		{&base, "[192.0.2.2]", Default},
		{&base, "[192.0.2.9]", Local}, // listed in mydestination
		{&base, "[IPv6:2001:db8::1]", Local},
		{&base, "[ipv6:2001:DB8:0:0::1]", Local}, // compared as addresses
		{&base, "[IPv6:fe80::1]", Local},         // the zone is not compared
		{&base, "[2001:db8::1]", Default},        // IPv6 needs its tag
		{&base, "[IPv6:127.0.0.1]", Default},
		{&base, "[IPv6:::ffff:127.0.0.1]", Default}, // another family
		{&base, "[127.1]", Default},
		{&base, "[localhost]", Default},
		{&base, "[198.51.100.1]", VirtualMailbox},
		{&base, "127.0.0.1", Default}, // numeric: an error without resolve_numeric_domain
		{&base, "192.0.2.8", Default}, // even when mydestination lists it
		{&base, "1-2.3", Default},
		{&numeric, "127.0.0.1", Local},
		{&numeric, "192.0.2.8", Local},
		{&numeric, "192.0.2.2", Default},
		{&numeric, "198.51.100.1", VirtualMailbox},
		{&numeric, "1.2.3", Default}, // not a dotted quad
		{&base, "1.example", Default},
		{&base, "localhost", Local},
		{&base, "localhost..", Default},
	} {
		if got := tc.d.Classify(tc.domain); got != tc.want {
			t.Errorf("Classify(%q) numeric=%v = %v, want %v", tc.domain, tc.d.ResolveNumeric, got, tc.want)
		}
		if got, err := tc.d.ClassifyContext(context.Background(), tc.domain); got != tc.want || err != nil {
			t.Errorf("ClassifyContext(%q) numeric=%v = %v, %v, want %v", tc.domain, tc.d.ResolveNumeric, got, err, tc.want)
		}
	}
}

func TestLocalContext(t *testing.T) {
	d := &Domains{
		Local:      NewDomainList([]string{"example.com"}, false).WithTables(memTable{"table.example": {"x"}}),
		Interfaces: []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	}
	for _, tc := range []struct {
		domain string
		want   bool
	}{
		{"example.com", true},
		{"EXAMPLE.COM.", true},
		{"example.com..", false}, // one trailing dot only
		{"table.example", true},
		{"[127.0.0.1]", true},
		{"[127.0.0.2]", false},
		{"other.example", false},
		{"", false},
	} {
		if got, err := d.LocalContext(context.Background(), tc.domain); got != tc.want || err != nil {
			t.Errorf("LocalContext(%q) = %v, %v, want %v", tc.domain, got, err, tc.want)
		}
	}
	var none *Domains
	if ok, err := none.LocalContext(context.Background(), "example.com"); ok || err != nil {
		t.Errorf("nil Domains: %v, %v", ok, err)
	}
	d.Local = d.Local.WithTables(failTable{})
	if _, err := d.LocalContext(context.Background(), "down.example"); err == nil {
		t.Error("a table that cannot answer gave no error")
	}
}

// TestRecipientsResolve: the routing smtpd's relay checks must see.
func TestRecipientsResolve(t *testing.T) {
	d := &Domains{
		Local:          NewDomainList([]string{"example.com", "mx.example.com"}, false),
		VirtualMailbox: NewDomainList([]string{"virtual.example"}, false),
		Interfaces:     []netip.Addr{netip.MustParseAddr("127.0.0.1")},
	}
	rules := &Addresses{Myorigin: "example.com", Domains: d, SwapBangpath: true, PercentHack: true, ResolveDequoted: true}
	r := &Recipients{Domains: d, Rules: rules}
	for _, tc := range []struct{ in, want string }{
		{"user@example.com", "user@example.com"},
		{"user%remote.example@example.com", "user@remote.example"},
		{"remote.example!user@example.com", "user@remote.example"},
		{"user@remote.example@example.com", "user@remote.example"},
		{"user%mx.example.com@example.com", "user@mx.example.com"},
		{"user%remote.example@[127.0.0.1]", "user@remote.example"}, // our literal is local
		{"user%remote.example@[127.0.0.2]", "user%remote.example@[127.0.0.2]"},
		{"user%remote.example@virtual.example", "user%remote.example@virtual.example"},
		{"user%remote.example", "user@remote.example"},
		{"remote.example!user", "user@remote.example"},
		{"postmaster", "postmaster"}, // the caller appends $myhostname
	} {
		got, err := r.Resolve(context.Background(), tc.in)
		if got != tc.want || err != nil {
			t.Errorf("Resolve(%q) = %q, %v, want %q", tc.in, got, err, tc.want)
		}
	}
	// Without rules nothing is rewritten.
	bare := &Recipients{Domains: d}
	if got, _ := bare.Resolve(context.Background(), "user%remote.example@example.com"); got != "user%remote.example@example.com" {
		t.Errorf("no rules: %q", got)
	}
}
