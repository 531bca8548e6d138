package userdb

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// Dovecot 2.3 %variables
// (https://doc.dovecot.org/2.3/configuration_manual/config_file/config_variables/),
// as they appear in passdb/userdb args, default_fields, override_fields and
// mail_location. The syntax after "%" is
//
//	[-][offset.]width] modifiers  key
//
// where key is one character ("%u") or a long name in braces ("%{user}"),
// modifiers are single letters (L lower case, U upper case, R reverse,
// T trim trailing whitespace, E backslash-escape, M MD5 hex, D domain as
// "dc=a,dc=b"), and offset/width cut the value ("%1n" first character,
// "%2.1n" third character, "%-1.1n" last one). "%%" is a literal "%".
//
// Expansion is a single pass: a value substituted into the template is
// never scanned again, so a "%" inside a user name stays a "%".

// Vars holds the values the variables expand to. Empty fields expand to
// the empty string.
type Vars struct {
	User       string // %u %{user}: full user name, "info@example.jp"
	Service    string // %s %{service}: "imap", "pop3", "smtp", "lmtp", ...
	Home       string // %h %{home}
	LocalIP    string // %l %{lip}
	RemoteIP   string // %r %{rip}
	LocalPort  string // %a %{lport}
	RemotePort string // %b %{rport}
	Session    string // %{session}
	OrigUser   string // %{orig_user}: the name the client sent, before username_format
	UID, GID   string // %{uid} %{gid} (mail process context)
	Secured    bool   // %c %{secured}: "secured" on TLS or local connections
	// Fields answers %{passdb:name} and %{userdb:name} lookups; may be nil.
	Fields func(kind, name string) (string, bool)
	// Escape, when set, is applied to every substituted value: a back end
	// passes its quoting here (LDAP filter escaping, SQL quoting, path
	// component cutting) so that user-controlled text cannot change the
	// meaning of the template.
	Escape func(string) string
}

// user part and domain part, as Dovecot splits at the first "@".
func splitUser(u string) (name, domain string) {
	name, domain, _ = strings.Cut(u, "@")
	return name, domain
}

// lookup returns the value of a one-letter or long variable.
func (v *Vars) lookup(key string) (string, bool) {
	switch key {
	case "u", "user":
		return v.User, true
	case "n", "username":
		n, _ := splitUser(v.User)
		return n, true
	case "d", "domain":
		_, d := splitUser(v.User)
		return d, true
	case "s", "service":
		return v.Service, true
	case "h", "home":
		return v.Home, true
	case "l", "lip":
		return v.LocalIP, true
	case "r", "rip":
		return v.RemoteIP, true
	case "a", "lport":
		return v.LocalPort, true
	case "b", "rport":
		return v.RemotePort, true
	case "session":
		return v.Session, true
	case "orig_user":
		return v.origUser(), true
	case "orig_username":
		n, _ := splitUser(v.origUser())
		return n, true
	case "orig_domain":
		_, d := splitUser(v.origUser())
		return d, true
	case "domain_first":
		_, d := splitUser(v.User)
		first, _, _ := strings.Cut(d, ".")
		return first, true
	case "domain_last":
		_, d := splitUser(v.User)
		return d[strings.LastIndexByte(d, '.')+1:], true
	case "c", "secured":
		if v.Secured {
			return "secured", true
		}
		return "", true
	case "uid", "i":
		return v.UID, true
	case "gid":
		return v.GID, true
	}
	if kind, name, ok := strings.Cut(key, ":"); ok && (kind == "passdb" || kind == "userdb") {
		// "%{userdb:name:default}" gives a default when the field is unset.
		name, def, _ := strings.Cut(name, ":")
		if v.Fields != nil {
			if val, ok := v.Fields(kind, name); ok {
				return val, true
			}
		}
		return def, true
	}
	return "", false
}

func (v *Vars) origUser() string {
	if v.OrigUser != "" {
		return v.OrigUser
	}
	return v.User
}

// Expand substitutes the %variables of template. Unknown variables are
// left as written; use ExpandCheck to report them.
func Expand(template string, v Vars) string {
	s, _ := ExpandCheck(template, v)
	return s
}

// ExpandCheck is Expand that also reports the first unknown variable or
// modifier. The returned string is the same as Expand's.
func ExpandCheck(template string, v Vars) (string, error) {
	if !strings.Contains(template, "%") {
		return template, nil
	}
	var b strings.Builder
	var firstErr error
	for i := 0; i < len(template); i++ {
		c := template[i]
		if c != '%' || i+1 >= len(template) {
			b.WriteByte(c)
			continue
		}
		start := i
		val, next, err := expandOne(template, i+1, &v)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			b.WriteString(template[start:next])
		} else {
			b.WriteString(val)
		}
		i = next - 1
	}
	return b.String(), firstErr
}

// expandOne expands the variable starting after the "%" at template[i-1].
// It returns the value and the index just past the variable.
func expandOne(t string, i int, v *Vars) (string, int, error) {
	if t[i] == '%' {
		return "%", i + 1, nil
	}
	negOffset := false
	if t[i] == '-' {
		negOffset = true
		i++
	}
	num := func() (int, bool) {
		j := i
		for i < len(t) && t[i] >= '0' && t[i] <= '9' && i-j < 6 {
			i++
		}
		if i == j {
			return 0, false
		}
		n, _ := strconv.Atoi(t[j:i])
		return n, true
	}
	width, hasWidth := num()
	offset := 0
	if i < len(t) && t[i] == '.' {
		i++
		offset = width
		width, hasWidth = num()
	}
	var mods []byte
	for i+1 < len(t) && strings.IndexByte("LUERTMDX", t[i]) >= 0 && len(mods) < 8 {
		mods = append(mods, t[i])
		i++
	}
	if i >= len(t) {
		return "", len(t), fmt.Errorf("incomplete variable at end of %q", t)
	}
	var key string
	if t[i] == '{' {
		end := strings.IndexByte(t[i:], '}')
		if end < 0 {
			return "", i + 1, fmt.Errorf("unterminated %%{ in %q", t)
		}
		key = t[i+1 : i+end]
		i += end + 1
	} else {
		key = t[i : i+1]
		i++
	}
	val, ok := v.lookup(key)
	if !ok {
		return "", i, fmt.Errorf("unknown variable %%%s", displayKey(key))
	}
	if v.Escape != nil {
		val = v.Escape(val)
	}
	for _, m := range mods {
		val = applyModifier(m, val)
	}
	// Offset counts from the end when negative ("%-1.1n" is the last
	// character); width cuts what remains. Dovecot counts bytes.
	if negOffset {
		if !hasWidth && offset == 0 {
			offset, width, hasWidth = width, 0, false
		}
		offset = len(val) - offset
		if offset < 0 {
			offset = 0
		}
	}
	if offset > len(val) {
		offset = len(val)
	}
	val = val[offset:]
	if hasWidth && width < len(val) {
		val = val[:width]
	}
	return val, i, nil
}

func displayKey(k string) string {
	if len(k) == 1 {
		return k
	}
	return "{" + k + "}"
}

func applyModifier(m byte, s string) string {
	switch m {
	case 'L':
		return strings.ToLower(s)
	case 'U':
		return strings.ToUpper(s)
	case 'E':
		// Dovecot str_escape(): backslash before '"', '\'' and '\\'.
		var b strings.Builder
		for i := 0; i < len(s); i++ {
			if s[i] == '"' || s[i] == '\'' || s[i] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[i])
		}
		return b.String()
	case 'R':
		r := []byte(s)
		for i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {
			r[i], r[j] = r[j], r[i]
		}
		return string(r)
	case 'T':
		return strings.TrimRight(s, " \t\r\n")
	case 'M':
		sum := md5.Sum([]byte(s))
		return hex.EncodeToString(sum[:])
	case 'D':
		// "example.com" -> "dc=example,dc=com"
		if s == "" {
			return s
		}
		return "dc=" + strings.ReplaceAll(s, ".", ",dc=")
	case 'X':
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return ""
		}
		return strconv.FormatUint(n, 16)
	}
	return s
}

// HasVars reports whether template contains a variable other than "%%".
func HasVars(template string) bool {
	for i := 0; i+1 < len(template); i++ {
		if template[i] == '%' {
			if template[i+1] != '%' {
				return true
			}
			i++
		}
	}
	return false
}
