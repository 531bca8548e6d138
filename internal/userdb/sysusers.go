package userdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
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

// SystemIDs is the system's account files: passwd(5), group(5) and
// shadow(5), parsed directly without cgo or NSS and re-read when they
// change (mtime, size or inode), so that useradd, passwd and vipw apply
// without a reload. It resolves uid/gid names for every driver and is
// what the passwd userdb and the passwd, shadow and pam passdbs read:
// give Options.IDs a SystemIDs over other files to point them elsewhere.
//
// As glibc's files backend does, lines that cannot be parsed are skipped
// (a lookup of their user reports the line), comments and NIS "+"/"-"
// compat lines are ignored, and the first line of a name wins.
type SystemIDs struct {
	passwd *sysFile[*sysTable[PasswdEntry]]
	group  *sysFile[map[string]int]
	shadow *sysFile[*sysTable[ShadowEntry]]
}

// NewSystemIDs reads names from the given files; "" means /etc/passwd and
// /etc/group. The shadow file is /etc/shadow.
func NewSystemIDs(passwdPath, groupPath string) *SystemIDs {
	return NewSystemFiles(passwdPath, groupPath, "")
}

// NewSystemFiles is NewSystemIDs with the shadow file too; "" means
// /etc/shadow.
func NewSystemFiles(passwdPath, groupPath, shadowPath string) *SystemIDs {
	if passwdPath == "" {
		passwdPath = "/etc/passwd"
	}
	if groupPath == "" {
		groupPath = "/etc/group"
	}
	if shadowPath == "" {
		shadowPath = "/etc/shadow"
	}
	return &SystemIDs{
		passwd: &sysFile[*sysTable[PasswdEntry]]{path: passwdPath, parse: parsePasswdTable},
		group:  &sysFile[map[string]int]{path: groupPath, parse: parseGroupTable},
		shadow: &sysFile[*sysTable[ShadowEntry]]{path: shadowPath, parse: parseShadowTable},
	}
}

// LookupUID returns the uid of the user called name.
func (s *SystemIDs) LookupUID(name string) (int, bool) {
	e, ok, err := s.LookupPasswd(name)
	if err != nil || !ok {
		return 0, false
	}
	return e.UID, true
}

// LookupGID returns the gid of the group called name.
func (s *SystemIDs) LookupGID(name string) (int, bool) {
	ids, err := s.group.load()
	if err != nil {
		return 0, false
	}
	id, ok := ids[name]
	return id, ok
}

// PasswdEntry is one line of passwd(5):
// name:password:UID:GID:GECOS:directory:shell.
type PasswdEntry struct {
	Name     string
	Password string // "x" when the hash is in the shadow file
	UID, GID int
	Gecos    string
	Home     string
	Shell    string
}

// ErrMalformedEntry is returned for a user whose line in a system file
// cannot be parsed (a non-numeric uid, a bad date in shadow): the line is
// skipped, and the lookup says so instead of calling the user unknown.
var ErrMalformedEntry = errors.New("malformed entry")

// LookupPasswd returns name's passwd line. found is false for an unknown
// user; an error means the file could not be read or the user's line is
// malformed.
func (s *SystemIDs) LookupPasswd(name string) (PasswdEntry, bool, error) {
	return lookupSys(s.passwd, name)
}

// lookupSys finds name in a parsed system file.
func lookupSys[E any](f *sysFile[*sysTable[E]], name string) (E, bool, error) {
	var zero E
	t, err := f.load()
	if err != nil {
		return zero, false, err
	}
	if e, ok := t.byName[name]; ok {
		return *e, true, nil
	}
	if line, ok := t.bad[name]; ok {
		return zero, false, fmt.Errorf("%s:%d: %w for %q", f.path, line, ErrMalformedEntry, name)
	}
	return zero, false, nil
}

// Users returns the passwd entries in file order.
func (s *SystemIDs) Users() ([]PasswdEntry, error) {
	t, err := s.passwd.load()
	if err != nil {
		return nil, err
	}
	out := make([]PasswdEntry, len(t.order))
	for i, e := range t.order {
		out[i] = *e
	}
	return out, nil
}

// LookupShadow returns name's shadow line, with the same results as
// LookupPasswd.
func (s *SystemIDs) LookupShadow(name string) (ShadowEntry, bool, error) {
	return lookupSys(s.shadow, name)
}

// ShadowPath is the shadow(5) file read, for log lines.
func (s *SystemIDs) ShadowPath() string { return s.shadow.path }

// sysFile is a system file parsed into T, re-parsed when its stamp
// changes.
type sysFile[T any] struct {
	path  string
	parse func(r io.Reader) (T, error)

	mu     sync.Mutex
	stamp  fileStamp
	val    T
	loaded bool
}

// load returns the parsed contents, reading the file again if it changed.
func (f *sysFile[T]) load() (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var zero T
	st, err := statStamp(f.path)
	if err != nil {
		f.val, f.loaded = zero, false
		return zero, fmt.Errorf("stat %s: %w", f.path, err)
	}
	if f.loaded && st == f.stamp {
		return f.val, nil
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return zero, fmt.Errorf("open %s: %w", f.path, err)
	}
	defer fh.Close()
	v, err := f.parse(fh)
	if err != nil {
		return zero, fmt.Errorf("read %s: %w", f.path, err)
	}
	f.val, f.stamp, f.loaded = v, st, true
	return v, nil
}

// forEachLine calls fn with the colon-separated fields of each line that
// can hold an entry: not empty, not a comment, not a NIS compat line, not
// longer than maxPasswdLine.
func forEachLine(r io.Reader, fn func(lineNo int, fields []string)) error {
	br := bufio.NewReaderSize(r, 64*1024)
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(br)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		line = strings.TrimSuffix(line, "\r")
		if tooLong || line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		fn(lineNo, strings.Split(line, ":"))
	}
}

// parseSysID reads a uid or gid field: decimal, below 2^32-1 (which is
// (uid_t)-1, never a real id).
func parseSysID(s string) (int, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n == 0xffffffff {
		return 0, false
	}
	return int(n), true
}

// sysTable is a parsed passwd(5) or shadow(5) file.
type sysTable[E any] struct {
	byName map[string]*E
	order  []*E
	bad    map[string]int // name -> line of a line that did not parse
}

// parseSysTable reads the lines with parse; the first line of a name
// wins, and a line that does not parse is remembered by its name.
func parseSysTable[E any](r io.Reader, parse func(fields []string) (*E, bool)) (*sysTable[E], error) {
	t := &sysTable[E]{byName: map[string]*E{}, bad: map[string]int{}}
	err := forEachLine(r, func(lineNo int, f []string) {
		name := f[0]
		if name == "" {
			return
		}
		if _, dup := t.byName[name]; dup {
			return
		}
		e, ok := parse(f)
		if !ok {
			if _, seen := t.bad[name]; !seen {
				t.bad[name] = lineNo
			}
			return
		}
		t.byName[name] = e
		t.order = append(t.order, e)
	})
	return t, err
}

func parsePasswdTable(r io.Reader) (*sysTable[PasswdEntry], error) {
	return parseSysTable(r, parsePasswdFields)
}

// parsePasswdFields reads name:password:UID:GID[:GECOS:directory:shell]
// (glibc also accepts the short form without the last three).
func parsePasswdFields(f []string) (*PasswdEntry, bool) {
	if len(f) < 4 || len(f) > 7 {
		return nil, false
	}
	uid, ok1 := parseSysID(f[2])
	gid, ok2 := parseSysID(f[3])
	if !ok1 || !ok2 {
		return nil, false
	}
	e := &PasswdEntry{Name: f[0], Password: f[1], UID: uid, GID: gid}
	if len(f) > 4 {
		e.Gecos = f[4]
	}
	if len(f) > 5 {
		e.Home = f[5]
	}
	if len(f) > 6 {
		e.Shell = f[6]
	}
	return e, true
}

// parseGroupTable reads group(5): name:password:GID:user_list.
func parseGroupTable(r io.Reader) (map[string]int, error) {
	ids := map[string]int{}
	err := forEachLine(r, func(_ int, f []string) {
		if len(f) < 3 || f[0] == "" {
			return
		}
		if _, dup := ids[f[0]]; dup {
			return
		}
		if id, ok := parseSysID(f[2]); ok {
			ids[f[0]] = id
		}
	})
	return ids, err
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
