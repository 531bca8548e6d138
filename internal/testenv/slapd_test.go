package testenv

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"
)

func TestSlapd(t *testing.T) {
	start := time.Now()
	s := StartSlapd(t, SlapdOptions{LDIF: []string{`dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: posixAccount
cn: Ann
sn: A
uid: ann
uidNumber: 3001
gidNumber: 3001
homeDirectory: /home/ann
userPassword: ann-pass`}})
	t.Logf("slapd up and loaded in %v", time.Since(start))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("start-up took %v, want < 2 s", d)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.CA.CertPEM)
	tc := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}

	check := func(name string, dial func() (*ldap.Conn, error)) {
		t.Helper()
		c, err := dial()
		if err != nil {
			t.Fatalf("%s: dial: %v", name, err)
		}
		defer c.Close()
		if err := c.Bind("uid=ann,ou=people,dc=example,dc=com", "ann-pass"); err != nil {
			t.Fatalf("%s: bind: %v", name, err)
		}
		res, err := c.Search(ldap.NewSearchRequest(s.Suffix, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, 0, false,
			"(uid=ann)", []string{"homeDirectory"}, nil))
		if err != nil || len(res.Entries) != 1 || res.Entries[0].GetAttributeValue("homeDirectory") != "/home/ann" {
			t.Fatalf("%s: search: %v %+v", name, err, res)
		}
	}
	plain := func() (*ldap.Conn, error) { return ldap.DialURL(s.URI) }
	check("ldap", plain)
	check("starttls", func() (*ldap.Conn, error) {
		c, err := ldap.DialURL(s.URI)
		if err != nil {
			return nil, err
		}
		return c, c.StartTLS(tc)
	})
	check("ldaps", func() (*ldap.Conn, error) { return ldap.DialURL(s.LDAPSURI, ldap.DialWithTLSConfig(tc)) })

	s.Stop()
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if c, err := ldap.DialURL(s.URI); err == nil {
		c.Close()
		t.Fatal("dial succeeded while stopped")
	}
	s.Start()
	check("ldap after restart", plain)
}
