package dnsx

import (
	"context"
	"strings"
	"testing"
)

// FuzzParseStaticResolver: the test DNS file parser takes any input, and
// what it accepts answers queries without failing.
func FuzzParseStaticResolver(f *testing.F) {
	f.Add(zone)
	f.Add("x TXT \"a\\\"b\" \"c\" # d\n")
	f.Add("x SERVFAIL\n::1 PTR y\n")
	f.Fuzz(func(t *testing.T, in string) {
		r, err := ParseStaticResolver(strings.NewReader(in))
		if err != nil {
			return
		}
		ctx := context.Background()
		for name := range r.TXT {
			if _, err := r.LookupTXT(ctx, name); err != nil && !r.ServFail[name] {
				t.Errorf("TXT %q: %v", name, err)
			}
		}
		for name := range r.MX {
			r.LookupMX(ctx, name)
		}
	})
}
