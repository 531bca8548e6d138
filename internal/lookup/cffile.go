package lookup

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// maxCfFile bounds an ldap/mysql/pgsql/sqlite table definition file.
const maxCfFile = 1 << 20

// cfFile is a table definition file ("name = value" lines, "#"
// comments, continuation lines starting with whitespace), the syntax
// Postfix's cfg_parser reads for ldap_table(5), mysql_table(5),
// pgsql_table(5) and sqlite_table(5).
type cfFile struct {
	path   string
	params map[string]string
	lines  map[string]int
	used   map[string]bool
}

func readCfFile(path string) (*cfFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > maxCfFile {
		return nil, fmt.Errorf("%s: %d bytes is more than the %d allowed", path, fi.Size(), maxCfFile)
	}
	return readCfFileFrom(f, path)
}

// readCfFileFrom parses a definition file named path in messages.
func readCfFileFrom(r io.Reader, path string) (*cfFile, error) {
	cf := &cfFile{path: path, params: map[string]string{}, lines: map[string]int{}, used: map[string]bool{}}
	err := readLogical(r, func(l logicalLine) error {
		name, value, ok := strings.Cut(l.text, "=")
		name = strings.TrimSpace(name)
		if !ok || name == "" {
			return fmt.Errorf("%s:%d: expected name = value", path, l.line)
		}
		// A later setting overrides an earlier one, as in main.cf.
		cf.params[name] = strings.TrimSpace(value)
		cf.lines[name] = l.line
		return nil
	})
	if err != nil {
		if !strings.HasPrefix(err.Error(), path+":") {
			err = fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	return cf, nil
}

// get returns a parameter or def when unset.
func (c *cfFile) get(name, def string) string {
	c.used[name] = true
	if v, ok := c.params[name]; ok {
		return v
	}
	return def
}

func (c *cfFile) has(name string) bool { _, ok := c.params[name]; return ok }

// pos names a parameter's place for messages.
func (c *cfFile) pos(name string) string {
	if l, ok := c.lines[name]; ok {
		return fmt.Sprintf("%s:%d: %s", c.path, l, name)
	}
	return fmt.Sprintf("%s: %s", c.path, name)
}

// bool reads a Postfix boolean (yes/no, true/false, 1/0).
func (c *cfFile) bool(name string, def bool) (bool, error) {
	v := strings.ToLower(c.get(name, ""))
	switch v {
	case "":
		return def, nil
	case "yes", "true", "1", "on":
		return true, nil
	case "no", "false", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not yes or no", c.pos(name), v)
}

// int reads a non-negative integer.
func (c *cfFile) int(name string, def int) (int, error) {
	v := c.get(name, "")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %q is not a non-negative number", c.pos(name), v)
	}
	return n, nil
}

// list splits a value on whitespace and commas.
func (c *cfFile) list(name, def string) []string {
	return strings.FieldsFunc(c.get(name, def), func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' })
}
