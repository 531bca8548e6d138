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
	"syscall"
	"time"
)

// The passwd-file format, as Dovecot 2.3's db-passwd-file.c reads it
// (https://doc.dovecot.org/2.3/configuration_manual/authentication/passwd_file/):
//
//	user:password:uid:gid:(gecos):home:(shell):extra_fields
//
// Only user is required. Blank lines, lines starting with "#" and lines
// starting with ":" (no user) are skipped. The password may be
// "{SCHEME}data", bare data in the passdb's scheme, or libpam-pwdfile's
// "data[13]" (CRYPT) / "data[34]" (PLAIN-MD5). uid and gid are numbers or
// names from /etc/passwd and /etc/group; for a userdb, 0 (root) and
// unknown names make the line invalid. The gecos and shell fields are
// ignored. A line that stops before the gid field is for the passdb only:
// a userdb does not find that user. Everything after the shell field is joined back with ":" (so
// "userdb_mail=maildir:~/Maildir" survives) and split on spaces into
// key=value extra fields; keys starting "userdb_" go to the userdb, the
// others to the passdb. An empty field after the shell is the old format:
// the rest is then a mail location ("userdb_mail=").
//
// A line with an error is logged with file:line and skipped, and the rest
// of the file stays usable.

// maxPasswdLine bounds one line of a passwd-file; longer lines are
// reported and skipped.
const maxPasswdLine = 64 * 1024

// Entry is one user of a passwd-file.
type Entry struct {
	User     string
	Password string // as stored, possibly "{SCHEME}..."; "" when absent
	HasPass  bool   // the password field was present (even if empty)
	UID, GID int    // -1 when not given (or when parsed for a passdb only)
	Home     string // "" when not given
	Extra    []string
	Line     int
	// NoUserdb is set when the line stops before the gid field: Dovecot
	// then treats the user as passdb-only and userdb lookups fail.
	NoUserdb bool
}

// ParsePasswdLine parses one line. It returns (nil, nil) for a line that
// holds no user (blank, comment). forUserdb enables the uid/gid checks a
// userdb needs; ids resolves names (nil: numbers only).
func ParsePasswdLine(line string, forUserdb bool, ids IDResolver) (*Entry, error) {
	line = strings.TrimSuffix(line, "\r")
	if line == "" || line[0] == ':' || line[0] == '#' {
		return nil, nil
	}
	args := strings.Split(line, ":")
	e := &Entry{User: args[0], UID: -1, GID: -1}
	if strings.ContainsAny(e.User, "\x00") {
		return nil, fmt.Errorf("user name contains NUL")
	}
	args = args[1:]
	if len(args) > 0 {
		e.HasPass = true
		pass := args[0]
		args = args[1:]
		n := len(pass)
		if n > 4 && pass[0] != '{' && pass[0] != '$' && pass[n-1] == ']' && pass[n-4] == '[' {
			// libpam-pwdfile "password[type]": 13 = DES, 34 = MD5,
			// 56 = DIGEST-MD5.
			data := pass[:n-4]
			switch pass[n-3 : n-1] {
			case "34":
				pass = "{PLAIN-MD5}" + data
			case "56":
				pass = "{DIGEST-MD5}" + data
				if len(data) != 32 {
					return nil, fmt.Errorf("user %s has invalid password", e.User)
				}
			default:
				pass = "{CRYPT}" + data
			}
		}
		e.Password = pass
	}
	var lookupUID, lookupGID func(string) (int, bool)
	if ids != nil {
		lookupUID, lookupGID = ids.LookupUID, ids.LookupGID
	}
	// uid
	if len(args) > 0 {
		if forUserdb && args[0] != "" {
			e.UID = parseID(args[0], lookupUID)
			if e.UID <= 0 {
				return nil, fmt.Errorf("user %s has invalid UID '%s'", e.User, args[0])
			}
		}
		args = args[1:]
	}
	// gid
	if len(args) > 0 {
		if forUserdb && args[0] != "" {
			e.GID = parseID(args[0], lookupGID)
			if e.GID <= 0 {
				return nil, fmt.Errorf("user %s has invalid GID '%s'", e.User, args[0])
			}
		}
		args = args[1:]
	} else {
		e.NoUserdb = true
	}
	// gecos
	if len(args) > 0 {
		args = args[1:]
	}
	// home
	if len(args) > 0 {
		if forUserdb {
			e.Home = args[0]
		}
		args = args[1:]
	}
	// shell
	if len(args) > 0 {
		args = args[1:]
	}
	switch {
	case len(args) > 0 && args[0] == "":
		// Old format: an empty field, then a mail location.
		if rest := strings.Join(args[1:], ":"); rest != "" && forUserdb {
			e.Extra = []string{"userdb_mail=" + rest}
		}
	case len(args) > 0:
		e.Extra = strings.Fields(strings.Join(args, ":"))
	}
	return e, nil
}

// fileStamp is what tells a changed file from the cached one.
type fileStamp struct {
	mtime    time.Time
	size     int64
	ino, dev uint64
}

func statStamp(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{mtime: fi.ModTime(), size: fi.Size()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.ino, st.dev = uint64(sys.Ino), uint64(sys.Dev)
	}
	return st, nil
}

// passwdFile is the parsed, cached contents of one file. It is re-read
// when its mtime, size or inode change, so edits (including an editor's
// write-and-rename) apply without a reload.
type passwdFile struct {
	path      string
	forUserdb bool
	ids       IDResolver
	log       func(format string, args ...any)

	mu    sync.Mutex
	stamp fileStamp
	users map[string]*Entry
	order []string
}

// errNoFile is returned when the file does not exist.
var errNoFile = errors.New("no passwd file")

// sync re-reads the file when it changed and returns a consistent view.
func (f *passwdFile) sync() (map[string]*Entry, []string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, err := statStamp(f.path)
	if err != nil {
		f.users, f.order = nil, nil
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("passwd-file %s: %w", f.path, errNoFile)
		}
		return nil, nil, fmt.Errorf("passwd-file %s: stat: %w", f.path, err)
	}
	if f.users != nil && st == f.stamp {
		return f.users, f.order, nil
	}
	fh, err := os.Open(f.path)
	if err != nil {
		return nil, nil, fmt.Errorf("passwd-file %s: can't open file: %w", f.path, err)
	}
	defer fh.Close()
	// Stamp the open file itself, so a change during the read shows
	// up as a different stamp on the next lookup.
	if fi, err := fh.Stat(); err == nil {
		st = fileStamp{mtime: fi.ModTime(), size: fi.Size()}
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st.ino, st.dev = uint64(sys.Ino), uint64(sys.Dev)
		}
	}
	users, order, err := f.parse(fh)
	if err != nil {
		return nil, nil, fmt.Errorf("passwd-file %s: read: %w", f.path, err)
	}
	f.users, f.order, f.stamp = users, order, st
	return users, order, nil
}

func (f *passwdFile) parse(r io.Reader) (map[string]*Entry, []string, error) {
	users := map[string]*Entry{}
	var order []string
	br := bufio.NewReaderSize(r, 64*1024)
	for lineNo := 1; ; lineNo++ {
		line, tooLong, err := readLine(br)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		where := f.path + ":" + strconv.Itoa(lineNo)
		if tooLong {
			f.logf("passwd-file %s: line longer than %d bytes, skipped", where, maxPasswdLine)
			continue
		}
		e, perr := ParsePasswdLine(line, f.forUserdb, f.ids)
		if perr != nil {
			f.logf("passwd-file %s: %v", where, perr)
			continue
		}
		if e == nil {
			continue
		}
		e.Line = lineNo
		if prev, dup := users[e.User]; dup {
			f.logf("passwd-file %s: user %s exists more than once (first at line %d)", where, e.User, prev.Line)
			continue
		}
		if e.NoUserdb && f.forUserdb {
			f.logf("passwd-file %s: user %s is missing userdb info (no gid field): userdb lookups will not find it", where, e.User)
		}
		users[e.User] = e
		order = append(order, e.User)
	}
	return users, order, nil
}

func (f *passwdFile) logf(format string, args ...any) {
	if f.log != nil {
		f.log(format, args...)
	}
}

// readLine returns the next line without its newline. A line longer than
// maxPasswdLine is consumed and reported with tooLong.
func readLine(br *bufio.Reader) (string, bool, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > maxPasswdLine+1 {
			tooLong = true
		} else {
			buf = append(buf, chunk...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			if len(buf) == 0 && !tooLong {
				return "", false, io.EOF
			}
			return string(buf), tooLong, nil
		case err != nil:
			return "", false, err
		}
		return strings.TrimSuffix(string(buf), "\n"), tooLong, nil
	}
}
