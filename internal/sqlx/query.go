package sqlx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Expander expands the %variables of a piece of template text. It must
// pass every substituted value through escape and return the result;
// text that is not a variable ("%%" aside) must come back unchanged.
// userdb.Expand with Vars.Escape set is one; Postfix's %s %u %d
// expansion is another.
type Expander func(text string, escape func(value string) string) string

// Stmt is a query ready to run: SQL text with placeholders and the
// values bound to them.
type Stmt struct {
	SQL  string
	Args []any
}

// ErrInvalidValue is returned by Build when an expanded value holds NUL
// or is not valid UTF-8: no text column can hold it, so no row can
// match; callers treat it as "no such key".
var ErrInvalidValue = errors.New("value holds NUL or invalid UTF-8")

// marker delimits the index of a value during Build; NUL cannot occur in
// a template (Build refuses it).
const marker = "\x00"

// Build turns a query template into a Stmt for the driver, binding every
// variable as a parameter (see the package documentation).
func Build(d Driver, template string, expand Expander) (Stmt, error) {
	if strings.Contains(template, marker) {
		return Stmt{}, errors.New("query template holds a NUL byte")
	}
	segs, err := scan(d, template)
	if err != nil {
		return Stmt{}, err
	}
	var b strings.Builder
	var args []any
	placeholder := func() string {
		if d == PgSQL {
			return "$" + strconv.Itoa(len(args))
		}
		return "?"
	}
	for _, s := range segs {
		switch s.kind {
		case segComment:
			b.WriteString(s.raw)
		case segCode:
			var vals []string
			out := expand(s.raw, collect(&vals))
			for _, part := range splitMarked(out, vals) {
				if part.isValue {
					if err := checkValue(part.text); err != nil {
						return Stmt{}, err
					}
					args = append(args, part.text)
					b.WriteString(placeholder())
				} else {
					b.WriteString(part.text)
				}
			}
		case segIdent:
			var vals []string
			out := expand(s.raw, collect(&vals))
			if len(vals) > 0 {
				return Stmt{}, fmt.Errorf("query template: variable inside the quoted identifier %s", truncate(s.raw))
			}
			b.WriteString(out)
		case segLiteral:
			if strings.Contains(s.text, marker) {
				return Stmt{}, errors.New("query template: string constant holds a NUL byte")
			}
			var vals []string
			out := expand(s.text, collect(&vals))
			if len(vals) == 0 {
				// No variables: keep the literal as written, only
				// "%%" becomes "%".
				b.WriteString(expand(s.raw, func(v string) string { return v }))
				continue
			}
			var val strings.Builder
			for _, part := range splitMarked(out, vals) {
				val.WriteString(part.text)
			}
			if err := checkValue(val.String()); err != nil {
				return Stmt{}, err
			}
			args = append(args, val.String())
			b.WriteString(placeholder())
		}
	}
	return Stmt{SQL: b.String(), Args: args}, nil
}

func checkValue(v string) error {
	if strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
		return ErrInvalidValue
	}
	return nil
}

// collect returns an escape function that records each value and
// stands a marked index in for it.
func collect(vals *[]string) func(string) string {
	return func(v string) string {
		*vals = append(*vals, v)
		return marker + strconv.Itoa(len(*vals)-1) + marker
	}
}

type markedPart struct {
	text    string
	isValue bool
}

// splitMarked cuts expanded text at the markers collect left.
func splitMarked(s string, vals []string) []markedPart {
	var out []markedPart
	for {
		i := strings.Index(s, marker)
		if i < 0 {
			if s != "" {
				out = append(out, markedPart{text: s})
			}
			return out
		}
		if i > 0 {
			out = append(out, markedPart{text: s[:i]})
		}
		rest := s[i+1:]
		j := strings.Index(rest, marker)
		n, _ := strconv.Atoi(rest[:j])
		out = append(out, markedPart{text: vals[n], isValue: true})
		s = rest[j+1:]
	}
}

type segKind int

const (
	segCode    segKind = iota
	segLiteral         // a string constant; text is its decoded value
	segIdent           // a quoted identifier
	segComment
)

type segment struct {
	kind segKind
	raw  string // as written, quotes included
	text string // decoded content of a literal
}

// scan cuts a query template into code, string literals, quoted
// identifiers and comments, following each dialect's lexical rules:
// MySQL (https://mariadb.com/kb/en/string-literals/): '...' and "..."
// are strings with backslash escapes and doubled quotes, `...` is an
// identifier, "#" and "-- " start line comments. PostgreSQL (§4.1.2 of
// its manual): '...' doubles quotes, E'...' also takes backslash escapes,
// $tag$...$tag$ is a dollar-quoted string, "..." an identifier. SQLite:
// '...' doubles quotes; "...", `...` and [...] are identifiers. All
// three have "--" and "/* */" comments.
func scan(d Driver, q string) ([]segment, error) {
	var segs []segment
	start := 0
	flush := func(i int) {
		if i > start {
			segs = append(segs, segment{kind: segCode, raw: q[start:i]})
		}
	}
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || (c == '"' && d == MySQL):
			backslash := d == MySQL
			litStart := i
			if d == PgSQL && i > start && (q[i-1] == 'E' || q[i-1] == 'e') && (i-1 == 0 || !isIdentByte(q[i-2])) {
				backslash = true
				litStart = i - 1
			}
			text, end, err := scanQuoted(q, i, c, backslash)
			if err != nil {
				return nil, err
			}
			flush(litStart)
			segs = append(segs, segment{kind: segLiteral, raw: q[litStart:end], text: text})
			i, start = end, end
		case c == '"' || c == '`' || (c == '[' && d == SQLite):
			closer := c
			if c == '[' {
				closer = ']'
			}
			j := i + 1
			for {
				k := strings.IndexByte(q[j:], closer)
				if k < 0 {
					return nil, fmt.Errorf("query template: unterminated quoted identifier at %q", truncate(q[i:]))
				}
				j += k + 1
				if closer != ']' && j < len(q) && q[j] == closer {
					j++
					continue
				}
				break
			}
			flush(i)
			segs = append(segs, segment{kind: segIdent, raw: q[i:j]})
			i, start = j, j
		case c == '-' && i+1 < len(q) && q[i+1] == '-' && (d != MySQL || i+2 >= len(q) || isSpace(q[i+2])),
			c == '#' && d == MySQL:
			j := strings.IndexByte(q[i:], '\n')
			end := len(q)
			if j >= 0 {
				end = i + j
			}
			flush(i)
			segs = append(segs, segment{kind: segComment, raw: q[i:end]})
			i, start = end, end
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			if j < 0 {
				return nil, errors.New("query template: unterminated /* comment")
			}
			end := i + 2 + j + 2
			flush(i)
			segs = append(segs, segment{kind: segComment, raw: q[i:end]})
			i, start = end, end
		case c == '$' && d == PgSQL && (i == 0 || !isIdentByte(q[i-1])):
			tagEnd := i + 1
			for tagEnd < len(q) && isIdentByte(q[tagEnd]) && !(tagEnd == i+1 && q[tagEnd] >= '0' && q[tagEnd] <= '9') {
				tagEnd++
			}
			if tagEnd >= len(q) || q[tagEnd] != '$' {
				i++
				continue
			}
			tag := q[i : tagEnd+1]
			k := strings.Index(q[tagEnd+1:], tag)
			if k < 0 {
				return nil, fmt.Errorf("query template: unterminated dollar-quoted string %s", truncate(tag))
			}
			end := tagEnd + 1 + k + len(tag)
			flush(i)
			segs = append(segs, segment{kind: segLiteral, raw: q[i:end], text: q[tagEnd+1 : tagEnd+1+k]})
			i, start = end, end
		default:
			i++
		}
	}
	flush(len(q))
	return segs, nil
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

// scanQuoted reads the string constant opening at q[i] with quote and
// returns its value and the index after its closing quote.
func scanQuoted(q string, i int, quote byte, backslash bool) (string, int, error) {
	var b strings.Builder
	j := i + 1
	for j < len(q) {
		c := q[j]
		switch {
		case c == '\\' && backslash && j+1 < len(q):
			b.WriteString(unescapeBackslash(q[j+1]))
			j += 2
		case c == quote && j+1 < len(q) && q[j+1] == quote:
			b.WriteByte(quote)
			j += 2
		case c == quote:
			return b.String(), j + 1, nil
		default:
			b.WriteByte(c)
			j++
		}
	}
	return "", 0, fmt.Errorf("query template: unterminated string at %q", truncate(q[i:]))
}

// unescapeBackslash is MySQL's table of backslash escapes
// (https://mariadb.com/kb/en/string-literals/#escape-sequences); \% and
// \_ keep their backslash, for LIKE patterns.
func unescapeBackslash(c byte) string {
	switch c {
	case '0':
		return "\x00"
	case 'b':
		return "\b"
	case 'n':
		return "\n"
	case 'r':
		return "\r"
	case 't':
		return "\t"
	case 'Z':
		return "\x1a"
	case '%', '_':
		return "\\" + string(c)
	}
	return string(c)
}
