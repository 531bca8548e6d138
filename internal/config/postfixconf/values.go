package postfixconf

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"postcote/internal/config"
)

// maxListFile bounds a file read for a list or a file value.
const maxListFile = 4 << 20

// valueError builds the error of a typed accessor: it names the place
// the value came from (main.cf line, master.cf -o, or the default).
func (m *Main) valueError(name, value, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &config.PosError{Pos: m.Pos(name), Key: name, Msg: fmt.Sprintf("bad value %q: %s", truncate(value), msg)}
}

// expanded returns the expanded value, or an error for a value that
// cannot be expanded (loop, bad syntax, limit).
func (m *Main) expanded(name string) (string, error) {
	v, probs := m.expandParam(name)
	for _, p := range probs {
		if p.fatal {
			return "", &config.PosError{Pos: m.Pos(name), Key: name, Msg: p.msg}
		}
	}
	return v, nil
}

// Bool returns a yes/no parameter (case-insensitive, as Postfix).
func (m *Main) Bool(name string) (bool, error) {
	v, err := m.expanded(name)
	if err != nil {
		return false, err
	}
	b, ok := parseBool(v)
	if !ok {
		return false, m.valueError(name, v, "use yes or no")
	}
	return b, nil
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes":
		return true, true
	case "no":
		return false, true
	}
	return false, false
}

// Int returns an integer parameter.
func (m *Main) Int(name string) (int, error) {
	v, err := m.expanded(name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		return 0, m.valueError(name, v, "use a decimal integer")
	}
	return n, nil
}

// Size returns a byte-count parameter. Postfix takes plain decimal
// numbers here, without unit suffixes.
func (m *Main) Size(name string) (int64, error) {
	v, err := m.expanded(name)
	if err != nil {
		return 0, err
	}
	n, perr := parseSize(v)
	if perr != "" {
		return 0, m.valueError(name, v, "%s", perr)
	}
	return n, nil
}

func parseSize(v string) (int64, string) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || n < 0 {
		return 0, "use a number of bytes, like 10240000 (no unit suffixes)"
	}
	return n, ""
}

// Duration returns a time parameter: a number with an optional unit s
// (seconds), m (minutes), h (hours), d (days) or w (weeks); a bare number
// is in the parameter's default unit (for example days for
// maximal_queue_lifetime), seconds for parameters postcote does not know.
func (m *Main) Duration(name string) (time.Duration, error) {
	v, err := m.expanded(name)
	if err != nil {
		return 0, err
	}
	unit := byte('s')
	if info, ok := Lookup(name); ok && info.Unit != 0 {
		unit = info.Unit
	}
	d, perr := parseDuration(v, unit)
	if perr != "" {
		return 0, m.valueError(name, v, "%s", perr)
	}
	return d, nil
}

func parseDuration(v string, unit byte) (time.Duration, string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, "empty; use a number with unit s, m, h, d or w, like 300s"
	}
	last := v[len(v)-1]
	if last < '0' || last > '9' {
		unit = last
		v = v[:len(v)-1]
	}
	var mult time.Duration
	switch unit {
	case 's':
		mult = time.Second
	case 'm':
		mult = time.Minute
	case 'h':
		mult = time.Hour
	case 'd':
		mult = 24 * time.Hour
	case 'w':
		mult = 7 * 24 * time.Hour
	default:
		return 0, fmt.Sprintf("unknown time unit %q; use s, m, h, d or w", string(unit))
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, "use a non-negative number with unit s, m, h, d or w, like 300s"
	}
	if n > int64(math.MaxInt64/mult) {
		return 0, "time too large"
	}
	return time.Duration(n) * mult, ""
}

// List returns a list parameter split the Postfix way: elements are
// separated by commas and/or whitespace; a "{ ... }" group stays one
// element (so "inline:{ a=b, c=d }" is whole), and "type:table" is an
// element like any other.
func (m *Main) List(name string) []string {
	return SplitList(m.Get(name))
}

// SplitList splits a Postfix list value (see List).
func SplitList(v string) []string {
	var out []string
	i := 0
	for i < len(v) {
		for i < len(v) && isListSep(v[i]) {
			i++
		}
		if i >= len(v) {
			break
		}
		start, depth := i, 0
		for i < len(v) {
			c := v[i]
			if c == '{' {
				depth++
			} else if c == '}' && depth > 0 {
				depth--
			} else if depth == 0 && isListSep(c) {
				break
			}
			i++
		}
		out = append(out, v[start:i])
	}
	return out
}

func isListSep(c byte) bool { return c == ',' || c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// ListWithFiles is List for parameters whose elements may be
// "/file/name" (mydestination, mynetworks, relay_domains,
// virtual_*_domains, ...): each such element is replaced by the
// elements in the file, which holds one or more per line, with "#"
// comment lines, as Postfix's match_list(3) reads it. A "!/file/name"
// element is kept as is (Postfix does not negate file contents). The
// error names the parameter's position and the file.
func (m *Main) ListWithFiles(name string) ([]string, error) {
	var out []string
	for _, el := range m.List(name) {
		if !strings.HasPrefix(el, "/") {
			out = append(out, el)
			continue
		}
		items, err := m.readListFile(el)
		if err != nil {
			return nil, &config.PosError{Pos: m.Pos(name), Key: name, Msg: "cannot read list file " + el, Err: err}
		}
		out = append(out, items...)
	}
	return out, nil
}

func (m *Main) readListFile(path string) ([]string, error) {
	f, err := os.Open(m.resolvePath(path))
	if err != nil {
		return nil, unwrapPathError(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(io.LimitReader(f, maxListFile))
	sc.Buffer(make([]byte, 0, 4096), maxLogicalLine)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		out = append(out, SplitList(line)...)
	}
	return out, sc.Err()
}

// FileValue returns the expanded value of name, except that for a
// parameter that allows it (myorigin) a value starting with "/" names a
// file whose first non-empty line is the value, as Debian's Postfix
// reads myorigin = /etc/mailname.
func (m *Main) FileValue(name string) (string, error) {
	v, err := m.expanded(name)
	if err != nil {
		return "", err
	}
	info, ok := Lookup(name)
	if !ok || !info.FileValue || !strings.HasPrefix(v, "/") {
		return v, nil
	}
	line, err := m.firstLine(v)
	if err != nil {
		return "", &config.PosError{Pos: m.Pos(name), Key: name, Msg: "cannot read " + v, Err: err}
	}
	return line, nil
}

func (m *Main) firstLine(path string) (string, error) {
	f, err := os.Open(m.resolvePath(path))
	if err != nil {
		return "", unwrapPathError(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, maxListFile))
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && line[0] != '#' {
			return line, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s is empty", path)
}

// Table is one "type:name" lookup table reference.
type Table struct {
	Type string // hash, ldap, mysql, inline, proxy, ...
	Name string // what follows the first ":"
}

// String returns "type:name".
func (t Table) String() string { return t.Type + ":" + t.Name }

// Tables returns the lookup tables of a table-list parameter
// (alias_maps, virtual_alias_maps, ...). Elements without ":" are
// skipped.
func (m *Main) Tables(name string) []Table {
	var out []Table
	for _, el := range m.List(name) {
		if t, ok := ParseTable(el); ok {
			out = append(out, t)
		}
	}
	return out
}

// ParseTable splits "type:name"; the type is letters, digits, "_" or "-".
func ParseTable(s string) (Table, bool) {
	typ, name, ok := strings.Cut(s, ":")
	if !ok || typ == "" || name == "" {
		return Table{}, false
	}
	for i := 0; i < len(typ); i++ {
		if c := typ[i]; !isNameByte(c) && c != '-' {
			return Table{}, false
		}
	}
	return Table{Type: typ, Name: name}, true
}
