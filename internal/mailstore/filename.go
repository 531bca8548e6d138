package mailstore

import (
	"sort"
	"strconv"
	"strings"
)

// Maildir info: a file in cur/ is named "<base>:2,<flags>", where flags are
// single letters in ASCII order (https://cr.yp.to/proto/maildir.html):
// uppercase for the system flags and, in Dovecot's extension, lowercase
// a–z for keywords numbered in dovecot-keywords.
const infoSep = ":2,"

// systemFlagLetters maps Maildir letters to IMAP system flags. 'P'
// (passed) has no IMAP flag; it is kept in the name but not shown.
var systemFlagLetters = [...]struct {
	letter byte
	flag   string
}{
	{'D', FlagDraft},
	{'F', FlagFlagged},
	{'R', FlagAnswered},
	{'S', FlagSeen},
	{'T', FlagDeleted},
}

// fileName is a parsed Maildir file name.
type fileName struct {
	Base    string // up to the ':' — the message's identity
	Size    int64  // S=: physical size; -1 when absent
	VSize   int64  // W=: size with CRLF line ends; -1 when absent
	HasInfo bool   // the name has a ":2," part
	Flags   string // letters after ":2,"
}

// parseFileName splits a Maildir file name. It never fails: a name
// without sizes or info is still a message.
func parseFileName(name string) fileName {
	fn := fileName{Base: name, Size: -1, VSize: -1}
	if i := strings.IndexByte(name, ':'); i >= 0 {
		fn.Base = name[:i]
		if strings.HasPrefix(name[i:], infoSep) {
			fn.HasInfo = true
			fn.Flags = name[i+len(infoSep):]
		}
	}
	// Dovecot's fields follow the first ',' of the base: ",S=123,W=130".
	if i := strings.IndexByte(fn.Base, ','); i >= 0 {
		rest := fn.Base[i+1:]
		for rest != "" {
			var f string
			f, rest, _ = strings.Cut(rest, ",")
			if len(f) < 3 || f[1] != '=' {
				continue
			}
			n, err := strconv.ParseInt(f[2:], 10, 64)
			if err != nil || n < 0 {
				continue
			}
			switch f[0] {
			case 'S':
				fn.Size = n
			case 'W':
				fn.VSize = n
			}
		}
	}
	return fn
}

// name builds the file name for the given flag letters in cur/.
func curName(base, letters string) string {
	return base + infoSep + letters
}

// sortLetters returns the letters in ASCII order without duplicates, as
// the Maildir specification requires.
func sortLetters(letters string) string {
	b := []byte(letters)
	sort.Slice(b, func(i, j int) bool { return b[i] < b[j] })
	out := b[:0]
	for i, c := range b {
		if i > 0 && c == b[i-1] {
			continue
		}
		out = append(out, c)
	}
	return string(out)
}

// flagsFromLetters turns Maildir letters into IMAP flags using the
// keyword table. Letters with no meaning are skipped.
func flagsFromLetters(letters string, kw *keywords) []string {
	flags := make([]string, 0, len(letters))
	for i := 0; i < len(letters); i++ {
		c := letters[i]
		if c >= 'a' && c <= 'z' {
			if kw != nil {
				if k := kw.name(int(c - 'a')); k != "" {
					flags = append(flags, k)
				}
			}
			continue
		}
		for _, s := range systemFlagLetters {
			if s.letter == c {
				flags = append(flags, s.flag)
			}
		}
	}
	return flags
}

// systemLetter returns the Maildir letter of an IMAP system flag.
func systemLetter(flag string) (byte, bool) {
	for _, s := range systemFlagLetters {
		if strings.EqualFold(s.flag, flag) {
			return s.letter, true
		}
	}
	return 0, false
}

// hasLetter says whether letters contain c.
func hasLetter(letters string, c byte) bool {
	return strings.IndexByte(letters, c) >= 0
}

// applyLetters combines current letters with the letters of a STORE.
// Letters outside the IMAP-visible set (such as 'P') survive a replace.
func applyLetters(cur, change string, op FlagOp) string {
	switch op {
	case FlagsAdd:
		return sortLetters(cur + change)
	case FlagsRemove:
		var b strings.Builder
		for i := 0; i < len(cur); i++ {
			if !hasLetter(change, cur[i]) {
				b.WriteByte(cur[i])
			}
		}
		return b.String()
	default:
		var b strings.Builder
		for i := 0; i < len(cur); i++ {
			c := cur[i]
			if (c < 'a' || c > 'z') && !isSystemLetter(c) {
				b.WriteByte(c)
			}
		}
		return sortLetters(b.String() + change)
	}
}

func isSystemLetter(c byte) bool {
	for _, s := range systemFlagLetters {
		if s.letter == c {
			return true
		}
	}
	return false
}

// hostnameForFile escapes a host name the way Dovecot does for Maildir
// file names: '/' and ':' become "\057" and "\072".
func hostnameForFile(h string) string {
	h = strings.ReplaceAll(h, "/", `\057`)
	h = strings.ReplaceAll(h, ":", `\072`)
	if h == "" {
		h = "localhost"
	}
	return h
}

// fileTime returns the seconds and microseconds a Dovecot-style base
// name starts with, for ordering new files the way Dovecot assigns UIDs.
func fileTime(base string) (sec, usec int64) {
	dot := strings.IndexByte(base, '.')
	if dot <= 0 {
		return 0, 0
	}
	sec, _ = strconv.ParseInt(base[:dot], 10, 64)
	rest := base[dot+1:]
	if strings.HasPrefix(rest, "M") {
		end := 1
		for end < len(rest) && rest[end] >= '0' && rest[end] <= '9' {
			end++
		}
		usec, _ = strconv.ParseInt(rest[1:end], 10, 64)
	}
	return sec, usec
}

// lessFileName orders base names by their time stamp, then by name.
func lessFileName(a, b string) bool {
	as, au := fileTime(a)
	bs, bu := fileTime(b)
	if as != bs {
		return as < bs
	}
	if au != bu {
		return au < bu
	}
	return a < b
}
