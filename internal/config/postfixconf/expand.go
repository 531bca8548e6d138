package postfixconf

import (
	"fmt"
	"strconv"
	"strings"
)

// Expansion limits. Postfix stops at a nesting depth of 100
// ("unreasonable macro call nesting"); the length cap keeps
// "a = $b$b$b…" chains from growing without bound.
const (
	maxExpandDepth  = 100
	maxExpandLength = 256 << 10
)

// expandProblem is something wrong found while expanding a value: an
// undefined name (Postfix expands it to "" silently), a loop, a syntax
// error or a limit reached.
type expandProblem struct {
	fatal bool // the value is unusable (loop, syntax, limit)
	msg   string
}

type expander struct {
	m        *Main
	stack    []string
	problems []expandProblem
	out      strings.Builder
	overflow bool
	work     *int // bytes and calls left for this whole expansion
}

// maxExpandWork bounds the total effort of one expansion, conditionals
// included, so that nested ${a?...} chains cannot take exponential time.
const maxExpandWork = 1 << 20

func newExpander(m *Main) *expander {
	w := maxExpandWork
	return &expander{m: m, work: &w}
}

// spend charges n units of work and reports whether any were left.
func (e *expander) spend(n int) bool {
	if *e.work < n {
		if !e.overflow {
			e.overflow = true
			e.problem(true, "expansion too complex (more than %d steps)", maxExpandWork)
		}
		*e.work = 0
		return false
	}
	*e.work -= n
	return true
}

// expandParam returns the expanded value of name and the problems met.
func (m *Main) expandParam(name string) (string, []expandProblem) {
	e := newExpander(m)
	e.param(name, 0)
	return e.out.String(), e.problems
}

// Expand expands $name, ${name}, $(name) and the conditional forms in s
// against m, the way Postfix's mac_expand(3) does for main.cf values.
// Undefined names expand to "". The error, if any, describes the first
// fatal problem (a loop, bad syntax, or the depth or length limit).
func (m *Main) Expand(s string) (string, error) {
	e := newExpander(m)
	e.text(s, 0)
	for _, p := range e.problems {
		if p.fatal {
			return e.out.String(), fmt.Errorf("%s", p.msg)
		}
	}
	return e.out.String(), nil
}

func (e *expander) problem(fatal bool, format string, args ...any) {
	if len(e.problems) < 20 {
		e.problems = append(e.problems, expandProblem{fatal: fatal, msg: fmt.Sprintf(format, args...)})
	}
}

func (e *expander) write(s string) {
	if e.overflow || !e.spend(len(s)) {
		return
	}
	if e.out.Len()+len(s) > maxExpandLength {
		e.overflow = true
		e.problem(true, "expanded value longer than %d bytes", maxExpandLength)
		return
	}
	e.out.WriteString(s)
}

// param appends the expanded value of the parameter name.
func (e *expander) param(name string, depth int) {
	if e.overflow || !e.spend(1) {
		return
	}
	for _, s := range e.stack {
		if s == name {
			e.problem(true, "parameter $%s refers to itself (loop %s -> %s)", name, strings.Join(e.stack, " -> "), name)
			return
		}
	}
	if depth > maxExpandDepth {
		e.problem(true, "unreasonable macro nesting (more than %d levels) at $%s", maxExpandDepth, name)
		return
	}
	if !e.m.defined(name) {
		e.problem(false, "undefined parameter $%s expands to nothing", name)
		return
	}
	e.stack = append(e.stack, name)
	e.text(e.m.rawValue(name, e), depth+1)
	e.stack = e.stack[:len(e.stack)-1]
}

// value returns the expansion of name as a string (for conditionals).
func (e *expander) value(name string, depth int) string {
	sub := &expander{m: e.m, stack: append([]string(nil), e.stack...), work: e.work}
	sub.param(name, depth)
	for _, p := range sub.problems {
		if len(e.problems) < 20 {
			e.problems = append(e.problems, p)
		}
	}
	if sub.overflow {
		e.overflow = true
	}
	return sub.out.String()
}

// text expands s, appending to e.out.
func (e *expander) text(s string, depth int) {
	for len(s) > 0 && !e.overflow {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			e.write(s)
			return
		}
		e.write(s[:i])
		s = s[i+1:]
		if s == "" {
			e.write("$")
			return
		}
		switch c := s[0]; {
		case c == '$':
			e.write("$")
			s = s[1:]
		case c == '{' || c == '(':
			closer := byte('}')
			if c == '(' {
				closer = ')'
			}
			end := matchClose(s, c, closer)
			if end < 0 {
				e.problem(true, "unbalanced %q in %q", string(c), truncate(s))
				e.write("$" + s)
				return
			}
			e.braced(s[1:end], depth)
			s = s[end+1:]
		default:
			j := 0
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j == 0 {
				// Postfix leaves a "$" that starts no name as is.
				e.write("$")
				continue
			}
			e.param(s[:j], depth)
			s = s[j:]
		}
	}
}

// braced handles the inside of ${...}: a name, or name?value,
// name:value, and the Postfix 3.0 forms name?{value}:{value}.
func (e *expander) braced(inner string, depth int) {
	inner = strings.TrimSpace(inner)
	j := 0
	for j < len(inner) && isNameByte(inner[j]) {
		j++
	}
	name, rest := inner[:j], strings.TrimLeft(inner[j:], " \t")
	if name == "" {
		if strings.HasPrefix(inner, "{") {
			e.relational(inner, depth)
		} else {
			e.problem(true, "empty parameter name in ${%s}", truncate(inner))
		}
		return
	}
	if rest == "" {
		e.param(name, depth)
		return
	}
	op := rest[0]
	if op != '?' && op != ':' {
		e.problem(true, "bad character %q after ${%s", string(op), name)
		return
	}
	rest = rest[1:]
	ifSet, ifUnset := "", ""
	if b := strings.TrimLeft(rest, " \t"); strings.HasPrefix(b, "{") {
		// ${name?{a}} or ${name?{a}:{b}} (Postfix 3.0).
		end := matchClose(b, '{', '}')
		if end < 0 {
			e.problem(true, "unbalanced '{' in ${%s%c%s}", name, op, truncate(rest))
			return
		}
		first := b[1:end]
		tail := strings.TrimLeft(b[end+1:], " \t")
		second, hasSecond := "", false
		if tail != "" {
			if tail[0] != ':' {
				e.problem(true, "expected ':' after {...} in ${%s%c...}", name, op)
				return
			}
			t := strings.TrimLeft(tail[1:], " \t")
			if !strings.HasPrefix(t, "{") || matchClose(t, '{', '}') != len(strings.TrimRight(t, " \t"))-1 {
				e.problem(true, "expected {value} after ':' in ${%s%c...}", name, op)
				return
			}
			second, hasSecond = t[1:matchClose(t, '{', '}')], true
		}
		if op == '?' {
			ifSet, ifUnset = strings.TrimSpace(first), strings.TrimSpace(second)
		} else {
			if hasSecond {
				e.problem(true, "${%s:{a}:{b}} is not a valid form; use ${%s?{a}:{b}}", name, name)
				return
			}
			ifUnset = strings.TrimSpace(first)
		}
	} else if op == '?' {
		ifSet = rest
	} else {
		ifUnset = rest
	}
	if e.value(name, depth) != "" {
		e.text(ifSet, depth+1)
	} else {
		e.text(ifUnset, depth+1)
	}
}

// matchClose returns the index in s (which starts with open) of the
// matching close byte, or -1.
func matchClose(s string, open, closer byte) int {
	level := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case open:
			level++
		case closer:
			level--
			if level == 0 {
				return i
			}
		}
	}
	return -1
}

func isNameByte(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// defined reports whether name has a value source: set explicitly or
// known to the registry.
func (m *Main) defined(name string) bool {
	if _, ok := m.params[name]; ok {
		return true
	}
	_, ok := Lookup(name)
	return ok
}

// references returns the parameter names that s refers to with $name,
// ${name...} or $(name).
func references(s string) []string {
	var out []string
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i+1 >= len(s) {
			return out
		}
		s = s[i+1:]
		switch s[0] {
		case '$':
			s = s[1:]
		case '{', '(':
			j := 1
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j > 1 {
				out = append(out, s[1:j])
			}
			s = s[j:]
		default:
			j := 0
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			if j > 0 {
				out = append(out, s[:j])
			}
			s = s[j:]
		}
	}
}

// relational handles the Postfix 3.0 form
// ${{text1} op {text2} ? {value1} : {value2}} (postconf(5)): both texts
// are expanded, == and != compare them as strings, < <= > >= as
// decimal numbers; ":{value2}" may be left out.
func (e *expander) relational(inner string, depth int) {
	bad := func(why string) {
		e.problem(true, "bad relational expression ${%s}: %s", truncate(inner), why)
	}
	group := func(s string) (string, string, bool) {
		s = strings.TrimLeft(s, " \t")
		if !strings.HasPrefix(s, "{") {
			return "", "", false
		}
		end := matchClose(s, '{', '}')
		if end < 0 {
			return "", "", false
		}
		return strings.TrimSpace(s[1:end]), s[end+1:], true
	}
	left, rest, ok := group(inner)
	if !ok {
		bad("expected {text}")
		return
	}
	rest = strings.TrimLeft(rest, " \t")
	op := ""
	for _, o := range []string{"==", "!=", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(rest, o) {
			op = o
			break
		}
	}
	if op == "" {
		bad("expected ==, !=, <, <=, > or >=")
		return
	}
	right, rest, ok := group(rest[len(op):])
	if !ok {
		bad("expected {text} after " + op)
		return
	}
	rest = strings.TrimLeft(rest, " \t")
	if !strings.HasPrefix(rest, "?") {
		bad("expected ? after the comparison")
		return
	}
	ifTrue, rest, ok := group(rest[1:])
	if !ok {
		bad("expected {value} after ?")
		return
	}
	ifFalse := ""
	if rest = strings.TrimSpace(rest); rest != "" {
		if !strings.HasPrefix(rest, ":") {
			bad("expected :{value}")
			return
		}
		var tail string
		if ifFalse, tail, ok = group(rest[1:]); !ok || strings.TrimSpace(tail) != "" {
			bad("expected :{value} at the end")
			return
		}
	}
	a, b := e.sub(left, depth), e.sub(right, depth)
	var result bool
	switch op {
	case "==":
		result = a == b
	case "!=":
		result = a != b
	default:
		x, errA := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
		y, errB := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
		if errA != nil || errB != nil {
			bad(fmt.Sprintf("%q %s %q: %s compares numbers", a, op, b, op))
			return
		}
		switch op {
		case "<":
			result = x < y
		case "<=":
			result = x <= y
		case ">":
			result = x > y
		case ">=":
			result = x >= y
		}
	}
	if result {
		e.text(ifTrue, depth+1)
	} else {
		e.text(ifFalse, depth+1)
	}
}

// sub expands s on its own (for a comparison operand).
func (e *expander) sub(s string, depth int) string {
	sub := &expander{m: e.m, stack: append([]string(nil), e.stack...), work: e.work}
	sub.text(s, depth+1)
	for _, p := range sub.problems {
		if len(e.problems) < 20 {
			e.problems = append(e.problems, p)
		}
	}
	if sub.overflow {
		e.overflow = true
	}
	return sub.out.String()
}
