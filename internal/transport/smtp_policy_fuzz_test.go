package transport

import (
	"strings"
	"testing"
)

// FuzzTLSPolicyValue: any smtp_tls_policy_maps value gives a policy or
// an error, never a panic, and a policy has a level the client knows.
func FuzzTLSPolicyValue(f *testing.F) {
	for _, s := range []string{"encrypt", "verify match=hostname:dot-nexthop protocols=>=TLSv1.2", "secure tafile=/x",
		"may connection_reuse=yes servername=nexthop", "dane-only", "none ciphers=high", "=", "verify match=", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		p, err := TLSPolicy{Level: "may"}.withTableValue(value)
		if err != nil {
			return
		}
		switch p.Level {
		case "none", "may", "encrypt", "verify", "secure", "dane":
		default:
			t.Fatalf("%q: level %q", value, p.Level)
		}
		if len(p.TAFiles) > 0 && p.CAFile != "" {
			t.Fatalf("%q: tafile kept the CAfile", value)
		}
		if strings.TrimSpace(value) == "" {
			t.Fatalf("empty value accepted")
		}
	})
}
