package userdb

import (
	"strings"
	"testing"

	"postcote/internal/ldapx"
)

func TestParseAttrMap(t *testing.T) {
	for _, tc := range []struct {
		in    string
		attrs string // attributes() joined by ","
		bad   bool
	}{
		{in: "homeDirectory=home,uidNumber=uid,gidNumber=gid", attrs: "homeDirectory,uidNumber,gidNumber"},
		{in: " mail=user , userPassword=password ", attrs: "mail,userPassword"},
		{in: "uid", attrs: "uid"},
		{in: "=home=/var/mail/%{ldap:uid}, =mail=maildir:~/Maildir", attrs: "uid"},
		{in: "=user=%{ldap:mailRoutingAddress}, =password=%{ldap:userPassword}, =userdb_quota_rule=*:storage=%{ldap:messageQuotaHard}k", attrs: "mailRoutingAddress,userPassword,messageQuotaHard"},
		{in: "mailQuota=quota_rule=*:bytes=%$", attrs: "mailQuota"},
		{in: "=groups=%{ldap_multi:memberOf:;}, uid=user, UID=x", attrs: "memberOf,uid"},
		{in: "=q=%L{ldap:cn:none}", attrs: "cn"},
		{in: "", attrs: ""},
		{in: "=home", bad: true},
		{in: "home=", bad: true},
		{in: "=home=%{ldap:}", bad: true},
		{in: "=home=%{ldap:uid", bad: true},
		{in: "=home=%Z", bad: true},
		{in: "a(b=home", bad: true},
	} {
		m, err := parseAttrMap("user_attrs", tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q accepted", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := strings.Join(m.attributes(), ","); got != tc.attrs {
			t.Errorf("%q: attributes %q, want %q", tc.in, got, tc.attrs)
		}
	}
}

func TestAttrMapFields(t *testing.T) {
	e := &ldapx.Entry{DN: "uid=han,ou=people,dc=company,dc=com", Attributes: []ldapx.Attribute{
		{Name: "uid", Values: []string{"han"}},
		{Name: "homeDirectory", Values: []string{"/home/han"}},
		{Name: "mail", Values: []string{"han@company.com", "solo@company.com"}},
		{Name: "cn", Values: []string{"100%{user} %u"}},
		{Name: "objectClass", Values: []string{"top", "posixAccount"}},
	}}
	v := Vars{User: "HAN@company.com"}
	for _, tc := range []struct {
		attrs, want string
		warned      bool
	}{
		{"homeDirectory=home,uidNumber=uid", "home=/home/han", false},
		{"HOMEDIRECTORY=home", "home=/home/han", false},
		{"mail=user", "user=han@company.com", true},
		{"=home=/var/mail/%{ldap:uid}/%d", "home=/var/mail/han/company.com", false},
		{"=home=/var/mail/%U{ldap:uid}", "home=/var/mail/HAN", false},
		{"=quota_rule=*:storage=%{ldap:quota:2G}", "quota_rule=*:storage=2G", false},
		{"=x=%{ldap:missing}", "x", false},
		{"=aliases=%{ldap_multi:mail}", "aliases=han@company.com,solo@company.com", false},
		{"=classes=%{ldap_multi:objectClass: }", "classes=top posixAccount", false},
		{"=m=%{ldap_multi:nothing:;:none}", "m=none", false},
		{"homeDirectory=mail=maildir:%$/Maildir", "mail=maildir:/home/han/Maildir", false},
		{"missing=mail=maildir:%$/Maildir", "", false},
		// Directory values are not variables.
		{"=gecos=%{ldap:cn}", "gecos=100%{user} %u", false},
		{"cn=gecos", "gecos=100%{user} %u", false},
		{"=p=100%%", "p=100%", false},
	} {
		m, err := parseAttrMap("t", tc.attrs)
		if err != nil {
			t.Fatalf("%q: %v", tc.attrs, err)
		}
		warned := false
		got := m.fieldsFrom(e, v, func(string, ...any) { warned = true }).String()
		if got != tc.want || warned != tc.warned {
			t.Errorf("%q: %q (warned %v), want %q (warned %v)", tc.attrs, got, warned, tc.want, tc.warned)
		}
	}
}
