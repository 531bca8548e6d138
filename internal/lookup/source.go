package lookup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxLogicalLine bounds one logical line (a line and its continuations)
// of any table source, so a file without newlines cannot exhaust memory.
const maxLogicalLine = 1 << 20

// Entry is one key and value of a table source, with its line number.
type Entry struct {
	Key, Value string
	Line       int
}

// SourceFormat is the syntax of a text table source.
type SourceFormat byte

const (
	// FormatMap is postmap(1)'s input: "key whitespace value".
	FormatMap SourceFormat = 0
	// FormatAliases is postalias(1)'s and aliases(5)'s: "name: value, value".
	FormatAliases SourceFormat = 1
)

func (f SourceFormat) String() string {
	if f == FormatAliases {
		return "aliases"
	}
	return "map"
}

// logicalLine is one line with its continuations, and the number of its
// first physical line.
type logicalLine struct {
	text string
	line int
}

// readLogical splits r into logical lines as Postfix's readlline does: a
// line starting with whitespace continues the previous one; empty lines,
// whitespace-only lines and lines whose first non-whitespace character
// is "#" are skipped (also between continuation lines).
func readLogical(r io.Reader, fn func(logicalLine) error) error {
	br := bufio.NewReader(r)
	var cur strings.Builder
	start, n := 0, 0
	flush := func() error {
		if cur.Len() == 0 {
			return nil
		}
		err := fn(logicalLine{text: cur.String(), line: start})
		cur.Reset()
		return err
	}
	for {
		raw, err := readPhysical(br)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("line %d: %w", n+1, err)
		}
		if raw == nil && errors.Is(err, io.EOF) {
			return flush()
		}
		n++
		line := strings.TrimRight(string(raw), "\r\n")
		trimmed := strings.TrimLeft(line, " \t\r\f\v")
		switch {
		case trimmed == "" || trimmed[0] == '#':
			// skipped
		case trimmed != line:
			if cur.Len() == 0 {
				// Postfix warns and treats it as the start of a line.
				start = n
			}
			if cur.Len()+len(line) > maxLogicalLine {
				return fmt.Errorf("line %d: logical line longer than %d bytes", start, maxLogicalLine)
			}
			cur.WriteString(line)
		default:
			if ferr := flush(); ferr != nil {
				return ferr
			}
			start = n
			if len(line) > maxLogicalLine {
				return fmt.Errorf("line %d: line longer than %d bytes", n, maxLogicalLine)
			}
			cur.WriteString(line)
		}
		if errors.Is(err, io.EOF) {
			return flush()
		}
	}
}

// readPhysical reads one line, refusing lines past maxLogicalLine.
func readPhysical(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxLogicalLine+2 {
			return nil, fmt.Errorf("line longer than %d bytes", maxLogicalLine)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && len(buf) == 0 {
			return nil, err
		}
		return buf, err
	}
}

// ParseSource reads a table source in format f. Problems that Postfix
// only warns about (a line without a value, a duplicate key: the first
// one wins) go to warn with the line number; it returns an error only
// when the input cannot be read. Keys are folded to lower case when
// foldKeys is set.
func ParseSource(r io.Reader, f SourceFormat, foldKeys bool, warn func(line int, msg string)) ([]Entry, error) {
	if warn == nil {
		warn = func(int, string) {}
	}
	var out []Entry
	seen := make(map[string]int)
	err := readLogical(r, func(l logicalLine) error {
		var key, value string
		var ok bool
		if f == FormatAliases {
			key, value, ok = splitAlias(l.text, l.line, warn)
		} else {
			key, value, ok = splitMap(l.text, l.line, warn)
		}
		if !ok {
			return nil
		}
		if foldKeys {
			key = strings.ToLower(key)
		}
		if first, dup := seen[key]; dup {
			warn(l.line, fmt.Sprintf("duplicate entry: %q (first at line %d, kept)", key, first))
			return nil
		}
		seen[key] = l.line
		out = append(out, Entry{Key: key, Value: value, Line: l.line})
		return nil
	})
	return out, err
}

// splitMap splits "key whitespace value" (postmap(1) INPUT FILE FORMAT).
// A key holding whitespace is written in double quotes, inside which a
// backslash escapes a double quote or a backslash (Postfix 3.0 and
// later).
func splitMap(text string, line int, warn func(int, string)) (key, value string, ok bool) {
	rest := text
	if strings.HasPrefix(rest, `"`) {
		k, after, qok := unquote(rest)
		if !qok {
			warn(line, "unbalanced double quote in key")
			return "", "", false
		}
		key, rest = k, after
		if rest != "" && !isSpace(rest[0]) {
			warn(line, "expected whitespace after quoted key")
			return "", "", false
		}
	} else {
		i := strings.IndexAny(rest, " \t\r\f\v")
		if i < 0 {
			key, rest = rest, ""
		} else {
			key, rest = rest[:i], rest[i:]
		}
	}
	value = strings.TrimSpace(rest)
	if value == "" {
		warn(line, "expected format: key whitespace value")
		return "", "", false
	}
	if strings.HasSuffix(key, ":") {
		warn(line, "record is in \"key: value\" format; is this an alias file?")
	}
	return key, value, true
}

// splitAlias splits "name: value, value" (aliases(5)). The name may be
// quoted; the value is kept as written (with continuation lines
// joined), since the local delivery agent splits it on commas.
func splitAlias(text string, line int, warn func(int, string)) (key, value string, ok bool) {
	rest := text
	if strings.HasPrefix(rest, `"`) {
		k, after, qok := unquote(rest)
		if !qok {
			warn(line, "unbalanced double quote in name")
			return "", "", false
		}
		key = k
		after = strings.TrimLeft(after, " \t")
		if !strings.HasPrefix(after, ":") {
			warn(line, "need name:value pair")
			return "", "", false
		}
		rest = after[1:]
	} else {
		i := strings.IndexByte(rest, ':')
		if i < 0 {
			warn(line, "need name:value pair")
			return "", "", false
		}
		key = strings.TrimRight(rest[:i], " \t")
		rest = rest[i+1:]
	}
	if key == "" {
		warn(line, "missing name before \":\"")
		return "", "", false
	}
	value = strings.TrimSpace(rest)
	if value == "" {
		warn(line, "no value for "+key)
		return "", "", false
	}
	return key, value, true
}

// unquote reads a double-quoted string at the start of s with
// backslash escapes, returning it and the text after the closing quote.
func unquote(s string) (string, string, bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' || c == '\n'
}

// SplitList splits an alias or multi-valued result on commas, as
// Postfix's local and virtual delivery do, keeping commas inside double
// quotes, and trims each element. Empty elements are dropped.
func SplitList(v string) []string {
	var out []string
	var cur bytes.Buffer
	quoted := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\' && quoted && i+1 < len(v):
			cur.WriteByte(c)
			i++
			cur.WriteByte(v[i])
			continue
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			if s := strings.TrimSpace(cur.String()); s != "" {
				out = append(out, s)
			}
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
