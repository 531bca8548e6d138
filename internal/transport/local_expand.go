package transport

import "strings"

// expandLocal expands local(8)'s $name, ${name} and the conditional
// forms ${name?text} and ${name:text} in a forward_path element (or
// luser_relay) with vars. A plain reference to a name vars does not
// define makes ok false: forward_path elements that use it are skipped,
// as Postfix's local(8) does with "$extension" when there is none.
func expandLocal(s string, vars map[string]string) (out string, ok bool) {
	var b strings.Builder
	ok = true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		var name, op, text string
		switch {
		case s[i+1] == '$':
			b.WriteByte('$')
			i++
			continue
		case s[i+1] == '{' || s[i+1] == '(':
			closer := byte('}')
			if s[i+1] == '(' {
				closer = ')'
			}
			end := strings.IndexByte(s[i+2:], closer)
			if end < 0 {
				b.WriteString(s[i:])
				return b.String(), ok
			}
			inner := s[i+2 : i+2+end]
			i += 2 + end
			name = inner
			if j := strings.IndexAny(inner, "?:"); j >= 0 {
				name, op, text = inner[:j], inner[j:j+1], inner[j+1:]
			}
		default:
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == i+1 {
				b.WriteByte(c)
				continue
			}
			name = s[i+1 : j]
			i = j - 1
		}
		v, defined := vars[strings.ToLower(name)]
		defined = defined && v != ""
		switch op {
		case "?":
			if defined {
				t, tok := expandLocal(text, vars)
				ok = ok && tok
				b.WriteString(t)
			}
		case ":":
			if !defined {
				t, tok := expandLocal(text, vars)
				ok = ok && tok
				b.WriteString(t)
			}
		default:
			if !defined {
				ok = false
			}
			b.WriteString(v)
		}
	}
	return b.String(), ok
}
