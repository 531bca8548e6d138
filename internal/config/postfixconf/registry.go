package postfixconf

import (
	"path/filepath"
	"postcote/internal/config"
	"sort"
	"strconv"
	"strings"
)

// Kind says how a parameter's value is read.
type Kind int

// Kinds of parameter values.
const (
	KindString       Kind = iota
	KindBool              // yes or no
	KindInt               // decimal integer
	KindSize              // byte count, decimal integer
	KindTime              // number with optional unit s, m, h, d or w
	KindList              // list separated by commas and/or whitespace
	KindTables            // list of type:name lookup tables
	KindRestrictions      // smtpd restriction list (may name tables)
	KindFile              // path of a file that must be readable
	KindDir               // path of a directory that must be readable
)

var kindNames = [...]string{"string", "boolean", "integer", "size", "time", "list", "tables", "restrictions", "file", "directory"}

// String names the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Status says how far postcote honours a parameter (shared by both dialects).
type Status = config.Status

// Statuses of a known parameter.
const (
	Implemented = config.Implemented
	NotYet      = config.NotYet
	Ignored     = config.Ignored
)

// ParamInfo documents one known main.cf parameter.
type ParamInfo struct {
	Name    string
	Default string // Postfix's default, possibly with $names; see DefaultFor
	Kind    Kind
	Unit    byte // KindTime: unit of a bare number ('s', 'm', 'h', 'd', 'w')
	Status  Status
	Doc     string   // one line
	Enum    []string // allowed values of a single-valued parameter, if fixed
	// FileValue: a value starting with "/" names a file whose first line
	// is the value (Debian's myorigin = /etc/mailname).
	FileValue bool
	// FileList: list elements starting with "/" name files whose
	// contents are more elements (mydestination, mynetworks, ...).
	FileList bool

	dynamic func(m *Main, e *expander) string // computed default, when not a constant
}

// DefaultFor returns the default value of p in the context of m (some
// Postfix defaults depend on compatibility_level or on the host name).
func (p *ParamInfo) DefaultFor(m *Main) string { return p.defaultFor(m, nil) }

// defaultFor computes the default; e, when not nil, is the expansion in
// progress, so that computed defaults join its loop detection.
func (p *ParamInfo) defaultFor(m *Main, e *expander) string {
	if p.dynamic == nil {
		return p.Default
	}
	if e == nil {
		e = newExpander(m)
		e.stack = []string{p.Name}
	}
	return p.dynamic(m, e)
}

// Lookup returns the registry entry of a known parameter.
func Lookup(name string) (*ParamInfo, bool) {
	p, ok := registry()[name]
	return p, ok
}

// Known returns every known parameter, sorted by name.
func Known() []*ParamInfo {
	r := registry()
	out := make([]*ParamInfo, 0, len(r))
	for _, p := range r {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// registryMap is built by init from paramTable and never changed
// afterwards. (init, not a variable initializer, because computed
// defaults look parameters up and would form an initialization cycle.)
var registryMap map[string]*ParamInfo

func init() {
	r := make(map[string]*ParamInfo, len(paramTable))
	for i := range paramTable {
		p := &paramTable[i]
		if _, dup := r[p.Name]; dup {
			panic("postfixconf: duplicate registry entry " + p.Name) // programming error in the table
		}
		r[p.Name] = p
	}
	registryMap = r
}

func registry() map[string]*ParamInfo { return registryMap }

// compatLevel returns compatibility_level as a comparable number: "3.6"
// gives 3.006, "2" gives 2. Postfix's default level is 0.
func (m *Main) compatLevel() float64 {
	v := ""
	if p, ok := m.params["compatibility_level"]; ok {
		v = strings.TrimSpace(p.Value)
	}
	if v == "" || v == "level" {
		return 0
	}
	major, minor, _ := strings.Cut(v, ".")
	minor, _, _ = strings.Cut(minor, ".")
	a, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	b, _ := strconv.Atoi(minor)
	return float64(a) + float64(b)/1000
}

// byCompat returns a dynamic default that is old below level and cur at
// or above it, like Postfix's backwards-compatibility safety net.
func byCompat(level float64, old, cur string) func(*Main, *expander) string {
	return func(m *Main, _ *expander) string {
		if m.compatLevel() < level {
			return old
		}
		return cur
	}
}

// defaultHostname is Postfix's myhostname default: the machine's name;
// a name without a dot gets ".$mydomain" (or ".localdomain").
func defaultHostname(m *Main, _ *expander) string {
	h := strings.TrimSuffix(m.opts.hostname, ".")
	if h == "" {
		h = "localhost"
	}
	if strings.Contains(h, ".") {
		return h
	}
	if p, ok := m.params["mydomain"]; ok && p.Value != "" {
		return h + ".$mydomain"
	}
	return h + ".localdomain"
}

// defaultDomain is Postfix's mydomain default: $myhostname minus its
// first label, or "localdomain".
func defaultDomain(m *Main, e *expander) string {
	h := e.value("myhostname", len(e.stack))
	if _, rest, ok := strings.Cut(h, "."); ok && rest != "" {
		return rest
	}
	return "localdomain"
}

// defaultConfigDir is the directory main.cf was read from (Postfix's
// config_directory, set by "-c").
func defaultConfigDir(m *Main, _ *expander) string {
	if m.path != "" {
		if abs, err := filepath.Abs(filepath.Dir(m.path)); err == nil {
			return abs
		}
	}
	return "/etc/postfix"
}
