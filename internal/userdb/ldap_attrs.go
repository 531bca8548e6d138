package userdb

import (
	"fmt"
	"strings"

	"postcote/internal/ldapx"
)

// LDAP attribute maps: the pass_attrs, user_attrs and iterate_attrs
// settings of dovecot-ldap.conf.ext. A comma-separated list whose items
// are, as Dovecot 2.3 reads them (db-ldap.c, "LDAP Settings" in its
// documentation):
//
//	homeDirectory=home              attribute homeDirectory becomes field "home"
//	uid                             attribute uid becomes field "uid"
//	=home=/var/mail/%{ldap:uid}     field "home" from a template
//	mailQuota=quota_rule=*:bytes=%$ 2.2 form: %$ is the attribute's value
//
// Templates may use the %variables of the request (%u, %n, %d, ...) and
// %{ldap:attr} / %{ldap:attr:default} (first value of attr) and
// %{ldap_multi:attr:sep:default} (all values joined by sep, "," when
// unset). A plain mapping sets its field only when the entry has the
// attribute; a template field is always set. An attribute with several
// values gives its first one (with a verbose log line), as Dovecot does.

// ldapAttr is one item of an attribute map.
type ldapAttr struct {
	ldapName string // attribute read; "" for a template-only item
	field    string // passdb/userdb field set
	tmpl     string // template; "" with hasTmpl false for a plain mapping
	hasTmpl  bool
}

// attrMap is a parsed attribute list.
type attrMap []ldapAttr

// parseAttrMap reads an attribute list setting.
func parseAttrMap(setting, s string) (attrMap, error) {
	var m attrMap
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var a ldapAttr
		name, rest, hasEq := strings.Cut(item, "=")
		a.ldapName = strings.TrimSpace(name)
		if !hasEq {
			a.field = a.ldapName
		} else {
			field, tmpl, hasTmpl := strings.Cut(rest, "=")
			a.field, a.tmpl, a.hasTmpl = strings.TrimSpace(field), tmpl, hasTmpl
		}
		if a.field == "" {
			return nil, fmt.Errorf("%s: item %q sets no field", setting, item)
		}
		if a.ldapName == "" && !a.hasTmpl {
			return nil, fmt.Errorf("%s: item %q has neither an LDAP attribute nor a template", setting, item)
		}
		if strings.ContainsAny(a.ldapName, " ()*\\\"") {
			return nil, fmt.Errorf("%s: %q is not an attribute name", setting, a.ldapName)
		}
		if a.hasTmpl {
			plain, refs, err := scanLDAPVars(a.tmpl)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", setting, a.field, err)
			}
			for _, r := range refs {
				if r == "" || strings.ContainsAny(r, " ()*\\\"") {
					return nil, fmt.Errorf("%s %s: %q is not an attribute name", setting, a.field, r)
				}
			}
			if err := checkTemplate(setting+" "+a.field, strings.ReplaceAll(plain, "%$", "")); err != nil {
				return nil, err
			}
		}
		m = append(m, a)
	}
	return m, nil
}

// attributes returns the LDAP attributes the map reads, each once.
func (m attrMap) attributes() []string {
	out := []string{}
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[strings.ToLower(n)] {
			seen[strings.ToLower(n)] = true
			out = append(out, n)
		}
	}
	for _, a := range m {
		add(a.ldapName)
		if a.hasTmpl {
			_, refs, _ := scanLDAPVars(a.tmpl)
			for _, r := range refs {
				add(r)
			}
		}
	}
	return out
}

// fieldsFrom applies the map to an entry. warn receives notes about
// multi-valued attributes.
func (m attrMap) fieldsFrom(e *ldapx.Entry, v Vars, warn func(format string, args ...any)) Fields {
	var f Fields
	for _, a := range m {
		var values []string
		if a.ldapName != "" {
			values = e.Values(a.ldapName)
			if len(values) > 1 {
				warn("Multiple values found for '%s', using value '%s'", a.ldapName, values[0])
			}
		}
		switch {
		case !a.hasTmpl:
			if len(values) == 0 {
				continue
			}
			f.Set(a.field, values[0])
		default:
			if a.ldapName != "" && len(values) == 0 {
				continue // attr=field=template needs attr
			}
			first := ""
			if len(values) > 0 {
				first = values[0]
			}
			f.Set(a.field, expandLDAPTemplate(a.tmpl, e, first, v))
		}
	}
	return f
}

// expandLDAPTemplate expands %{ldap:...}, %{ldap_multi:...} and %$ with
// values from e, then the request's %variables. Values from the
// directory are never read as variables themselves.
func expandLDAPTemplate(tmpl string, e *ldapx.Entry, dollar string, v Vars) string {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		if c != '%' || i+1 >= len(tmpl) {
			b.WriteByte(c)
			continue
		}
		if tmpl[i+1] == '%' {
			b.WriteString("%%")
			i++
			continue
		}
		if tmpl[i+1] == '$' {
			b.WriteString(strings.ReplaceAll(dollar, "%", "%%"))
			i++
			continue
		}
		mods, key, next, ok := ldapVarAt(tmpl, i)
		if !ok {
			b.WriteByte(c)
			continue
		}
		val := ldapVarValue(key, e)
		for _, m := range []byte(mods) {
			val = applyModifier(m, val)
		}
		b.WriteString(strings.ReplaceAll(val, "%", "%%"))
		i = next - 1
	}
	return Expand(b.String(), v)
}

// ldapVarAt recognises "%[mods]{ldap:...}" or "%[mods]{ldap_multi:...}"
// at tmpl[i]; it returns the modifiers, the text between the braces and
// the index after the "}".
func ldapVarAt(tmpl string, i int) (mods, key string, next int, ok bool) {
	j := i + 1
	for j < len(tmpl) && strings.IndexByte("LUERTMDX", tmpl[j]) >= 0 {
		j++
	}
	rest := tmpl[j:]
	if !strings.HasPrefix(rest, "{ldap:") && !strings.HasPrefix(rest, "{ldap_multi:") {
		return "", "", 0, false
	}
	end := strings.IndexByte(rest, '}')
	if end < 0 {
		return "", "", 0, false
	}
	return tmpl[i+1 : j], rest[1:end], j + end + 1, true
}

// ldapVarValue evaluates "ldap:attr[:default]" or
// "ldap_multi:attr[:sep[:default]]".
func ldapVarValue(key string, e *ldapx.Entry) string {
	kind, rest, _ := strings.Cut(key, ":")
	if kind == "ldap_multi" {
		parts := strings.SplitN(rest, ":", 3)
		sep, def := ",", ""
		if len(parts) > 1 && parts[1] != "" {
			sep = parts[1]
		}
		if len(parts) > 2 {
			def = parts[2]
		}
		vals := e.Values(parts[0])
		if len(vals) == 0 {
			return def
		}
		return strings.Join(vals, sep)
	}
	name, def, _ := strings.Cut(rest, ":")
	if vals := e.Values(name); len(vals) > 0 {
		return vals[0]
	}
	return def
}

// scanLDAPVars returns tmpl with its LDAP variables removed, and the
// attributes they name.
func scanLDAPVars(tmpl string) (plain string, attrs []string, err error) {
	var b strings.Builder
	for i := 0; i < len(tmpl); i++ {
		if tmpl[i] != '%' || i+1 >= len(tmpl) {
			b.WriteByte(tmpl[i])
			continue
		}
		if tmpl[i+1] == '%' || tmpl[i+1] == '$' {
			b.WriteString(tmpl[i : i+2])
			i++
			continue
		}
		_, key, next, ok := ldapVarAt(tmpl, i)
		if !ok {
			if strings.HasPrefix(strings.TrimLeft(tmpl[i+1:], "LUERTMDX"), "{ldap") {
				return "", nil, fmt.Errorf("unterminated %%{ldap:...} in %q", tmpl)
			}
			b.WriteByte('%')
			continue
		}
		_, rest, _ := strings.Cut(key, ":")
		name, _, _ := strings.Cut(rest, ":")
		attrs = append(attrs, name)
		i = next - 1
	}
	return b.String(), attrs, nil
}
