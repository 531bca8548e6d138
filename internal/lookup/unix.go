package lookup

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
)

// unixTable is unix:passwd.byname or unix:group.byname: the system's
// account files, read directly (no cgo, no NSS), reread when they
// change. The value is the whole entry as getpwnam/getgrnam give it
// ("name:passwd:uid:gid:gecos:dir:shell"), which is what Postfix's
// dict_unix returns.
type unixTable struct {
	spec string
	path string
	opts *Options

	mu      sync.Mutex
	stamp   sourceStamp
	entries map[string]string
}

func openUnix(s Spec, o *Options, _ *Registry) (Table, error) {
	t := &unixTable{spec: s.String(), opts: o}
	switch s.Name {
	case "passwd.byname":
		t.path = "/etc/passwd"
		if o.PasswdFile != "" {
			t.path = o.PasswdFile
		}
	case "group.byname":
		t.path = "/etc/group"
		if o.GroupFile != "" {
			t.path = o.GroupFile
		}
	default:
		return nil, fmt.Errorf("unknown unix table %q (want passwd.byname or group.byname)", s.Name)
	}
	if _, err := t.current(); err != nil {
		return nil, err
	}
	return t, nil
}

// current returns the entries, rereading the file when it changed.
func (t *unixTable) current() (map[string]string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fi, err := os.Stat(t.path)
	if err != nil {
		return nil, err
	}
	if t.entries != nil && stampOf(fi) == t.stamp {
		return t.entries, nil
	}
	f, err := os.Open(t.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := make(map[string]string)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), maxLogicalLine)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue // NIS compat entries are not ours to resolve
		}
		name, _, ok := strings.Cut(line, ":")
		if !ok || name == "" {
			continue
		}
		if _, dup := m[name]; !dup {
			m[name] = line
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", t.path, err)
	}
	t.entries, t.stamp = m, stampOf(fi)
	return m, nil
}

// Lookup finds an account by name. Postfix folds the key to lower case
// like other fixed tables, so a user whose name has capitals is found
// only with NoFold.
func (t *unixTable) Lookup(ctx context.Context, key string) ([]string, error) {
	m, err := t.current()
	if err != nil {
		return nil, lookupError(t.spec, err)
	}
	if v, ok := m[fold(t.opts, key)]; ok {
		return []string{v}, nil
	}
	return nil, nil
}

func (t *unixTable) Entries() []Entry {
	m, err := t.current()
	if err != nil {
		return nil
	}
	out := make([]Entry, 0, len(m))
	for k, v := range m {
		out = append(out, Entry{Key: k, Value: v})
	}
	sortEntries(out)
	return out
}

func (t *unixTable) Close() error { return nil }
