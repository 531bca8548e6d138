package doveconf

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"postcote/internal/config"
)

// Limits that keep a broken or hostile configuration from exhausting
// memory or looping.
const (
	maxFileSize     = 16 << 20 // one configuration file or <file value
	maxLineLength   = 1 << 20  // one logical line, continuations joined
	maxIncludeDepth = 32       // nested !include levels
	maxFiles        = 1000     // files read through !include in total
	maxSectionDepth = 32       // nested { } levels
)

// Option adjusts how configuration files are read.
type Option func(*options)

type options struct {
	root   string                           // prefix for absolute paths
	lookup func(name string) (string, bool) // $ENV:name
}

// WithRoot makes every absolute path the configuration names (!include,
// key = <file, passdb args files) resolve under dir, as if dir were "/".
// It lets `postcote doveconf` inspect a copied /etc tree and lets tests
// use the guides' paths verbatim.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

// WithEnv sets how $ENV:name values are looked up (os.LookupEnv unless
// set).
func WithEnv(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.lookup = lookup }
}

// Config is a parsed dovecot.conf with everything it includes.
type Config struct {
	// Path is the main file.
	Path string
	// Root is the top level: global settings and the sections. The
	// methods of Config below are those of Root.
	Root *Section
	// Files lists every file read, in reading order.
	Files []string

	notes []config.Diagnostic
	opts  options
}

// Load reads and parses dovecot.conf at path and every file it
// includes. Errors carry file:line (*config.PosError).
func Load(path string, opts ...Option) (*Config, error) {
	c := newConfig(path, opts)
	p := &parser{c: c}
	if err := p.file(path, config.Pos{}, false); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse parses dovecot.conf text; name is used in positions and as the
// base of relative !include paths.
func Parse(name string, data []byte, opts ...Option) (*Config, error) {
	c := newConfig(name, opts)
	p := &parser{c: c}
	if err := p.text(name, data); err != nil {
		return nil, err
	}
	return c, nil
}

func newConfig(path string, opts []Option) *Config {
	c := &Config{Path: path, Root: &Section{}}
	for _, f := range opts {
		f(&c.opts)
	}
	if c.opts.lookup == nil {
		c.opts.lookup = os.LookupEnv
	}
	return c
}

// resolve maps an absolute path under the WithRoot directory.
func (o *options) resolve(p string) string {
	if o.root == "" || !filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(o.root, p)
}

type parser struct {
	c      *Config
	stack  []string     // files being read, for include loop detection
	cur    *Section     // section being filled
	opened []config.Pos // where each open section began
	nfiles int
	base   int // len(opened) when the current file started
}

// readFile reads a file with the size limit.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d bytes", maxFileSize)
	}
	return data, nil
}

// file parses one file; from is the !include line that named it.
func (p *parser) file(path string, from config.Pos, try bool) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	for _, s := range p.stack {
		if s == abs {
			return config.Errorf(from, "", "recursive include of %s (include loop: %s -> %s)", path, strings.Join(p.stack, " -> "), abs)
		}
	}
	if len(p.stack) >= maxIncludeDepth {
		return config.Errorf(from, "", "includes nested more than %d deep at %s", maxIncludeDepth, path)
	}
	p.nfiles++
	if p.nfiles > maxFiles {
		return config.Errorf(from, "", "more than %d configuration files included", maxFiles)
	}
	data, err := readFile(p.c.opts.resolve(path))
	if err != nil {
		if try && os.IsNotExist(err) {
			return nil
		}
		if from.IsZero() {
			return fmt.Errorf("read %s: %w", path, err)
		}
		return &config.PosError{Pos: from, Msg: "cannot read include file " + path, Err: unwrapPathError(err)}
	}
	p.stack = append(p.stack, abs)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	return p.text(path, data)
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// text parses the content of one file.
func (p *parser) text(name string, data []byte) error {
	p.c.Files = append(p.c.Files, name)
	if p.cur == nil {
		p.cur = p.c.Root
	}
	depthAtStart := len(p.opened)
	savedBase := p.base
	p.base = depthAtStart
	defer func() { p.base = savedBase }()
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), maxLineLength)
	var (
		full      strings.Builder
		fullStart int
		lineNo    int
	)
	for sc.Scan() {
		lineNo++
		line, ambiguous := stripComment(sc.Text())
		if ambiguous {
			p.c.notes = append(p.c.notes, config.Diagnostic{Pos: config.Pos{File: name, Line: lineNo}, Severity: config.Warning,
				Message: "ambiguous '#' character in line, treated as a comment; add a space before it"})
		}
		line = strings.Trim(line, " \t\r")
		// A trailing backslash continues the line (Dovecot's
		// CONFIG_LINE_TYPE_CONTINUE); the pieces are joined with one space.
		if strings.HasSuffix(line, "\\") {
			if full.Len() == 0 {
				fullStart = lineNo
			}
			full.WriteString(strings.TrimRight(line[:len(line)-1], " \t"))
			full.WriteByte(' ')
			if full.Len() > maxLineLength {
				return config.Errorf(config.Pos{File: name, Line: fullStart}, "", "line longer than %d bytes", maxLineLength)
			}
			continue
		}
		pos := config.Pos{File: name, Line: lineNo}
		if full.Len() > 0 {
			full.WriteString(line)
			line = full.String()
			full.Reset()
			pos.Line = fullStart
		}
		if line == "" {
			continue
		}
		if err := p.line(line, pos); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return config.Errorf(config.Pos{File: name, Line: lineNo + 1}, "", "read: %v", err)
	}
	if full.Len() > 0 {
		if err := p.line(strings.TrimSpace(full.String()), config.Pos{File: name, Line: fullStart}); err != nil {
			return err
		}
	}
	if len(p.opened) > depthAtStart {
		open := p.opened[len(p.opened)-1]
		return config.Errorf(open, "", "section %s is not closed: missing '}' before the end of %s", p.cur.label(), name)
	}
	return nil
}

// stripComment removes a "#" comment that is outside quotes, as
// Dovecot's config parser does. ambiguous reports a "#" not preceded
// by whitespace (Dovecot warns about it too).
func stripComment(s string) (string, bool) {
	t := strings.TrimLeft(s, " \t")
	if strings.HasPrefix(t, "#") {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\'':
			for i++; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
			}
			if i >= len(s) {
				return s, false
			}
		case '#':
			return s[:i], i > 0 && s[i-1] != ' ' && s[i-1] != '\t'
		}
	}
	return s, false
}

// line handles one logical line.
func (p *parser) line(line string, pos config.Pos) error {
	if line == "}" {
		if p.cur.Parent == nil || len(p.opened) == 0 {
			return config.Errorf(pos, "", "unexpected '}': no section is open")
		}
		if len(p.opened) <= p.base {
			return config.Errorf(pos, "", "unexpected '}': it would close section %s, which another file opened", p.cur.label())
		}
		p.cur = p.cur.Parent
		p.opened = p.opened[:len(p.opened)-1]
		return nil
	}
	i := strings.IndexAny(line, " \t=")
	key, rest := line, ""
	if i >= 0 {
		key, rest = line[:i], strings.TrimLeft(line[i:], " \t")
	}
	if key == "" {
		return config.Errorf(pos, "", "missing setting name before '='")
	}
	if key[0] == '}' {
		return config.Errorf(pos, "", "garbage after '}': %q; put '}' alone on its line", truncate(line[1:]))
	}
	if key[0] == '!' {
		return p.include(key, rest, pos)
	}
	if strings.HasPrefix(rest, "=") {
		return p.setting(key, strings.TrimLeft(rest[1:], " \t"), pos)
	}
	return p.sectionBegin(key, rest, pos)
}

func (p *parser) include(cmd, arg string, pos config.Pos) error {
	try := false
	switch cmd {
	case "!include":
	case "!include_try":
		try = true
	default:
		return config.Errorf(pos, "", "unknown command %s: use !include or !include_try", cmd)
	}
	arg = unquote(arg)
	if arg == "" {
		return config.Errorf(pos, "", "%s needs a file name", cmd)
	}
	path := arg
	if !filepath.IsAbs(path) {
		path = filepath.Join(filepath.Dir(pos.File), path)
	}
	if !strings.ContainsAny(path, "*?[") {
		return p.file(path, pos, try)
	}
	matches, err := filepath.Glob(p.c.opts.resolve(path))
	if err != nil {
		return config.Errorf(pos, "", "bad pattern %q: %v", arg, err)
	}
	if len(matches) == 0 {
		if try {
			return nil
		}
		return config.Errorf(pos, "", "no files match %s; fix the pattern or use !include_try", arg)
	}
	sort.Strings(matches)
	for _, m := range matches {
		if p.c.opts.root != "" && filepath.IsAbs(path) {
			if rel, err := filepath.Rel(p.c.opts.root, m); err == nil {
				m = string(filepath.Separator) + rel
			}
		}
		if err := p.file(m, pos, try); err != nil {
			return err
		}
	}
	return nil
}

// sectionBegin handles "type {", "type name {" and `type "name" {`.
func (p *parser) sectionBegin(typ, rest string, pos config.Pos) error {
	name := ""
	if !strings.HasPrefix(rest, "{") {
		if strings.HasPrefix(rest, "\"") {
			end := closingQuote(rest)
			if end < 0 {
				return config.Errorf(pos, typ, "missing closing '\"' in section name")
			}
			name = unescape(rest[1:end])
			rest = strings.TrimLeft(rest[end+1:], " \t")
		} else {
			j := strings.IndexAny(rest, " \t")
			if j < 0 {
				if rest == "" {
					return config.Errorf(pos, typ, "expecting '=' after the setting name (or '{' to open a section)")
				}
				return config.Errorf(pos, typ, "expecting '{' after section %s %s", typ, rest)
			}
			name, rest = rest[:j], strings.TrimLeft(rest[j:], " \t")
		}
	}
	if !strings.HasPrefix(rest, "{") {
		return config.Errorf(pos, typ, "expecting '=' or '{' in %q", truncate(typ+" "+rest))
	}
	if rest != "{" {
		return config.Errorf(pos, typ, "garbage after '{': %q", truncate(rest[1:]))
	}
	if len(p.opened) >= maxSectionDepth {
		return config.Errorf(pos, typ, "sections nested more than %d deep", maxSectionDepth)
	}
	s := p.cur.child(typ, name, pos)
	p.cur = s
	p.opened = append(p.opened, pos)
	return nil
}

// setting handles "key = value", "key = <file" and values with $var.
func (p *parser) setting(key, value string, pos config.Pos) error {
	st := Setting{Key: key, Pos: pos}
	switch {
	case strings.HasPrefix(value, "<"):
		path := strings.TrimLeft(value[1:], " \t")
		if path == "" {
			return config.Errorf(pos, key, "missing file name after '<'")
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(filepath.Dir(pos.File), path)
		}
		data, err := readFile(p.c.opts.resolve(path))
		if err != nil {
			return &config.PosError{Pos: pos, Key: key, Msg: "cannot read " + path, Err: unwrapPathError(err)}
		}
		st.Value, st.File = string(data), path
	case len(value) >= 2 && (value[0] == '"' && value[len(value)-1] == '"' || value[0] == '\'' && value[len(value)-1] == '\''):
		st.Value = unescape(value[1 : len(value)-1])
		st.Quoted = true
	case strings.Contains(value, "$"):
		v, err := p.expand(key, value, pos)
		if err != nil {
			return err
		}
		st.Value, st.Raw = v, value
	default:
		st.Value = value
	}
	p.cur.Settings = append(p.cur.Settings, st)
	return nil
}

// expand does Dovecot's "$name" expansion: the value is split on
// spaces, and each word that starts with "$" is replaced by the current
// value of that setting (its last earlier assignment in this section or
// an enclosing one, else its default), "$ENV:name" by an environment
// variable, and "$SET:name" (Dovecot 2.4 spelling) like "$name". Words
// are joined with single spaces. A "$" that does not start a word is
// kept as is.
func (p *parser) expand(key, value string, pos config.Pos) (string, error) {
	var out []string
	for _, w := range strings.Fields(value) {
		if !strings.HasPrefix(w, "$") || len(w) == 1 {
			out = append(out, w)
			continue
		}
		name := w[1:]
		if env, ok := strings.CutPrefix(name, "ENV:"); ok {
			v, _ := p.c.opts.lookup(env)
			out = append(out, v)
			continue
		}
		name = strings.TrimPrefix(name, "SET:")
		v, ok := p.cur.lookupVar(name)
		if !ok {
			return "", config.Errorf(pos, key, "unknown variable $%s: no earlier setting or known default has that name", name)
		}
		// An empty value still takes its place, so "protocols =
		// $protocols imap" with an empty default gives " imap", as in
		// Dovecot.
		out = append(out, v)
	}
	s := strings.Join(out, " ")
	if len(s) > maxLineLength {
		return "", config.Errorf(pos, key, "expanded value longer than %d bytes", maxLineLength)
	}
	return s, nil
}

// closingQuote returns the index of the '"' closing s[0], or -1.
func closingQuote(s string) int {
	for i := 1; i < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == s[0] {
			return i
		}
	}
	return -1
}

// unquote removes matching surrounding quotes.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return unescape(s[1 : len(s)-1])
	}
	return s
}

// unescape undoes backslash escapes as Dovecot's str_unescape does.
func unescape(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
