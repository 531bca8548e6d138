package postfixconf

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

// Limits that keep a hostile or broken file from exhausting memory.
const (
	maxFileSize    = 16 << 20 // bytes of one main.cf or master.cf
	maxLogicalLine = 1 << 20  // bytes of one logical (joined) line
)

// Param is one parameter as written in main.cf (or as a master.cf -o
// override): the raw, unexpanded value and where it was set.
type Param struct {
	Name  string
	Value string
	Pos   config.Pos
}

// Main is a parsed main.cf. The zero value is not usable; get one from
// ParseMain, ParseMainBytes or Load. A Main is immutable after parsing
// and safe for concurrent readers.
type Main struct {
	path     string
	params   map[string]Param
	order    []string // explicitly set names, first-set order
	notes    []config.Diagnostic
	opts     options
	override map[string]bool // names set by WithOverrides
	service  string          // master.cf service of a WithOverrides view
}

// Option adjusts how configuration files are read.
type Option func(*options)

type options struct {
	hostname string // os.Hostname() unless set
	root     string // prefix for absolute paths, "" for none
}

// WithHostname sets the machine name used for the default of myhostname
// (Postfix calls gethostname(); tests pass a fixed name).
func WithHostname(name string) Option { return func(o *options) { o.hostname = name } }

// WithRoot makes every absolute path that the configuration names
// (myorigin = /etc/mailname, certificate files, table sources, list files)
// resolve under dir, as if dir were "/". It lets `postcote check` inspect
// a copied /etc tree and lets tests use the guides' paths verbatim.
func WithRoot(dir string) Option { return func(o *options) { o.root = dir } }

func buildOptions(opts []Option) options {
	var o options
	for _, f := range opts {
		f(&o)
	}
	if o.hostname == "" {
		if h, err := os.Hostname(); err == nil {
			o.hostname = h
		} else {
			o.hostname = "localhost"
		}
	}
	return o
}

// ParseMain reads and parses a main.cf file.
func ParseMain(path string, opts ...Option) (*Main, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMainBytes(path, data, opts...)
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("read %s: file larger than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// NewMain returns a Main with no explicit settings: every Get answers
// the Postfix default. It stands in for an absent main.cf.
func NewMain(opts ...Option) *Main {
	return &Main{params: map[string]Param{}, opts: buildOptions(opts)}
}

// ParseMainBytes parses main.cf text; name is used in positions.
//
// The syntax is postconf(5)'s: "name = value" lines; a line whose first
// non-blank character is "#" is a comment (a "#" later in a line is part
// of the value, as in Postfix); a line that starts with whitespace
// continues the previous logical line; blank lines are ignored. A
// parameter set twice keeps the later value (Check warns).
func ParseMainBytes(name string, data []byte, opts ...Option) (*Main, error) {
	m := &Main{path: name, params: map[string]Param{}, opts: buildOptions(opts)}
	err := logicalLines(name, data, func(line string, pos config.Pos, leadingSpace bool) error {
		if leadingSpace {
			m.notes = append(m.notes, config.Diagnostic{Pos: pos, Severity: config.Warning,
				Message: "logical line must not start with whitespace; it is read as a new line (indent only continuation lines)"})
		}
		key, value, err := splitNameValue(line)
		if err != nil {
			return &config.PosError{Pos: pos, Msg: err.Error()}
		}
		if prev, ok := m.params[key]; ok {
			m.notes = append(m.notes, config.Diagnostic{Pos: pos, Severity: config.Warning,
				Message: fmt.Sprintf("%s is set again (first at line %d); the later value wins, remove one of them", key, prev.Pos.Line)})
		} else {
			m.order = append(m.order, key)
		}
		m.params[key] = Param{Name: key, Value: value, Pos: pos}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// logicalLines splits Postfix configuration text into logical lines
// (readlline(3) semantics): comment lines and blank lines are dropped,
// and a line starting with whitespace is joined, with one space, to
// the line before it. fn gets each logical line with the position of its
// first physical line; leadingSpace is true for a logical line that
// itself started with whitespace (nothing to continue).
func logicalLines(name string, data []byte, fn func(line string, pos config.Pos, leadingSpace bool) error) error {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), maxLogicalLine)
	var (
		cur     strings.Builder
		curPos  config.Pos
		curLead bool
		have    bool
		lineNo  int
	)
	flush := func() error {
		if !have {
			return nil
		}
		have = false
		s := strings.TrimRight(cur.String(), " \t\r\n")
		cur.Reset()
		return fn(s, curPos, curLead)
	}
	for sc.Scan() {
		lineNo++
		raw := strings.TrimRight(sc.Text(), "\r")
		trimmed := strings.TrimLeft(raw, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		startsBlank := len(trimmed) != len(raw)
		if startsBlank && have {
			if cur.Len()+1+len(trimmed) > maxLogicalLine {
				return config.Errorf(curPos, "", "logical line longer than %d bytes", maxLogicalLine)
			}
			cur.WriteByte(' ')
			cur.WriteString(strings.TrimRight(trimmed, " \t"))
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		have = true
		curPos = config.Pos{File: name, Line: lineNo}
		curLead = startsBlank
		cur.WriteString(strings.TrimRight(trimmed, " \t"))
	}
	if err := sc.Err(); err != nil {
		return config.Errorf(config.Pos{File: name, Line: lineNo + 1}, "", "read: %v", err)
	}
	return flush()
}

// splitNameValue splits "name = value" as Postfix's split_nameval(3)
// does: the name ends at whitespace or "=", an "=" must follow, and the
// value is trimmed of surrounding whitespace.
func splitNameValue(line string) (string, string, error) {
	i := strings.IndexAny(line, " \t=")
	if i == 0 {
		return "", "", fmt.Errorf("missing parameter name before %q; write name = value", "=")
	}
	if i < 0 {
		return "", "", fmt.Errorf("missing '=' after parameter name %q; write name = value", line)
	}
	name := line[:i]
	rest := strings.TrimLeft(line[i:], " \t")
	if rest == "" || rest[0] != '=' {
		return "", "", fmt.Errorf("missing '=' after parameter name %q; write name = value", name)
	}
	if !validName(name) {
		return "", "", fmt.Errorf("bad parameter name %q: use letters, digits and '_' only", name)
	}
	return name, strings.Trim(rest[1:], " \t"), nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Path returns the file this Main was read from ("" for NewMain).
func (m *Main) Path() string { return m.path }

// Service names the master.cf service of a view made by WithOverrides,
// or returns "" for main.cf itself.
func (m *Main) Service() string { return m.service }

// Raw returns the parameter as written, unexpanded, if it is set
// explicitly (in main.cf or by a master.cf override of this view).
func (m *Main) Raw(name string) (Param, bool) {
	p, ok := m.params[name]
	return p, ok
}

// IsSet reports whether name is set explicitly.
func (m *Main) IsSet(name string) bool {
	_, ok := m.params[name]
	return ok
}

// Pos returns where name was set, or a zero Pos for a default.
func (m *Main) Pos(name string) config.Pos { return m.params[name].Pos }

// Names returns the explicitly set parameters, sorted.
func (m *Main) Names() []string {
	names := make([]string, 0, len(m.params))
	for n := range m.params {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// RawValue returns the unexpanded value of name: the explicit setting,
// else the Postfix default (which may itself contain $names), else "".
func (m *Main) RawValue(name string) string {
	if p, ok := m.params[name]; ok {
		return p.Value
	}
	if info, ok := Lookup(name); ok {
		return info.defaultFor(m, nil)
	}
	return ""
}

// rawValue is RawValue inside an expansion in progress.
func (m *Main) rawValue(name string, e *expander) string {
	if p, ok := m.params[name]; ok {
		return p.Value
	}
	if info, ok := Lookup(name); ok {
		return info.defaultFor(m, e)
	}
	return ""
}

// Get returns the value of name with $name expansion done and the
// Postfix default applied. Undefined names expand to "" as in Postfix;
// Check reports them.
func (m *Main) Get(name string) string {
	v, _ := m.expandParam(name)
	return v
}

// WithOverrides returns a view of m in which the given master.cf -o
// overrides win over main.cf, as Postfix applies them to one service.
// Values are expanded against the whole view, so "-o
// smtpd_client_restrictions=$mua_client_restrictions" picks up the
// main.cf parameter. m itself is unchanged.
func (m *Main) WithOverrides(ov []Override) *Main {
	v := &Main{path: m.path, params: make(map[string]Param, len(m.params)+len(ov)),
		order: m.order, notes: m.notes, opts: m.opts, override: map[string]bool{}}
	for k, p := range m.params {
		v.params[k] = p
	}
	for k := range m.override {
		v.override[k] = true
	}
	for _, o := range ov {
		v.params[o.Name] = Param{Name: o.Name, Value: o.Value, Pos: o.Pos}
		v.override[o.Name] = true
	}
	return v
}

// ForService is WithOverrides for one master.cf entry, remembering the
// service name for messages.
func (m *Main) ForService(s *Service) *Main {
	v := m.WithOverrides(s.Overrides)
	v.service = s.Name
	return v
}

// Overridden reports whether name comes from a master.cf override in
// this view.
func (m *Main) Overridden(name string) bool { return m.override[name] }

// resolvePath maps an absolute path under the WithRoot directory.
func (m *Main) resolvePath(p string) string {
	if m.opts.root == "" || !filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(m.opts.root, p)
}
