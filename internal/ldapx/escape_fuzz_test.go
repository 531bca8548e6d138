package ldapx

import (
	"testing"

	"github.com/go-ldap/ldap/v3"
)

// FuzzEscapeFilter checks that any value, escaped, makes exactly one
// equality assertion whose value is the input: nothing in it can add a
// wildcard or another filter component.
func FuzzEscapeFilter(f *testing.F) {
	for _, s := range []string{"han", "*", ")(uid=*", `\`, "\x00", "%u", "a\xffb", "müller"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		filter := "(uid=" + EscapeFilter(v) + ")"
		pkt, err := ldap.CompileFilter(filter)
		if err != nil {
			t.Fatalf("filter %q for %q does not compile: %v", filter, v, err)
		}
		if pkt.Tag != ldap.FilterEqualityMatch {
			t.Fatalf("filter %q for %q is a %s, not an equality match", filter, v, ldap.FilterMap[uint64(pkt.Tag)])
		}
		if got := pkt.Children[1].Data.String(); got != v {
			t.Fatalf("filter %q asserts %q, want %q", filter, got, v)
		}
	})
}

// FuzzEscapeDN checks that any value, escaped, stays one attribute value
// of the first RDN: the rest of the DN template cannot be changed.
func FuzzEscapeDN(f *testing.F) {
	for _, s := range []string{"han", "han,ou=admins", " x ", "#x", `\`, "\x00", "a+b", "a\xffb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if v == "" {
			return
		}
		dn := "uid=" + EscapeDN(v) + ",ou=people,dc=example,dc=com"
		parsed, err := ldap.ParseDN(dn)
		if err != nil {
			t.Fatalf("DN %q for %q does not parse: %v", dn, v, err)
		}
		if len(parsed.RDNs) != 4 || len(parsed.RDNs[0].Attributes) != 1 {
			t.Fatalf("DN %q for %q has shape %v", dn, v, parsed)
		}
		if got := parsed.RDNs[0].Attributes[0].Value; got != v {
			t.Fatalf("DN %q: value %q, want %q", dn, got, v)
		}
	})
}
