package ldapx

import (
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// EscapeFilter returns s quoted for use as an assertion value in a search
// filter. RFC 4515 3: the octets "*" (0x2a), "(" (0x28), ")" (0x29), "\"
// (0x5c) and NUL must be written as "\" and two hex digits; so are other
// control characters and bytes that are not valid UTF-8 (the string form
// requires UTF-8, RFC 4515 3 "UTFMB"). Valid multi-byte UTF-8 is kept.
func EscapeFilter(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c == '*' || c == '(' || c == ')' || c == '\\' || c < 0x20 || c == 0x7f {
				escapeByte(&b, c)
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			escapeByte(&b, c)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// EscapeDN returns s quoted for use as an attribute value in a
// distinguished name ("uid=" + EscapeDN(name) + ",ou=people,..."). RFC
// 4514 2.4: '"', "+", ",", ";", "<", ">" and "\" get a backslash, as do a
// leading space or "#" and a trailing space; NUL is "\00". "=" is escaped
// too (allowed by 2.4, and what OpenLDAP's normaliser does), and so are
// other control characters and bytes that are not valid UTF-8, as "\XX"
// pairs.
func EscapeDN(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '+' || c == ',' || c == ';' || c == '<' || c == '>' || c == '\\' || c == '=':
				b.WriteByte('\\')
				b.WriteByte(c)
			case (c == ' ' || c == '#') && i == 0:
				b.WriteByte('\\')
				b.WriteByte(c)
			case c == ' ' && i == len(s)-1:
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20 || c == 0x7f:
				escapeByte(&b, c)
			default:
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			escapeByte(&b, c)
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func escapeByte(b *strings.Builder, c byte) {
	b.WriteByte('\\')
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&0xf])
}
