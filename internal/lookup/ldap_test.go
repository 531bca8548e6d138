package lookup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"postcote/internal/testenv"
)

// guide001Slapd starts slapd with guide 001's schema, ACL and ou=Mail
// directory.
func guide001Slapd(t testing.TB) *testenv.Slapd {
	t.Helper()
	ldif, err := os.ReadFile(filepath.Join("testdata", "g001", "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	return testenv.StartSlapd(t, testenv.SlapdOptions{
		ExtraSchema: []string{filepath.Join("testdata", "g001", "postfix-schema.ldif")},
		ACL: []string{
			`to attrs=userPassword by self =xw by anonymous auth by * none`,
			`to dn.subtree="ou=Mail,dc=example,dc=com" by dn.base="cn=mailAccountReader,ou=Manager,dc=example,dc=com" read by * none`,
		},
		Indexes: []string{"mailacceptinggeneralid eq,sub", "maildrop eq", "uid eq"},
		LDIF:    []string{string(ldif)},
	})
}

// guideMap copies a guide's map file, pointing it at the test server.
func guideMap(t testing.TB, name string, repl ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, []byte(strings.NewReplacer(repl...).Replace(string(data))), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLDAPGuide001(t *testing.T) {
	s := guide001Slapd(t)
	repl := []string{"ldap://ldap.example.com", s.URI, "/etc/ldap/tls/CA.pem", s.CAFile}
	reg := NewRegistry(Options{})
	defer reg.Close()
	open := func(name string) Table {
		tb, err := reg.Open("ldap:" + guideMap(t, "g001/"+name, repl...))
		if err != nil {
			t.Fatal(err)
		}
		return tb
	}
	tests := []struct {
		table, key string
		want       []string
	}{
		{"virtual_alias_domains", "example.org", []string{"example.org", "example.org", "example.org", "example.org", "example.org"}},
		{"virtual_alias_domains", "example.net", nil},
		{"virtual_alias_maps", "info@example.org", []string{"mail000@mx.example.com"}},
		{"virtual_alias_maps", "INFO@Example.ORG", []string{"mail000@mx.example.com"}},
		{"virtual_alias_maps", "shared@example.org", []string{"mail000@mx.example.com", "mail001@mx.example.com"}},
		{"virtual_alias_maps", "nobody@example.org", nil},
		{"virtual_mailbox_maps", "mail000@mx.example.com", []string{"/home/mail/mail000/mailbox/"}},
		{"virtual_uid_maps", "mail000@mx.example.com", []string{"20000"}},
		{"virtual_uid_maps", "mail001@mx.example.com", []string{"20001"}},
		{"smtpd_sender_login_maps", "info@example.org", []string{"mail000"}},
		{"smtpd_sender_login_maps", "mail001@mx.example.com", []string{"mail001"}},
		// Injection: filter metacharacters in the key are escaped
		// (RFC 4515), so none widens or rewrites the search.
		{"virtual_alias_maps", "*@example.org", nil},
		{"virtual_alias_maps", "*", nil},
		{"virtual_alias_maps", "info@example.org)(maildrop=*", nil},
		{"smtpd_sender_login_maps", "*)(uid=*", nil},
		{"smtpd_sender_login_maps", `mail000\2a`, nil},
		{"virtual_alias_domains", "*", nil},
		{"virtual_alias_domains", "example.org)(objectClass=*", nil},
		{"virtual_alias_maps", "%s'\"(", nil},
		{"virtual_alias_maps", "", nil},
		{"virtual_alias_maps", "bad\xffutf8@example.org", nil},
	}
	for _, tc := range tests {
		got := lookupOne(t, open(tc.table), tc.key)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Lookup(%q) = %q, want %q", tc.table, tc.key, got, tc.want)
		}
	}

	s.Add("dn: cn=team,ou=Mail,dc=example,dc=com\nobjectClass: groupOfNames\ncn: team\n" +
		"member: uid=mail000,ou=Mail,dc=example,dc=com\nmember: uid=mail001,ou=Mail,dc=example,dc=com\n" +
		"member: cn=team,ou=Mail,dc=example,dc=com\nmember: uid=gone,ou=Mail,dc=example,dc=com\n")

	t.Run("options", func(t *testing.T) {
		base := "server_host = " + s.URI + "\nbind_dn = cn=mailAccountReader,ou=Manager,dc=example,dc=com\nbind_pw = readerSecret\nsearch_base = ou=Mail,dc=example,dc=com\n"
		cases := []struct {
			conf, key string
			want      []string
			err       bool
		}{
			{"query_filter = mailacceptinggeneralid=%s\nresult_attribute = maildrop\nexpansion_limit = 1\n", "shared@example.org", nil, true},
			{"query_filter = mailacceptinggeneralid=%s\nresult_attribute = maildrop\nsize_limit = 1\n", "shared@example.org", nil, true},
			{"query_filter = mailacceptinggeneralid=%s\nresult_attribute = maildrop\nsize_limit = 1\n", "info@example.org", []string{"mail000@mx.example.com"}, false},
			{"query_filter = mailacceptinggeneralid=%s\nresult_attribute = maildrop\ndomain = example.com\n", "info@example.org", nil, false},
			{"query_filter = mailacceptinggeneralid=%s\nresult_attribute = maildrop\ndomain = example.com, example.org\n", "info@example.org", []string{"mail000@mx.example.com"}, false},
			{"query_filter = (mailacceptinggeneralid=%u@%d)\nresult_attribute = uid uidNumber\nresult_format = %s:%U\n", "info@example.org", []string{"mail000:info", "20000:info"}, false},
			{"query_filter = (mailacceptinggeneralid=%u@%d)\nresult_attribute = maildrop\n", "no-domain", nil, false},
			{"search_base = uid=%u,ou=Mail,dc=example,dc=com\nscope = base\nquery_filter = (objectClass=*)\nresult_attribute = uidNumber\n", "mail001", []string{"20001"}, false},
			{"search_base = uid=%u,ou=Mail,dc=example,dc=com\nscope = base\nquery_filter = (objectClass=*)\nresult_attribute = uidNumber\n", "mail001,ou=Mail", nil, false},
			{"bind_pw = wrong\nquery_filter = (uid=%s)\n", "mail000", nil, true},
			// special_result_attribute: the group's members are searched
			// (a member that is the group itself, or missing, is skipped).
			{"query_filter = (cn=%u)\nresult_attribute = maildrop\nspecial_result_attribute = member\n", "team@example.org", []string{"mail000@mx.example.com", "mail001@mx.example.com"}, false},
			{"query_filter = (cn=%u)\nresult_attribute = maildrop\nspecial_result_attribute = member\nrecursion_limit = 1\n", "team@example.org", nil, true},
		}
		for i, c := range cases {
			p := filepath.Join(t.TempDir(), "m.cf")
			os.WriteFile(p, []byte(base+c.conf), 0o600)
			tb, err := Open("ldap:"+p, Options{})
			if err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			got, err := tb.Lookup(context.Background(), c.key)
			if c.err != (err != nil) || !reflect.DeepEqual(got, c.want) {
				t.Errorf("case %d (%q): %q, %v; want %q, error %v", i, c.key, got, err, c.want, c.err)
			}
			if err != nil && !errors.Is(err, ErrLookup) {
				t.Errorf("case %d: error %v does not wrap ErrLookup", i, err)
			}
			tb.Close()
		}
	})

	t.Run("server down is a lookup problem", func(t *testing.T) {
		tb := open("virtual_alias_maps")
		s.Stop()
		defer s.Start()
		_, err := tb.Lookup(context.Background(), "info@example.org")
		if !errors.Is(err, ErrLookup) {
			t.Errorf("err = %v, want ErrLookup", err)
		}
	})
}

func TestLDAPGuide000(t *testing.T) {
	ldif, err := os.ReadFile(filepath.Join("testdata", "g000", "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	s := testenv.StartSlapd(t, testenv.SlapdOptions{
		Suffix: "dc=company,dc=com", AdminDN: "cn=admin,dc=company,dc=com", AdminPassword: "Passw0rd",
		LDIF: []string{string(ldif)},
	})
	tb, err := Open("ldap:"+guideMap(t, "g000/smtpd_sender_login_maps", "ldap://int-srv.company.com", s.URI), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	for key, want := range map[string][]string{
		"mark@company.com": {"mark@company.com"},
		"han":              {"han@company.com"},
		"nobody":           nil,
		"*":                nil,
	} {
		if got := lookupOne(t, tb, key); !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestLDAPConfigErrors(t *testing.T) {
	for _, conf := range []string{
		"query_filter = (mail=%x)\n",
		"result_format = %q\n",
		"scope = everything\n",
		"version = 4\n",
		"bind = sasl\n",
		"server_port = 99999\n",
		"server_host = gopher://x\n",
		"leaf_result_attribute = member\n",
		"domain = hash:/etc/x\n",
		"timeout = -1\n",
		"no equals sign\n",
	} {
		p := filepath.Join(t.TempDir(), "m.cf")
		os.WriteFile(p, []byte(conf), 0o600)
		if tb, err := Open("ldap:"+p, Options{}); err == nil {
			tb.Close()
			t.Errorf("accepted %q", conf)
		}
	}
}
