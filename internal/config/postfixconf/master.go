package postfixconf

import (
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"

	"postcote/internal/config"
)

// Service types of master.cf's second column (master(5)).
const (
	TypeInet      = "inet"
	TypeUnix      = "unix"
	TypeUnixDgram = "unix-dgram"
	TypeFifo      = "fifo"
	TypePass      = "pass"
)

// Override is one "-o name=value" of a master.cf service.
type Override struct {
	Name  string
	Value string
	Pos   config.Pos
}

// Service is one master.cf entry.
type Service struct {
	// Name is column 1 as written: "smtp", "submission",
	// "127.0.0.1:submission", "[::1]:25", "pickup", ...
	Name string
	Type string // inet, unix, unix-dgram, fifo or pass

	// Columns 3 to 7, with "-" replaced by the Postfix 3.x default.
	Private bool // default y
	Unpriv  bool // default y
	Chroot  bool // default n (Postfix >= 3.0)
	// Wakeup is the wakeup interval in seconds, 0 for never;
	// WakeupIfUsed is the "?" suffix (only wake up a used service).
	Wakeup       int
	WakeupIfUsed bool
	// MaxProc is the process limit; -1 means "-", i.e.
	// $default_process_limit; 0 means no limit.
	MaxProc int

	Command   string     // daemon program: smtpd, pickup, pipe, ...
	Args      []string   // remaining arguments, -o overrides removed
	Overrides []Override // -o name=value, in order

	// For inet services: the listening host ("" for every address of
	// inet_interfaces) and port, resolved from the service name.
	Host string
	Port int
	// PortErr is set when an inet service name names no known port;
	// Check reports it.
	PortErr string

	Pos config.Pos
}

// Override returns the value of an -o override of this service.
func (s *Service) Override(name string) (string, bool) {
	v, ok := "", false
	for _, o := range s.Overrides {
		if o.Name == name {
			v, ok = o.Value, true
		}
	}
	return v, ok
}

// Master is a parsed master.cf.
type Master struct {
	Path     string
	Services []*Service
}

// Lookup returns the service with the given name and type, or nil.
func (m *Master) Lookup(name, typ string) *Service {
	for _, s := range m.Services {
		if s.Name == name && s.Type == typ {
			return s
		}
	}
	return nil
}

// Inet returns the inet services, in file order.
func (m *Master) Inet() []*Service {
	var out []*Service
	for _, s := range m.Services {
		if s.Type == TypeInet {
			out = append(out, s)
		}
	}
	return out
}

// ParseMaster reads and parses a master.cf file.
func ParseMaster(path string) (*Master, error) {
	data, err := readConfigFile(path)
	if err != nil {
		return nil, err
	}
	return ParseMasterBytes(path, data)
}

// ParseMasterBytes parses master.cf text; name is used in positions.
//
// Each logical line (comment and continuation rules as in main.cf) has
// eight or more whitespace-separated columns: service, type, private,
// unpriv, chroot, wakeup, maxproc, command and arguments. "{ text }"
// groups text with spaces into one argument (Postfix 3.0), so
// "-o { name = value }" sets a value that contains spaces.
func ParseMasterBytes(name string, data []byte) (*Master, error) {
	m := &Master{Path: name}
	err := logicalLines(name, data, func(line string, pos config.Pos, _ bool) error {
		s, err := parseService(line, pos)
		if err != nil {
			return err
		}
		m.Services = append(m.Services, s)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func parseService(line string, pos config.Pos) (*Service, error) {
	fields, err := splitMasterFields(line)
	if err != nil {
		return nil, &config.PosError{Pos: pos, Msg: err.Error()}
	}
	if len(fields) < 8 {
		return nil, config.Errorf(pos, "", "expected 8 columns (service type private unpriv chroot wakeup maxproc command), got %d in %q", len(fields), truncate(line))
	}
	s := &Service{Name: fields[0], Type: fields[1], Command: fields[7], Pos: pos}
	if s.Name == "" {
		return nil, config.Errorf(pos, "", "empty service name")
	}
	switch s.Type {
	case TypeInet, TypeUnix, TypeUnixDgram, TypeFifo, TypePass:
	default:
		return nil, config.Errorf(pos, "", "unknown service type %q for service %q: use inet, unix, unix-dgram, fifo or pass", s.Type, s.Name)
	}
	var perr error
	flag := func(col, v string, def bool) bool {
		switch v {
		case "-":
			return def
		case "y", "yes":
			return true
		case "n", "no":
			return false
		}
		if perr == nil {
			perr = config.Errorf(pos, "", "service %s: bad %s column %q: use y, n or -", s.Name, col, v)
		}
		return def
	}
	s.Private = flag("private", fields[2], true)
	s.Unpriv = flag("unpriv", fields[3], true)
	s.Chroot = flag("chroot", fields[4], false)
	if perr != nil {
		return nil, perr
	}
	if w := fields[5]; w != "-" {
		if strings.HasSuffix(w, "?") {
			s.WakeupIfUsed = true
			w = w[:len(w)-1]
		}
		n, err := strconv.Atoi(w)
		if err != nil || n < 0 {
			return nil, config.Errorf(pos, "", "service %s: bad wakeup column %q: use a number of seconds, optionally followed by ?, or -", s.Name, fields[5])
		}
		s.Wakeup = n
	}
	s.MaxProc = -1
	if mp := fields[6]; mp != "-" {
		n, err := strconv.Atoi(mp)
		if err != nil || n < 0 {
			return nil, config.Errorf(pos, "", "service %s: bad maxproc column %q: use a number or -", s.Name, mp)
		}
		s.MaxProc = n
	}
	args := fields[8:]
	for i := 0; i < len(args); i++ {
		a := args[i]
		var kv string
		switch {
		case a == "-o":
			if i+1 >= len(args) {
				return nil, config.Errorf(pos, "", "service %s: -o without name=value", s.Name)
			}
			i++
			kv = args[i]
		case strings.HasPrefix(a, "-o"):
			kv = a[2:]
		default:
			s.Args = append(s.Args, a)
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k = strings.TrimSpace(k)
		if !ok || !validName(k) {
			return nil, config.Errorf(pos, "", "service %s: bad -o option %q: write -o name=value or -o { name = value }", s.Name, kv)
		}
		s.Overrides = append(s.Overrides, Override{Name: k, Value: strings.TrimSpace(v), Pos: pos})
	}
	if s.Type == TypeInet {
		s.Host, s.Port, s.PortErr = splitInetService(s.Name)
	}
	return s, nil
}

// splitMasterFields splits on whitespace; "{ ... }" (balanced) is one
// field with the outer braces and the blanks inside them removed.
func splitMasterFields(line string) ([]string, error) {
	var out []string
	i := 0
	for i < len(line) {
		for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
			i++
		}
		if i >= len(line) {
			break
		}
		start, depth := i, 0
		for i < len(line) {
			c := line[i]
			if c == '{' {
				depth++
			} else if c == '}' {
				depth--
				if depth < 0 {
					return nil, fmt.Errorf("unbalanced '}' in %q", truncate(line[start:]))
				}
			} else if (c == ' ' || c == '\t') && depth == 0 {
				break
			}
			i++
		}
		if depth != 0 {
			return nil, fmt.Errorf("unbalanced '{' in %q", truncate(line[start:]))
		}
		f := line[start:i]
		if len(f) >= 2 && f[0] == '{' && f[len(f)-1] == '}' {
			f = strings.TrimSpace(f[1 : len(f)-1])
		}
		out = append(out, f)
	}
	return out, nil
}

// wellKnownPorts resolves the service names that appear in master.cf
// files without needing /etc/services.
var wellKnownPorts = map[string]int{
	"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465, "urd": 465,
	"lmtp": 24, "imap": 143, "imap2": 143, "imaps": 993, "pop3": 110, "pop3s": 995,
	"sieve": 4190, "managesieve": 4190,
}

// PortNumber resolves a service or port name ("submission", "2525").
func PortNumber(name string) (int, bool) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, n > 0 && n < 65536
	}
	n, ok := wellKnownPorts[strings.ToLower(name)]
	return n, ok
}

// splitInetService splits an inet service name: "smtp", "2525",
// "127.0.0.1:submission", "[::1]:25", "host:port".
func splitInetService(name string) (host string, port int, problem string) {
	portName := name
	if strings.HasPrefix(name, "[") {
		end := strings.Index(name, "]")
		if end < 0 || end+1 >= len(name) || name[end+1] != ':' {
			return "", 0, fmt.Sprintf("bad service name %q: write [address]:port", name)
		}
		host, portName = name[1:end], name[end+2:]
		if net.ParseIP(host) == nil {
			return host, 0, fmt.Sprintf("bad address %q in service name %q", host, name)
		}
	} else if i := strings.LastIndexByte(name, ':'); i >= 0 {
		host, portName = name[:i], name[i+1:]
		if strings.Contains(host, ":") {
			return "", 0, fmt.Sprintf("bad service name %q: put IPv6 addresses in brackets, [address]:port", name)
		}
		if host == "*" {
			host = ""
		}
	}
	p, ok := PortNumber(portName)
	if !ok {
		return host, 0, fmt.Sprintf("unknown port %q in service name %q: use a port number or one of smtp, submission, submissions, smtps, lmtp", portName, name)
	}
	return host, p, ""
}

// Write prints m in master.cf syntax, one service per logical line, like
// `postconf -M`, with overrides in the "-o { name = value }" form when
// the value has blanks.
func (m *Master) Write(w io.Writer) error {
	for _, s := range m.Services {
		yn := func(b bool) string {
			if b {
				return "y"
			}
			return "n"
		}
		wake := "-"
		if s.Wakeup > 0 || s.WakeupIfUsed {
			wake = strconv.Itoa(s.Wakeup)
			if s.WakeupIfUsed {
				wake += "?"
			}
		}
		mp := "-"
		if s.MaxProc >= 0 {
			mp = strconv.Itoa(s.MaxProc)
		}
		line := fmt.Sprintf("%-10s %-5s %-7s %-7s %-7s %-7s %-7s %s", s.Name, s.Type, yn(s.Private), yn(s.Unpriv), yn(s.Chroot), wake, mp, s.Command)
		if _, err := io.WriteString(w, line); err != nil {
			return err
		}
		for _, o := range s.Overrides {
			var err error
			if strings.ContainsAny(o.Value, " \t{}") {
				_, err = fmt.Fprintf(w, "\n  -o { %s = %s }", o.Name, o.Value)
			} else {
				_, err = fmt.Fprintf(w, "\n  -o %s=%s", o.Name, o.Value)
			}
			if err != nil {
				return err
			}
		}
		for _, a := range s.Args {
			if strings.ContainsAny(a, " \t") {
				a = "{ " + a + " }"
			}
			if _, err := fmt.Fprintf(w, "\n  %s", a); err != nil {
				return err
			}
		}
		if _, err := io.WriteString(w, "\n"); err != nil {
			return err
		}
	}
	return nil
}
