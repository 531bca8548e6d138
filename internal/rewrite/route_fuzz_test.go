package rewrite

import (
	"context"
	"strings"
	"testing"
)

// FuzzMasqueradeRoute runs masquerading, the bang path and percent
// rewriting of unqualified addresses and the local-domain resolver over
// arbitrary addresses: none may fail, masquerading keeps the local part
// and only ever shortens the domain to a listed one, and resolving ends
// with an address no longer than the input plus the appended domain.
func FuzzMasqueradeRoute(f *testing.F) {
	for _, s := range []string{
		"joe@host.sub.example.com", "host!bob", "a!b%c", "user%remote.example@example.com",
		"remote.example!user@mx.example.com", "a b%c@example.com", "x@y@example.com",
		"%@example.com", "!", "@", "u%example.com@example.com", "",
	} {
		f.Add(s)
	}
	ctx := context.Background()
	masq, err := NewMasquerade([]string{"!keep.example.com", "example.com", "Sub.Example.Net"}, []string{EnvelopeSender, EnvelopeRecipient}, []string{"root"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	a := &Addresses{
		Myorigin: "example.com", Mydomain: "example.com", AppendDotMydomain: true,
		Domains:      &Domains{Local: NewDomainList([]string{"example.com", "mx.example.com"}, false)},
		SwapBangpath: true, PercentHack: true, ResolveDequoted: true, Masquerade: masq,
	}
	f.Fuzz(func(t *testing.T, addr string) {
		q := a.Qualify(addr)
		if addr != "" && !strings.Contains(q, "@") {
			t.Fatalf("Qualify(%q) = %q: no domain", addr, q)
		}
		m, err := masq.Apply(ctx, EnvelopeSender, q)
		if err != nil {
			t.Fatal(err)
		}
		if m != q {
			ql, _ := SplitAddress(q)
			ml, md := SplitAddress(m)
			if ml != ql || (md != "example.com" && md != "sub.example.net") {
				t.Fatalf("Apply(%q) = %q", q, m)
			}
		}
		r, err := a.ResolveLocal(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(r) > len(q)+maxRouteSteps*len(".example.com") {
			t.Fatalf("ResolveLocal(%q) = %q grew", q, r)
		}
	})
}
