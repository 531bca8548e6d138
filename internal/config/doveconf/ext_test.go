package doveconf

import (
	"errors"
	"strings"
	"testing"

	"postcote/internal/config"
)

func TestLDAPDefaultsAndErrors(t *testing.T) {
	l, err := ParseLDAP("l.ext", []byte("hosts = ldap1 ldap2:389\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Scope != "subtree" || l.Deref != "never" || l.LDAPVersion != 3 || l.UserFilter != "(&(objectClass=posixAccount)(uid=%u))" ||
		len(l.Hosts) != 2 || l.AuthBind || l.DefaultPassScheme != "crypt" {
		t.Errorf("defaults = %+v", l)
	}
	if p := l.Pos("hosts"); p.Line != 1 || p.File != "l.ext" {
		t.Errorf("Pos(hosts) = %v", p)
	}
	tests := []struct {
		text string
		line int
		msg  string
	}{
		{"uris = ldap://a\nbind_pw = x\n", 2, "unknown setting bind_pw"},
		{"uris = ldap://a\nauth_bind = perhaps\n", 2, "use yes or no"},
		{"uris = ldap://a\n\nldap_version = 4\n", 3, "use 2 or 3"},
		{"uris = ldap://a\ntls_require_cert = sometimes\n", 2, "never, allow, try, demand, hard"},
		{"uris = http://a\n", 1, "bad URI"},
		{"dn = cn=x\n", 0, "neither uris nor hosts"},
		{"uris = ldap://a\nuser_filter = (&(uid=%u)\n", 2, "unbalanced '('"},
		{"uris = ldap://a\npass_filter = (uid=%u))\n", 2, "unbalanced ')'"},
		{"uris = ldap://a\nnot a setting\n", 2, "expecting key = value"},
	}
	for _, tt := range tests {
		_, err := ParseLDAP("l.ext", []byte(tt.text))
		var pe *config.PosError
		if !errors.As(err, &pe) || pe.Pos.File != "l.ext" || pe.Pos.Line != tt.line || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q: err = %v; want l.ext:%d %q", tt.text, err, tt.line, tt.msg)
		}
	}
}

func TestSQLContinuationAndErrors(t *testing.T) {
	s, err := ParseSQL("s.ext", []byte(`# Stock example style
driver = pgsql
connect = "host=db dbname=mail user=dovecot password='p#w'"
password_query = \
  SELECT username, domain, password \
  FROM users WHERE username = '%n' AND domain = '%d'
user_query = SELECT home, uid, gid FROM users WHERE username = '%n' # comment
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Driver != "pgsql" || s.Connect != "host=db dbname=mail user=dovecot password='p#w'" {
		t.Errorf("sql = %+v", s)
	}
	if s.PasswordQuery != "SELECT username, domain, password FROM users WHERE username = '%n' AND domain = '%d'" {
		t.Errorf("password_query = %q", s.PasswordQuery)
	}
	if s.UserQuery != "SELECT home, uid, gid FROM users WHERE username = '%n'" {
		t.Errorf("user_query = %q", s.UserQuery)
	}
	if p := s.Pos("password_query"); p.Line != 4 {
		t.Errorf("Pos = %v", p)
	}
	if s.DefaultPassScheme != "MD5" {
		t.Errorf("default scheme = %q", s.DefaultPassScheme)
	}
	tests := []struct {
		text string
		line int
		msg  string
	}{
		{"driver = mysql\nconnect = x\nquery = y\n", 3, "unknown setting query"},
		{"connect = x\n", 0, "driver is not set"},
		{"driver = oracle\nconnect = x\n", 1, "unknown driver"},
		{"driver = sqlite\n", 0, "connect is not set"},
	}
	for _, tt := range tests {
		_, err := ParseSQL("s.ext", []byte(tt.text))
		var pe *config.PosError
		if !errors.As(err, &pe) || pe.Pos.Line != tt.line || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q: err = %v; want s.ext:%d %q", tt.text, err, tt.line, tt.msg)
		}
	}
	if _, err := ParseSQLFile("/nonexistent/dovecot-sql.conf.ext"); err == nil || !strings.Contains(err.Error(), "/nonexistent/dovecot-sql.conf.ext") {
		t.Errorf("missing file: %v", err)
	}
}
