package rewrite

import (
	"context"
	"net/netip"
	"testing"
)

// FuzzClassify feeds arbitrary domains, address literals among them,
// to the class decision: it must not panic, and a domain that
// resolve_local counts as ours must classify as local.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"example.com", "[127.0.0.1]", "[IPv6:::1]", "[ipv6:fe80::1%eth0]", "127.0.0.1", "1-2.3", "[", "[]", "x.", "example.com.."} {
		f.Add(s)
	}
	d := &Domains{
		Local:          NewDomainList([]string{"example.com", "[192.0.2.9]"}, false),
		VirtualMailbox: NewDomainList([]string{"virtual.example"}, false),
		Interfaces:     []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
		ResolveNumeric: true,
	}
	f.Fuzz(func(t *testing.T, domain string) {
		c := d.Classify(domain)
		local, err := d.LocalContext(context.Background(), domain)
		if err != nil {
			t.Fatalf("LocalContext(%q): %v", domain, err)
		}
		if local && !numericHost(Canonical(domain)) && c != Local {
			t.Fatalf("%q is local to resolve_local but of class %v", domain, c)
		}
		if a := literalAddr(Canonical(domain)); a.IsValid() && a.Zone() != "" {
			t.Fatalf("literal %q kept a zone", domain)
		}
	})
}
