package smtpd

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// parseCommand splits a command line into its upper-cased verb and the
// argument text (RFC 5321 4.1.1: verbs are case-insensitive).
func parseCommand(line string) (verb, arg string) {
	line = strings.TrimRight(line, " \t")
	i := strings.IndexAny(line, " \t")
	if i < 0 {
		return strings.ToUpper(line), ""
	}
	return strings.ToUpper(line[:i]), strings.TrimLeft(line[i+1:], " \t")
}

// Path is an RFC 5321 reverse-path or forward-path (4.1.2).
type Path struct {
	Raw    string // what the client sent between the angle brackets
	Route  string // the source route "@a,@b" (RFC 5321 C), stripped from the address
	Local  string // the local part, dequoted (Postfix's internal form)
	Domain string // the domain as sent, "" when unqualified
	Null   bool   // the null path <>
	Quoted bool   // the local part was a quoted string
}

// Address returns the address in internal form: dequoted local part, "@",
// domain in lower case without a trailing dot.
func (p Path) Address() string {
	if p.Null {
		return ""
	}
	if p.Domain == "" {
		return p.Local
	}
	return p.Local + "@" + p.DomainKey()
}

// Display is the address as Postfix's smtpd names it in replies and
// logs: its internal form (smtpd.c extract_addr, tok822_internalize),
// which is the source route stripped, the local part unquoted and the
// domain as sent ("<@a.example:\"u@x\"@B.example.>" shows as
// "u@x@B.example."). The null path is "".
func (p Path) Display() string {
	if p.Null || p.Domain == "" {
		return p.Local
	}
	return p.Local + "@" + p.Domain
}

// DomainKey is the domain as the routing tables see it: lower case, one
// trailing dot removed (Postfix's resolve strips it).
func (p Path) DomainKey() string {
	return strings.ToLower(strings.TrimSuffix(p.Domain, "."))
}

// ASCII says whether the path needs no SMTPUTF8 (RFC 6531 3.3).
func (p Path) ASCII() bool {
	for i := 0; i < len(p.Raw); i++ {
		if p.Raw[i] >= 0x80 {
			return false
		}
	}
	return true
}

// Param is one ESMTP parameter of MAIL or RCPT (RFC 5321 4.1.2
// esmtp-param): keyword upper-cased, value as given ("" when absent).
type Param struct {
	Key, Value string
	HasValue   bool
}

var errPathSyntax = errors.New("bad address syntax")

// parseMailArg parses the argument of MAIL ("FROM:") or RCPT ("TO:"):
// the keyword, a path and ESMTP parameters. Like Postfix with
// strict_rfc821_envelopes = no it accepts spaces after the colon and a
// path without angle brackets. A path syntax error is errPathSyntax; other
// errors mean the whole command is malformed.
func parseMailArg(arg, keyword string) (Path, []Param, error) {
	if len(arg) < len(keyword)+1 || !strings.EqualFold(arg[:len(keyword)], keyword) || arg[len(keyword)] != ':' {
		return Path{}, nil, fmt.Errorf("missing %s:", keyword)
	}
	rest := strings.TrimLeft(arg[len(keyword)+1:], " \t")
	if rest == "" {
		return Path{}, nil, fmt.Errorf("missing path")
	}
	var raw string
	if rest[0] == '<' {
		end, err := closingBracket(rest)
		if err != nil {
			return Path{}, nil, errPathSyntax
		}
		raw, rest = rest[1:end], rest[end+1:]
	} else {
		// Postfix's lenient form: the address ends at white space.
		i := strings.IndexAny(rest, " \t")
		if i < 0 {
			i = len(rest)
		}
		raw, rest = rest[:i], rest[i:]
		if raw == "" || strings.ContainsAny(raw, "<>") {
			return Path{}, nil, errPathSyntax
		}
	}
	if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return Path{}, nil, errPathSyntax
	}
	p, err := parsePath(raw)
	if err != nil {
		return Path{}, nil, err
	}
	params, err := parseParams(rest)
	if err != nil {
		return Path{}, nil, err
	}
	return p, params, nil
}

// closingBracket finds the '>' that ends the path starting at s[0]=='<',
// skipping quoted strings and backslash escapes.
func closingBracket(s string) (int, error) {
	inQuote := false
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '>' && !inQuote:
			return i, nil
		case c == '<' && !inQuote:
			return 0, errPathSyntax
		}
	}
	return 0, errPathSyntax
}

// parsePath parses what is between the angle brackets: "" (the null path),
// an optional source route "@a,@b:" (RFC 5321 4.1.2 A-d-l, kept in Route
// and ignored as RFC 5321 C allows), then Mailbox = Local-part "@" (Domain
// / address-literal). Postfix is lenient about the local part, so this
// accepts unquoted "@", "%" and "!" in it (the relay checks treat them as
// routing); the domain is split off at the last "@" outside quotes. An
// address without a domain is accepted (unqualified, e.g. <postmaster>).
func parsePath(raw string) (Path, error) {
	p := Path{Raw: raw}
	if raw == "" {
		p.Null = true
		return p, nil
	}
	if !utf8.ValidString(raw) {
		return Path{}, errPathSyntax
	}
	s := raw
	if s[0] == '@' {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			return Path{}, errPathSyntax
		}
		p.Route = s[:i]
		for _, hop := range strings.Split(p.Route, ",") {
			if len(hop) < 2 || hop[0] != '@' || !validDomain(hop[1:]) {
				return Path{}, errPathSyntax
			}
		}
		s = s[i+1:]
	}
	// Find the last '@' outside a quoted string.
	at, inQuote := -1, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && inQuote:
			i++
		case c == '"':
			inQuote = !inQuote
		case c == '@' && !inQuote:
			at = i
		}
	}
	if inQuote {
		return Path{}, errPathSyntax
	}
	local := s
	if at >= 0 {
		local, p.Domain = s[:at], s[at+1:]
		if !validDomain(p.Domain) {
			return Path{}, errPathSyntax
		}
	}
	l, quoted, err := parseLocalPart(local)
	if err != nil {
		return Path{}, err
	}
	p.Local, p.Quoted = l, quoted
	return p, nil
}

// parseLocalPart accepts a Quoted-string (RFC 5321 4.1.2) and returns it
// dequoted, or a dot-string loosened as Postfix does: any printable
// character except the specials that cannot appear unquoted in an SMTP
// command.
func parseLocalPart(s string) (string, bool, error) {
	if s == "" {
		return "", false, errPathSyntax
	}
	if s[0] == '"' {
		if len(s) < 2 || s[len(s)-1] != '"' {
			return "", false, errPathSyntax
		}
		var b strings.Builder
		body := s[1 : len(s)-1]
		for i := 0; i < len(body); i++ {
			c := body[i]
			if c == '\\' {
				i++
				if i == len(body) {
					return "", false, errPathSyntax
				}
				c = body[i]
			} else if c == '"' {
				return "", false, errPathSyntax
			}
			if c < 0x20 || c == 0x7f {
				return "", false, errPathSyntax
			}
			b.WriteByte(c)
		}
		if b.Len() == 0 {
			return "", false, errPathSyntax
		}
		return b.String(), true, nil
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte("<>()[]\\,;:\"", c) >= 0 {
			return "", false, errPathSyntax
		}
	}
	return s, false, nil
}

// validDomain accepts a host name (letters, digits, hyphens, underscores
// as Postfix tolerates, UTF-8 U-labels for SMTPUTF8, one optional
// trailing dot) or an address literal "[1.2.3.4]" / "[IPv6:…]" (RFC 5321
// 4.1.3).
func validDomain(d string) bool {
	if d == "" || len(d) > 255 {
		return false
	}
	if d[0] == '[' {
		return validAddressLiteral(d)
	}
	d = strings.TrimSuffix(d, ".")
	if d == "" {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			case r >= 0x80 && r != utf8.RuneError:
			default:
				return false
			}
		}
	}
	return true
}

func validAddressLiteral(d string) bool {
	if len(d) < 3 || d[len(d)-1] != ']' {
		return false
	}
	inner := d[1 : len(d)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		a, err := netip.ParseAddr(inner[5:])
		return err == nil && a.Is6() && a.Zone() == ""
	}
	a, err := netip.ParseAddr(inner)
	return err == nil && a.Is4()
}

// parseParams splits " KEY=VALUE KEY" (RFC 5321 4.1.2 Mail-parameters).
func parseParams(s string) ([]Param, error) {
	var params []Param
	for _, f := range strings.Fields(s) {
		k, v, has := strings.Cut(f, "=")
		if k == "" || (has && v == "") {
			return nil, fmt.Errorf("bad parameter %q", f)
		}
		for i := 0; i < len(k); i++ {
			c := k[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return nil, fmt.Errorf("bad parameter keyword %q", k)
			}
		}
		params = append(params, Param{Key: strings.ToUpper(k), Value: v, HasValue: has})
	}
	return params, nil
}

// decodeXtext decodes RFC 3461 4 xtext: printable ASCII except "+" and
// "=", with "+XX" (two upper-case hex digits) for any other octet.
func decodeXtext(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '+':
			if i+2 >= len(s) || !isUpperHex(s[i+1]) || !isUpperHex(s[i+2]) {
				return "", fmt.Errorf("bad xtext escape in %q", s)
			}
			n, _ := strconv.ParseUint(s[i+1:i+3], 16, 8)
			b.WriteByte(byte(n))
			i += 2
		case c < '!' || c > '~' || c == '=':
			return "", fmt.Errorf("bad xtext character in %q", s)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func isUpperHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'A' && c <= 'F' }

// parseNotify checks an RFC 3461 4.1 NOTIFY value: "NEVER" or a list of
// SUCCESS, FAILURE, DELAY; it returns the value upper-cased.
func parseNotify(v string) (string, error) {
	v = strings.ToUpper(v)
	if v == "NEVER" {
		return v, nil
	}
	seen := map[string]bool{}
	for _, k := range strings.Split(v, ",") {
		if (k != "SUCCESS" && k != "FAILURE" && k != "DELAY") || seen[k] {
			return "", fmt.Errorf("bad NOTIFY %q", v)
		}
		seen[k] = true
	}
	return v, nil
}

// parseORCPT checks an RFC 3461 4.2 ORCPT value "addr-type;xtext" and
// returns it with the xtext decoded.
func parseORCPT(v string) (string, error) {
	typ, addr, ok := strings.Cut(v, ";")
	if !ok || typ == "" || addr == "" {
		return "", fmt.Errorf("bad ORCPT %q", v)
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return "", fmt.Errorf("bad ORCPT type %q", typ)
		}
	}
	dec, err := decodeXtext(addr)
	if err != nil {
		// RFC 6533 utf-8-addr-xtext is also allowed for utf-8 types.
		if strings.EqualFold(typ, "utf-8") && utf8.ValidString(addr) {
			return typ + ";" + addr, nil
		}
		return "", err
	}
	return typ + ";" + dec, nil
}
