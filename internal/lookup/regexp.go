package lookup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dlclark/regexp2"
)

// backtrackTimeout bounds one regexp2 match (pcre: patterns that need
// backtracking), so a pathological pattern cannot hang a lookup.
const backtrackTimeout = 100 * time.Millisecond

// maxPatternFile bounds a regexp/pcre table's size.
const maxPatternFile = 16 << 20

// matcher is a compiled pattern: RE2 (Go's regexp) or regexp2.
type matcher interface {
	// match returns the submatches (index 0 the whole match; "" for a
	// group that did not take part) or nil.
	match(s string) ([]string, error)
	groups() int
}

type re2Matcher struct{ re *regexp.Regexp }

func (m re2Matcher) match(s string) ([]string, error) {
	idx := m.re.FindStringSubmatchIndex(s)
	if idx == nil {
		return nil, nil
	}
	out := make([]string, len(idx)/2)
	for i := range out {
		if idx[2*i] >= 0 {
			out[i] = s[idx[2*i]:idx[2*i+1]]
		}
	}
	return out, nil
}

func (m re2Matcher) groups() int { return m.re.NumSubexp() }

type backtrackMatcher struct{ re *regexp2.Regexp }

func (m backtrackMatcher) match(s string) ([]string, error) {
	mt, err := m.re.FindStringMatch(s)
	if err != nil {
		return nil, fmt.Errorf("pattern %q: %w", m.re.String(), err)
	}
	if mt == nil {
		return nil, nil
	}
	gs := mt.Groups()
	out := make([]string, len(gs))
	for i, g := range gs {
		if len(g.Captures) > 0 {
			out[i] = g.String()
		}
	}
	return out, nil
}

func (m backtrackMatcher) groups() int { return len(m.re.GetGroupNumbers()) - 1 }

// rule is one line of a regexp/pcre table.
type rule struct {
	line   int
	kind   ruleKind
	re     matcher
	negate bool
	result []tmplPart
	endif  int // for ruleIf: index of the matching endif
}

type ruleKind byte

const (
	ruleMatch ruleKind = iota
	ruleIf
	ruleEndif
)

// tmplPart is literal text or a $n reference (group >= 0).
type tmplPart struct {
	text  string
	group int
}

// patternTable is a regexp: or pcre: table.
type patternTable struct {
	spec  string
	rules []rule
}

// dialect says how a pattern file's patterns are compiled.
type dialect struct {
	name    string
	compile func(pattern, flags string) (matcher, error)
}

func openRegexp(s Spec, _ *Options, _ *Registry) (Table, error) {
	return openPatternFile(s, dialect{"regexp", compilePOSIX})
}

func openPCRE(s Spec, _ *Options, _ *Registry) (Table, error) {
	return openPatternFile(s, dialect{"pcre", compilePCRE})
}

func openPatternFile(s Spec, d dialect) (Table, error) {
	f, err := os.Open(s.Name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxPatternFile {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d allowed", s.Name, fi.Size(), maxPatternFile)
	}
	rules, err := parsePatterns(f, s.Name, d.name)
	if err != nil {
		return nil, err
	}
	return &patternTable{spec: s.String(), rules: rules}, nil
}

// parsePatterns reads a regexp_table(5) (dialectName "regexp") or
// pcre_table(5) ("pcre") file. Errors carry file:line.
func parsePatterns(r io.Reader, file, dialectName string) ([]rule, error) {
	d := dialect{"regexp", compilePOSIX}
	if dialectName == "pcre" {
		d = dialect{"pcre", compilePCRE}
	}
	var rules []rule
	var open []int // indexes of unclosed if rules
	err := readLogical(r, func(l logicalLine) error {
		rl, err := parsePatternLine(l.text, d)
		if err != nil {
			return fmt.Errorf("%s:%d: %w", file, l.line, err)
		}
		rl.line = l.line
		switch rl.kind {
		case ruleIf:
			open = append(open, len(rules))
		case ruleEndif:
			if len(open) == 0 {
				return fmt.Errorf("%s:%d: endif without matching if", file, l.line)
			}
			rules[open[len(open)-1]].endif = len(rules)
			open = open[:len(open)-1]
		}
		rules = append(rules, rl)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(open) > 0 {
		return nil, fmt.Errorf("%s:%d: if without matching endif", file, rules[open[len(open)-1]].line)
	}
	return rules, nil
}

// parsePatternLine parses "[!]/pattern/flags result", "if [!]/pattern/flags"
// or "endif".
func parsePatternLine(text string, d dialect) (rule, error) {
	p := strings.TrimSpace(text)
	if word(p) == "endif" {
		if strings.TrimSpace(p[len("endif"):]) != "" {
			return rule{}, errors.New("extra text after endif")
		}
		return rule{kind: ruleEndif}, nil
	}
	kind := ruleMatch
	if word(p) == "if" {
		kind = ruleIf
		p = strings.TrimLeft(p[2:], " \t")
	}
	negate := false
	for strings.HasPrefix(p, "!") {
		negate = !negate
		p = strings.TrimLeft(p[1:], " \t")
	}
	pattern, flags, rest, err := splitPattern(p)
	if err != nil {
		return rule{}, err
	}
	re, err := d.compile(pattern, flags)
	if err != nil {
		return rule{}, err
	}
	rl := rule{kind: kind, re: re, negate: negate}
	rest = strings.TrimSpace(rest)
	if kind == ruleIf {
		if rest != "" {
			return rule{}, errors.New("extra text after if pattern")
		}
		return rl, nil
	}
	rl.result, err = parseTemplate(rest, re.groups())
	if err != nil {
		return rule{}, err
	}
	if negate {
		for _, t := range rl.result {
			if t.group >= 0 {
				return rule{}, errors.New("$number substitution in the result of a negated pattern")
			}
		}
	}
	return rl, nil
}

// word returns the leading run of letters of s when it is followed by
// something other than a letter or digit (a keyword such as "if").
func word(s string) string {
	i := 0
	for i < len(s) && (s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z') {
		i++
	}
	if i < len(s) && s[i] >= '0' && s[i] <= '9' {
		return ""
	}
	return strings.ToLower(s[:i])
}

// splitPattern cuts "/pattern/flags rest": the first character is the
// delimiter; a backslash escapes the next character (and stays in the
// pattern); flags are the letters after the closing delimiter.
func splitPattern(p string) (pattern, flags, rest string, err error) {
	if p == "" {
		return "", "", "", errors.New("missing pattern")
	}
	delim := p[0]
	if isSpace(delim) || delim == '\\' || delim >= 'a' && delim <= 'z' || delim >= 'A' && delim <= 'Z' || delim >= '0' && delim <= '9' {
		return "", "", "", fmt.Errorf("pattern must start with a delimiter such as \"/\", not %q", delim)
	}
	i := 1
	for ; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
			continue
		}
		if p[i] == delim {
			break
		}
	}
	if i >= len(p) {
		return "", "", "", fmt.Errorf("missing closing delimiter %q", delim)
	}
	pattern = p[1:i]
	j := i + 1
	for j < len(p) && !isSpace(p[j]) {
		j++
	}
	return pattern, p[i+1 : j], p[j:], nil
}

// parseTemplate splits a result into text and $n / ${n} references;
// "$$" is a literal "$". A reference to a group the pattern lacks is an
// error, as in Postfix.
func parseTemplate(s string, ngroups int) ([]tmplPart, error) {
	var out []tmplPart
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			out = append(out, tmplPart{text: lit.String(), group: -1})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			lit.WriteByte(s[i])
			continue
		}
		var name string
		switch c := s[i+1]; {
		case c == '$':
			lit.WriteByte('$')
			i++
			continue
		case c == '{' || c == '(':
			closer := byte('}')
			if c == '(' {
				closer = ')'
			}
			end := strings.IndexByte(s[i+2:], closer)
			if end < 0 {
				return nil, fmt.Errorf("unbalanced %q in result", c)
			}
			name = s[i+2 : i+2+end]
			i += 2 + end
		case isNameChar(c):
			j := i + 1
			for j < len(s) && isNameChar(s[j]) {
				j++
			}
			name = s[i+1 : j]
			i = j - 1
		default:
			lit.WriteByte('$')
			continue
		}
		n, err := strconv.Atoi(name)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("non-numeric replacement index $%s in result", name)
		}
		if n > ngroups {
			return nil, fmt.Errorf("out of range replacement index $%d: the pattern has %d groups", n, ngroups)
		}
		flush()
		out = append(out, tmplPart{group: n})
	}
	flush()
	return out, nil
}

func isNameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

func expand(parts []tmplPart, groups []string) string {
	var b strings.Builder
	for _, p := range parts {
		if p.group < 0 {
			b.WriteString(p.text)
		} else if p.group < len(groups) {
			b.WriteString(groups[p.group])
		}
	}
	return b.String()
}

// Lookup tries the rules in order; the first matching one gives the
// result. A failed if skips to its endif. The key is matched as given:
// case is the pattern's business (its i flag).
func (t *patternTable) Lookup(ctx context.Context, key string) ([]string, error) {
	for i := 0; i < len(t.rules); i++ {
		if err := ctx.Err(); err != nil {
			return nil, lookupError(t.spec, err)
		}
		r := &t.rules[i]
		if r.kind == ruleEndif {
			continue
		}
		groups, err := r.re.match(key)
		if err != nil {
			return nil, lookupError(t.spec, fmt.Errorf("line %d: %w", r.line, err))
		}
		matched := (groups != nil) != r.negate
		switch {
		case r.kind == ruleIf && !matched:
			i = r.endif
		case r.kind == ruleMatch && matched:
			return []string{expand(r.result, groups)}, nil
		}
	}
	return nil, nil
}

func (t *patternTable) Close() error { return nil }

// compilePOSIX compiles a regexp_table(5) pattern: POSIX extended
// syntax with leftmost-longest matching. Flags toggle: i (case
// insensitive, on by default), x (extended syntax, on by default; basic
// syntax is not available), m (REG_NEWLINE: "." and "[^…]" stop at
// newlines and "^"/"$" match at them; off by default).
func compilePOSIX(pattern, flags string) (matcher, error) {
	icase, extended, newline := true, true, false
	for _, f := range flags {
		switch f {
		case 'i':
			icase = !icase
		case 'x':
			extended = !extended
		case 'm':
			newline = !newline
		default:
			return nil, fmt.Errorf("unknown regexp flag %q", f)
		}
	}
	if !extended {
		return nil, errors.New("basic regular expressions (x flag) are not supported; write the pattern in extended syntax")
	}
	prefix := "(?s)"
	if newline {
		prefix = "(?m)"
	}
	if icase {
		prefix += "(?i)"
	}
	re, err := regexp.Compile(prefix + pattern)
	if err != nil {
		return nil, fmt.Errorf("bad pattern /%s/: %w", pattern, err)
	}
	re.Longest()
	return re2Matcher{re}, nil
}

// compilePCRE compiles a pcre_table(5) pattern. Flags: i (caseless), m
// (multiline), s (dotall), x (extended), A (anchored), E (dollar end
// only: already how "$" works here), U (ungreedy), X (strict escapes:
// always so). Patterns go to Go's RE2 engine (linear time) when it
// accepts them; those needing backreferences or lookaround, or the x
// flag, go to regexp2 (backtracking, with a time limit per match).
func compilePCRE(pattern, flags string) (matcher, error) {
	var icase, multi, dotall, ext, anchored, ungreedy bool
	for _, f := range flags {
		switch f {
		case 'i':
			icase = !icase
		case 'm':
			multi = !multi
		case 's':
			dotall = !dotall
		case 'x':
			ext = !ext
		case 'A':
			anchored = !anchored
		case 'U':
			ungreedy = !ungreedy
		case 'E', 'X':
		default:
			return nil, fmt.Errorf("unknown pcre flag %q", f)
		}
	}
	body := pattern
	if anchored {
		body = `\A(?:` + pattern + `)`
	}
	if !ext {
		prefix := ""
		for _, fl := range []struct {
			on bool
			s  string
		}{{icase, "i"}, {multi, "m"}, {dotall, "s"}, {ungreedy, "U"}} {
			if fl.on {
				prefix += fl.s
			}
		}
		if prefix != "" {
			prefix = "(?" + prefix + ")"
		}
		if re, err := regexp.Compile(prefix + body); err == nil {
			return re2Matcher{re}, nil
		}
	}
	if ungreedy {
		return nil, fmt.Errorf("bad pattern /%s/: the U flag is not available for patterns that need backtracking", pattern)
	}
	opts := regexp2.RegexOptions(0)
	if icase {
		opts |= regexp2.IgnoreCase
	}
	if multi {
		opts |= regexp2.Multiline
	}
	if dotall {
		opts |= regexp2.Singleline
	}
	if ext {
		opts |= regexp2.IgnorePatternWhitespace
	}
	re, err := regexp2.Compile(body, opts)
	if err != nil {
		return nil, fmt.Errorf("bad pattern /%s/: %w", pattern, err)
	}
	re.MatchTimeout = backtrackTimeout
	return backtrackMatcher{re}, nil
}
