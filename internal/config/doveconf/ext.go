package doveconf

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"postcote/internal/config"
)

// extValues holds the "key = value" lines of a *.conf.ext file (the
// format of Dovecot's settings_read_nosection: "#" comments outside
// quotes, a trailing "\" continues the line, quoted values are
// unquoted; no sections).
type extValues struct {
	path   string
	values map[string]Setting
}

// parseExt reads an ext file, accepting only the given keys.
func parseExt(path string, data []byte, known map[string]bool) (*extValues, error) {
	ev := &extValues{path: path, values: map[string]Setting{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), maxLineLength)
	var (
		full      strings.Builder
		fullStart int
		lineNo    int
	)
	handle := func(line string, pos config.Pos) error {
		if line == "" {
			return nil
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return config.Errorf(pos, "", "expecting key = value, got %q", truncate(line))
		}
		if !known[key] {
			return config.Errorf(pos, key, "unknown setting %s in %s", key, path)
		}
		ev.values[key] = Setting{Key: key, Value: unquote(strings.TrimSpace(value)), Pos: pos}
		return nil
	}
	for sc.Scan() {
		lineNo++
		line, _ := stripComment(sc.Text())
		line = strings.Trim(line, " \t\r")
		if strings.HasSuffix(line, "\\") {
			if full.Len() == 0 {
				fullStart = lineNo
			}
			full.WriteString(strings.TrimRight(line[:len(line)-1], " \t"))
			full.WriteByte(' ')
			if full.Len() > maxLineLength {
				return nil, config.Errorf(config.Pos{File: path, Line: fullStart}, "", "line longer than %d bytes", maxLineLength)
			}
			continue
		}
		pos := config.Pos{File: path, Line: lineNo}
		if full.Len() > 0 {
			full.WriteString(line)
			line = full.String()
			full.Reset()
			pos.Line = fullStart
		}
		if err := handle(line, pos); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, config.Errorf(config.Pos{File: path, Line: lineNo + 1}, "", "read: %v", err)
	}
	if full.Len() > 0 {
		if err := handle(strings.TrimSpace(full.String()), config.Pos{File: path, Line: fullStart}); err != nil {
			return nil, err
		}
	}
	return ev, nil
}

func readExt(path string, opts []Option) ([]byte, error) {
	var o options
	for _, f := range opts {
		f(&o)
	}
	data, err := readFile(o.resolve(path))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, unwrapPathError(err))
	}
	return data, nil
}

func (ev *extValues) str(key, def string) string {
	if s, ok := ev.values[key]; ok {
		return s.Value
	}
	return def
}

func (ev *extValues) pos(key string) config.Pos {
	if s, ok := ev.values[key]; ok {
		return s.Pos
	}
	return config.Pos{File: ev.path}
}

func (ev *extValues) bool(key string, def bool) (bool, error) {
	s, ok := ev.values[key]
	if !ok {
		return def, nil
	}
	b, ok := parseBool(s.Value)
	if !ok {
		return false, config.Errorf(s.Pos, key, "bad value %q: use yes or no", truncate(s.Value))
	}
	return b, nil
}

func (ev *extValues) int(key string, def int) (int, error) {
	s, ok := ev.values[key]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s.Value))
	if err != nil {
		return 0, config.Errorf(s.Pos, key, "bad value %q: use an integer", truncate(s.Value))
	}
	return n, nil
}

func (ev *extValues) enum(key, def string, allowed ...string) (string, error) {
	s, ok := ev.values[key]
	if !ok {
		return def, nil
	}
	v := strings.ToLower(strings.TrimSpace(s.Value))
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", config.Errorf(s.Pos, key, "bad value %q: use one of %s", truncate(s.Value), strings.Join(allowed, ", "))
}

// keySet builds a set of names.
func keySet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// fileReadable reports why path (under the root of opts) cannot be read.
func fileReadable(path string, opts []Option) error {
	var o options
	for _, f := range opts {
		f(&o)
	}
	f, err := os.Open(o.resolve(path))
	if err != nil {
		return unwrapPathError(err)
	}
	return f.Close()
}
