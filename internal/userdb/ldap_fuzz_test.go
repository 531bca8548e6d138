package userdb

import (
	"testing"

	"postcote/internal/ldapx"
)

// FuzzLDAPAttrMap parses arbitrary pass_attrs/user_attrs settings and
// applies them to an entry whose values are arbitrary too: no panic, no
// hang, and every field that a plain mapping sets holds the attribute's
// value unchanged.
func FuzzLDAPAttrMap(f *testing.F) {
	for _, s := range []string{
		"homeDirectory=home,uidNumber=uid,gidNumber=gid",
		"=home=/var/mail/%{ldap:uid}, =mail=maildir:~/Maildir",
		"mailQuota=quota_rule=*:bytes=%$",
		"=g=%{ldap_multi:memberOf:;:x}, =q=%L{ldap:cn:none}%",
		"=x=%{ldap:uid",
	} {
		f.Add(s, "han", "%u%{ldap:uid}%$")
	}
	f.Fuzz(func(t *testing.T, attrs, v1, v2 string) {
		m, err := parseAttrMap("fuzz", attrs)
		if err != nil {
			return
		}
		e := &ldapx.Entry{DN: "uid=x", Attributes: []ldapx.Attribute{
			{Name: "uid", Values: []string{v1}},
			{Name: "cn", Values: []string{v2, v1}},
			{Name: "homeDirectory", Values: []string{v2}},
		}}
		got := m.fieldsFrom(e, Vars{User: "u@d"}, func(string, ...any) {})
		for _, a := range m {
			if a.hasTmpl || a.ldapName == "" {
				continue
			}
			vals := e.Values(a.ldapName)
			if len(vals) == 0 {
				continue
			}
			// A later item may set the same field; check only the last
			// plain mapping of each field.
			last := true
			for i := len(m) - 1; i >= 0; i-- {
				if m[i].field == a.field {
					last = m[i] == a
					break
				}
			}
			if last && got.Value(a.field) != vals[0] {
				t.Fatalf("%q: field %s = %q, want %q", attrs, a.field, got.Value(a.field), vals[0])
			}
		}
	})
}
