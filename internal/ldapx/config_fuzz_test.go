package ldapx

import "testing"

// FuzzParseURI: any input either fails or gives a canonical URI that
// parses to itself.
func FuzzParseURI(f *testing.F) {
	for _, s := range []string{"ldap://host", "ldaps://h:636/dc=x??sub", "host:389", "[::1]:389", "ldapi://%2Fvar%2Frun%2Fs", "ldap://u@h", "http://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURI(s)
		if err != nil {
			return
		}
		again, err := ParseURI(u)
		if err != nil || again != u {
			t.Fatalf("ParseURI(%q) = %q, which parses to %q, %v", s, u, again, err)
		}
	})
}
