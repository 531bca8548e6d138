package config

import (
	"fmt"
	"sort"
	"strings"
)

// Pos names a line of a configuration file. Line counts from 1; a zero
// Pos means "built-in default, not from any file".
type Pos struct {
	File string
	Line int
}

// IsZero reports whether p names no file.
func (p Pos) IsZero() bool { return p.File == "" && p.Line == 0 }

// String formats p as "file:line", or "(default)" for a zero Pos.
func (p Pos) String() string {
	switch {
	case p.IsZero():
		return "(default)"
	case p.Line == 0:
		return p.File
	default:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
}

// Severity ranks a Diagnostic.
type Severity int

// Severities, from the mildest. A configuration with any Error must not
// be served; `postcote check` exits non-zero on it.
const (
	Info Severity = iota
	Warning
	Error
)

// String returns "info", "warning" or "error".
func (s Severity) String() string {
	switch s {
	case Info:
		return "info"
	case Warning:
		return "warning"
	case Error:
		return "error"
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// Diagnostic is one finding of a configuration check: where, how bad,
// and a message that says what is wrong and what to do.
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Message  string
}

// String formats d the way Postfix prints its warnings:
// "file:line: warning: message".
func (d Diagnostic) String() string {
	return fmt.Sprintf("%s: %s: %s", d.Pos, d.Severity, d.Message)
}

// HasErrors reports whether any diagnostic is an Error.
func HasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// SortDiagnostics orders ds by file, line, then severity (worst first),
// keeping the original order of equal entries.
func SortDiagnostics(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Pos.File != b.Pos.File {
			return a.Pos.File < b.Pos.File
		}
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line < b.Pos.Line
		}
		return a.Severity > b.Severity
	})
}

// PosError is an error tied to a configuration line. Parsers and typed
// accessors of both dialects return it, so callers can print
// "file:line: message" or pull the position out with errors.As.
type PosError struct {
	Pos Pos
	Key string // the parameter or setting concerned, if any
	Msg string
	Err error // an underlying cause, if any
}

// Error formats the error as "file:line: key: message: cause".
func (e *PosError) Error() string {
	var b strings.Builder
	b.WriteString(e.Pos.String())
	b.WriteString(": ")
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *PosError) Unwrap() error { return e.Err }

// Errorf returns a *PosError at pos about key.
func Errorf(pos Pos, key, format string, args ...any) *PosError {
	return &PosError{Pos: pos, Key: key, Msg: fmt.Sprintf(format, args...)}
}

// Status says how far postcote honours a known setting of either dialect.
type Status int

// Statuses of a known setting.
const (
	// Implemented settings change postcote's behaviour as in Postfix or
	// Dovecot.
	Implemented Status = iota
	// NotYet settings are parsed and checked, but postcote does not act
	// on them yet; Check warns when one is set.
	NotYet
	// Ignored settings tune a Postfix, Dovecot or OpenSSL internal that
	// postcote does not have; they are accepted and Check mentions them
	// at Info level.
	Ignored
)

// String returns "implemented", "not yet supported" or "ignored".
func (s Status) String() string {
	switch s {
	case Implemented:
		return "implemented"
	case NotYet:
		return "not yet supported"
	case Ignored:
		return "ignored"
	}
	return fmt.Sprintf("status(%d)", int(s))
}
