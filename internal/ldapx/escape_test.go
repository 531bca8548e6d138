package ldapx

import "testing"

func TestEscapeFilter(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"han", "han"},
		{"*", `\2a`},
		{")(uid=*", `\29\28uid=\2a`},
		{`a\b`, `a\5cb`},
		{"a\x00b", `a\00b`},
		{"%u", "%u"},
		{"müller", "müller"},
		{"a\xffb", `a\ffb`},
		{"line\nbreak", `line\0abreak`},
		{"", ""},
	} {
		if got := EscapeFilter(tc.in); got != tc.want {
			t.Errorf("EscapeFilter(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEscapeDN(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"han", "han"},
		{"han,ou=admins", `han\,ou\=admins`},
		{" lead", `\ lead`},
		{"trail ", `trail\ `},
		{"#hash", `\#hash`},
		{"mid#dle", "mid#dle"},
		{`q"+;<>\`, `q\"\+\;\<\>\\`},
		{"nul\x00", `nul\00`},
		{"*", "*"},
		{"a\xffb", `a\ffb`},
		{"", ""},
	} {
		if got := EscapeDN(tc.in); got != tc.want {
			t.Errorf("EscapeDN(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseURI(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ldap://int-srv.company.com", "ldap://int-srv.company.com"},
		{"LDAPS://host:636/", "ldaps://host:636"},
		{"ldap://host/dc=example,dc=com??sub", "ldap://host"},
		{"host.example:389", "ldap://host.example:389"},
		{"[::1]:389", "ldap://[::1]:389"},
		{"ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi", "ldapi://%2Fvar%2Frun%2Fslapd%2Fldapi"},
		{"http://host", ""},
		{"ldap://", ""},
		{"ldap://u:p@host", ""},
		{"ldap://host:99999", ""},
		{"", ""},
	} {
		got, err := ParseURI(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("ParseURI(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURI(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestParseSettings(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want TLSRequireCert
		bad  bool
	}{
		{"", TLSDemand, false}, {"demand", TLSDemand, false}, {"hard", TLSHard, false},
		{"never", TLSNever, false}, {"allow", TLSAllow, false}, {"try", TLSTry, false},
		{"yes", TLSDemand, false}, {"no", TLSNever, false}, {"maybe", 0, true},
	} {
		got, err := ParseTLSRequireCert(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && got != tc.want) {
			t.Errorf("ParseTLSRequireCert(%q) = %v, %v", tc.in, got, err)
		}
	}
	for in, want := range map[string]Scope{"base": ScopeBase, "one": ScopeOneLevel, "onelevel": ScopeOneLevel, "sub": ScopeSubtree, "subtree": ScopeSubtree, "": ScopeSubtree} {
		if got, err := ParseScope(in); err != nil || got != want {
			t.Errorf("ParseScope(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseScope("children"); err == nil {
		t.Error("ParseScope(children) accepted")
	}
	for in, want := range map[string]Deref{"never": DerefNever, "searching": DerefSearching, "finding": DerefFinding, "always": DerefAlways} {
		if got, err := ParseDeref(in); err != nil || got != want {
			t.Errorf("ParseDeref(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseDeref("sometimes"); err == nil {
		t.Error("ParseDeref(sometimes) accepted")
	}
}
