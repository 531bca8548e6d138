package userdb

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
)

// IDResolver turns user and group names into numeric IDs, for "uid=vmail"
// and "gid=vmail" fields.
type IDResolver interface {
	LookupUID(name string) (int, bool)
	LookupGID(name string) (int, bool)
}

// SystemIDs resolves names from passwd(5) and group(5) files without cgo
// or NSS: the files are parsed directly and re-read when they change.
type SystemIDs struct {
	passwd, group idFile
}

// NewSystemIDs reads names from the given files; "" means /etc/passwd and
// /etc/group.
func NewSystemIDs(passwdPath, groupPath string) *SystemIDs {
	if passwdPath == "" {
		passwdPath = "/etc/passwd"
	}
	if groupPath == "" {
		groupPath = "/etc/group"
	}
	return &SystemIDs{passwd: idFile{path: passwdPath}, group: idFile{path: groupPath}}
}

// LookupUID returns the uid of the user called name.
func (s *SystemIDs) LookupUID(name string) (int, bool) { return s.passwd.lookup(name) }

// LookupGID returns the gid of the group called name.
func (s *SystemIDs) LookupGID(name string) (int, bool) { return s.group.lookup(name) }

// idFile is a name -> id map read from the third field of a
// colon-separated file (passwd and group both keep the id there).
type idFile struct {
	path  string
	mu    sync.Mutex
	stamp fileStamp
	ids   map[string]int
}

func (f *idFile) lookup(name string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := statStamp(f.path)
	if err != nil {
		return 0, false
	}
	if f.ids == nil || st != f.stamp {
		ids, err := readIDFile(f.path)
		if err != nil {
			return 0, false
		}
		f.ids, f.stamp = ids, st
	}
	id, ok := f.ids[name]
	return id, ok
}

func readIDFile(path string) (map[string]int, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	ids := map[string]int{}
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 4)
		if len(parts) < 3 || parts[0] == "" || strings.HasPrefix(parts[0], "#") {
			continue
		}
		id, err := strconv.ParseUint(parts[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := ids[parts[0]]; !dup {
			ids[parts[0]] = int(id)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return ids, nil
}

// parseID reads a uid or gid field: a number, or a name resolved by
// lookup. It returns -1 for an invalid or unknown value, as Dovecot's
// userdb_parse_uid() does.
func parseID(s string, lookup func(string) (int, bool)) int {
	if s == "" {
		return -1
	}
	if s[0] >= '0' && s[0] <= '9' {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0xffffffff {
			return -1
		}
		return int(n)
	}
	if lookup == nil {
		return -1
	}
	if id, ok := lookup(s); ok {
		return id
	}
	return -1
}
