package transport

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// SystemUser is one passwd(5) entry: the account local(8) delivers to.
type SystemUser struct {
	Name     string
	UID, GID int
	Home     string
	Shell    string
}

// maxPasswdLine bounds one passwd(5) line; longer lines are skipped.
const maxPasswdLine = 64 << 10

// LookupPasswd finds name in the passwd(5) file at path ("" means
// /etc/passwd), read directly as getpwnam(3) would with the "files"
// NSS source (no cgo). found is false for a user the file does not
// list; err means the file could not be read. Names match exactly, as
// getpwnam does; local(8) folds the recipient to lower case first.
func LookupPasswd(path, name string) (u SystemUser, found bool, err error) {
	if path == "" {
		path = "/etc/passwd"
	}
	f, err := os.Open(path)
	if err != nil {
		return SystemUser{}, false, fmt.Errorf("open passwd file %s: %w", path, err)
	}
	defer f.Close()
	u, found, err = findPasswd(f, name)
	if err != nil {
		return SystemUser{}, false, fmt.Errorf("read passwd file %s: %w", path, err)
	}
	return u, found, nil
}

// findPasswd scans passwd(5) lines for name; the first entry wins.
func findPasswd(r io.Reader, name string) (SystemUser, bool, error) {
	if name == "" || strings.ContainsAny(name, ":\n") {
		return SystemUser{}, false, nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxPasswdLine)
	for sc.Scan() {
		if u, ok := parsePasswdLine(sc.Text()); ok && u.Name == name {
			return u, true, nil
		}
	}
	return SystemUser{}, false, sc.Err()
}

// parsePasswdLine reads "name:password:UID:GID:GECOS:directory:shell"
// (passwd(5)). Comment lines, NIS "+"/"-" entries and lines with bad
// numbers give ok false.
func parsePasswdLine(line string) (SystemUser, bool) {
	f := strings.Split(line, ":")
	if len(f) != 7 || f[0] == "" || strings.HasPrefix(f[0], "#") || f[0][0] == '+' || f[0][0] == '-' {
		return SystemUser{}, false
	}
	uid, err1 := strconv.ParseUint(f[2], 10, 32)
	gid, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil {
		return SystemUser{}, false
	}
	return SystemUser{Name: f[0], UID: int(uid), GID: int(gid), Home: f[5], Shell: f[6]}, true
}

// expandLocal expands local(8)'s $name, ${name} and the conditional
// forms ${name?text} and ${name:text} in a forward_path element (or
// luser_relay) with vars. A plain reference to a name vars does not
// define makes ok false: forward_path elements that use it are skipped,
// as Postfix's local(8) does with "$extension" when there is none.
func expandLocal(s string, vars map[string]string) (out string, ok bool) {
	var b strings.Builder
	ok = true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		var name, op, text string
		switch {
		case s[i+1] == '$':
			b.WriteByte('$')
			i++
			continue
		case s[i+1] == '{' || s[i+1] == '(':
			closer := byte('}')
			if s[i+1] == '(' {
				closer = ')'
			}
			end := strings.IndexByte(s[i+2:], closer)
			if end < 0 {
				b.WriteString(s[i:])
				return b.String(), ok
			}
			inner := s[i+2 : i+2+end]
			i += 2 + end
			name = inner
			if j := strings.IndexAny(inner, "?:"); j >= 0 {
				name, op, text = inner[:j], inner[j:j+1], inner[j+1:]
			}
		default:
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			if j == i+1 {
				b.WriteByte(c)
				continue
			}
			name = s[i+1 : j]
			i = j - 1
		}
		v, defined := vars[strings.ToLower(name)]
		defined = defined && v != ""
		switch op {
		case "?":
			if defined {
				t, tok := expandLocal(text, vars)
				ok = ok && tok
				b.WriteString(t)
			}
		case ":":
			if !defined {
				t, tok := expandLocal(text, vars)
				ok = ok && tok
				b.WriteString(t)
			}
		default:
			if !defined {
				ok = false
			}
			b.WriteString(v)
		}
	}
	return b.String(), ok
}
