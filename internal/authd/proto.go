package authd

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Protocol version spoken and accepted. Only the major version must match.
const (
	MajorVersion = 1
	MinorVersion = 2
)

// MaxLineLength is Dovecot's AUTH_CLIENT_MAX_LINE_LENGTH: the longest line
// either side sends or accepts, LF included.
const MaxLineLength = 16384

// ErrProtocol marks a line that breaks the protocol; the connection that
// sent it is closed, as Dovecot does.
var ErrProtocol = errors.New("auth protocol error")

// Escape applies Dovecot's tab-escaping to one parameter value.
func Escape(s string) string {
	if strings.IndexAny(s, "\x00\x01\t\r\n") < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case 0:
			b.WriteString("\x010")
		case 1:
			b.WriteString("\x011")
		case '\t':
			b.WriteString("\x01t")
		case '\r':
			b.WriteString("\x01r")
		case '\n':
			b.WriteString("\x01n")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Unescape reverses Escape. "\001l" is read as LF too (the older spelling
// in the protocol document); any other escaped byte stands for itself, and
// a trailing lone \001 is dropped.
func Unescape(s string) string {
	if strings.IndexByte(s, 1) < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != 1 {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(s) {
			break
		}
		switch e := s[i]; e {
		case '0':
			b.WriteByte(0)
		case '1':
			b.WriteByte(1)
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'n', 'l':
			b.WriteByte('\n')
		default:
			b.WriteByte(e)
		}
	}
	return b.String()
}

// Line is one parsed protocol line: the command and its parameters,
// unescaped.
type Line struct {
	Command string
	Args    []string
}

// ParseLine splits a line (without its LF) at TABs and unescapes each
// parameter. A trailing CR is not stripped: the protocol ends lines with
// LF alone, and CR inside values is escaped.
func ParseLine(s string) (Line, error) {
	if s == "" {
		return Line{}, fmt.Errorf("%w: empty line", ErrProtocol)
	}
	if strings.IndexByte(s, 0) >= 0 {
		return Line{}, fmt.Errorf("%w: NUL byte in line", ErrProtocol)
	}
	parts := strings.Split(s, "\t")
	l := Line{Command: parts[0], Args: parts[1:]}
	for i, a := range l.Args {
		l.Args[i] = Unescape(a)
	}
	return l, nil
}

// FormatLine joins a command and its parameters, escaping each parameter,
// and ends the line with LF.
func FormatLine(cmd string, args ...string) string {
	var b strings.Builder
	b.WriteString(cmd)
	for _, a := range args {
		b.WriteByte('\t')
		b.WriteString(Escape(a))
	}
	b.WriteByte('\n')
	return b.String()
}

// Params are the optional parameters of a request or reply: "name=value"
// pairs and booleans without a value (stored with value "").
type Params struct {
	names  []string
	values map[string]string
}

// ParseParams reads optional parameters. A name given twice keeps its
// first value.
func ParseParams(args []string) Params {
	p := Params{values: make(map[string]string, len(args))}
	for _, a := range args {
		name, value, _ := strings.Cut(a, "=")
		if _, dup := p.values[name]; dup || name == "" {
			continue
		}
		p.names = append(p.names, name)
		p.values[name] = value
	}
	return p
}

// Get returns a parameter's value and whether it was given.
func (p Params) Get(name string) (string, bool) {
	v, ok := p.values[name]
	return v, ok
}

// Has reports whether a parameter (boolean or valued) was given.
func (p Params) Has(name string) bool {
	_, ok := p.values[name]
	return ok
}

// parseVersion checks a VERSION line's major number.
func parseVersion(l Line) (major, minor int, err error) {
	if l.Command != "VERSION" || len(l.Args) < 2 {
		return 0, 0, fmt.Errorf("%w: expected VERSION <major> <minor>, got %q", ErrProtocol, l.Command)
	}
	major, err1 := strconv.Atoi(l.Args[0])
	minor, err2 := strconv.Atoi(l.Args[1])
	if err1 != nil || err2 != nil || major < 0 || minor < 0 {
		return 0, 0, fmt.Errorf("%w: bad VERSION numbers %q %q", ErrProtocol, l.Args[0], l.Args[1])
	}
	if major != MajorVersion {
		return major, minor, fmt.Errorf("%w: auth protocol major version %d not supported (want %d)", ErrProtocol, major, MajorVersion)
	}
	return major, minor, nil
}

// parseID reads a request id: a decimal unsigned 32-bit number, as
// Dovecot's str_to_uint.
func parseID(s string) (uint32, error) {
	if s == "" || len(s) > 10 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: bad request id %q", ErrProtocol, s)
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: bad request id %q", ErrProtocol, s)
	}
	return uint32(n), nil
}
