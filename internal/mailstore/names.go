package mailstore

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// maxNameLen bounds a mailbox name in bytes. A Maildir++ folder is one
// directory entry, so its name must fit NAME_MAX (255) with the leading dot.
const maxNameLen = 254

// boxPaths says where one mailbox's files are.
type boxPaths struct {
	Name    string // normalized API name, "/"-separated
	Dir     string // the Maildir: cur/ new/ tmp/
	Control string // dovecot-uidlist, dovecot-keywords
	Index   string // postcote-index; "" when INDEX=MEMORY
}

// normalizeName checks a mailbox name from a client and returns it with
// INBOX spelled canonically, and its components. ASCII names are taken
// as modified UTF-7, as IMAP sends them; a name with non-ASCII UTF-8 is
// encoded to modified UTF-7. Names can never leave
// the mail root: empty components, ".", "..", NUL, control characters and
// invalid UTF-8 are refused with ErrBadName.
func normalizeName(name, layout, dirName string) (string, []string, error) {
	if name == "" || len(name) > maxNameLen || !utf8.ValidString(name) {
		return "", nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return "", nil, fmt.Errorf("%w: control character in %q", ErrBadName, name)
		}
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			// UTF-8 (IMAP4rev2, Sieve fileinto, LMTP): store the name the
			// way IMAP4rev1 shows it and Dovecot keeps it on disk.
			name = utf8ToMUTF7(name)
			if len(name) > maxNameLen {
				return "", nil, fmt.Errorf("%w: name too long", ErrBadName)
			}
			break
		}
	}
	parts := strings.Split(name, "/")
	for i, p := range parts {
		switch {
		case p == "", p == ".", p == "..":
			return "", nil, fmt.Errorf("%w: %q", ErrBadName, name)
		case layout == LayoutMaildirPP && strings.Contains(p, "."):
			// Maildir++ uses "." as the hierarchy separator on disk.
			return "", nil, fmt.Errorf("%w: %q: '.' is not allowed in a mailbox name with Maildir++ layout", ErrBadName, name)
		case layout == LayoutFS && (strings.HasPrefix(p, ".") || p == "cur" || p == "new" || p == "tmp" || (dirName != "" && p == dirName)):
			return "", nil, fmt.Errorf("%w: %q: reserved name %q", ErrBadName, name, p)
		}
		if i == 0 && strings.EqualFold(p, "INBOX") {
			parts[0] = "INBOX"
		}
	}
	return strings.Join(parts, "/"), parts, nil
}

// mutf7 is the modified base64 of RFC 3501 5.1.3 ("," for "/").
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// utf8ToMUTF7 encodes a UTF-8 mailbox name in modified UTF-7 (RFC 3501
// 5.1.3): printable ASCII stands for itself, "&" is "&-", anything else is
// "&" + modified base64 of UTF-16 + "-".
func utf8ToMUTF7(s string) string {
	var b strings.Builder
	var run []uint16
	flush := func() {
		if len(run) == 0 {
			return
		}
		buf := make([]byte, 2*len(run))
		for i, u := range run {
			buf[2*i], buf[2*i+1] = byte(u>>8), byte(u)
		}
		b.WriteByte('&')
		b.WriteString(mutf7.EncodeToString(buf))
		b.WriteByte('-')
		run = run[:0]
	}
	for _, r := range s {
		if r >= 0x20 && r <= 0x7e {
			flush()
			if r == '&' {
				b.WriteString("&-")
			} else {
				b.WriteRune(r)
			}
			continue
		}
		run = append(run, utf16.Encode([]rune{r})...)
	}
	flush()
	return b.String()
}

// paths returns where the mailbox name lives. name must be normalized.
func (l Location) paths(name string) boxPaths {
	bp := boxPaths{Name: name}
	var rel string // the mailbox's path relative to the roots
	if name == "INBOX" {
		// Under CONTROL= and INDEX= Dovecot keeps INBOX's files in
		// ".INBOX" (Maildir++) or "INBOX" (fs).
		bp.Dir = l.Inbox
		rel = "INBOX"
		if l.Layout == LayoutMaildirPP {
			rel = ".INBOX"
		}
	} else if l.Layout == LayoutMaildirPP {
		rel = "." + strings.ReplaceAll(name, "/", ".")
		bp.Dir = filepath.Join(l.Root, rel)
	} else {
		rel = filepath.FromSlash(name)
		bp.Dir = filepath.Join(l.Root, rel)
		if l.DirName != "" {
			bp.Dir = filepath.Join(bp.Dir, l.DirName)
		}
	}
	bp.Control = bp.Dir
	if l.Control != "" {
		bp.Control = filepath.Join(l.Control, rel)
	}
	switch l.Index {
	case "":
		bp.Index = bp.Control
	case IndexMemory:
		bp.Index = ""
	default:
		bp.Index = filepath.Join(l.Index, rel)
	}
	return bp
}

// controlRoot is where account-wide files go: subscriptions,
// dovecot-uidvalidity, postcote-specialuse.
func (l Location) controlRoot() string {
	if l.Control != "" {
		return l.Control
	}
	return l.Root
}

// listNames returns the names of every mailbox on disk except INBOX,
// sorted.
func (l Location) listNames() ([]string, error) {
	var names []string
	if l.Layout == LayoutMaildirPP {
		ents, err := os.ReadDir(l.Root)
		if err != nil {
			if os.IsNotExist(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("list %s: %w", l.Root, err)
		}
		for _, e := range ents {
			n := e.Name()
			if len(n) < 2 || n[0] != '.' || n[1] == '.' {
				continue
			}
			if !e.IsDir() {
				continue // files, and symbolic links (see account.exists)
			}
			name := strings.ReplaceAll(n[1:], ".", "/")
			norm, _, err := normalizeName(name, LayoutFS, "")
			if err != nil || norm == "INBOX" || strings.ContainsAny(n[1:], "/") {
				continue
			}
			names = append(names, norm)
		}
	} else {
		if err := l.walkFS(l.Root, "", &names); err != nil {
			return nil, err
		}
	}
	sort.Strings(names)
	return names, nil
}

func (l Location) walkFS(dir, prefix string, names *[]string) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return fmt.Errorf("list %s: %w", dir, err)
	}
	for _, e := range ents {
		n := e.Name()
		if !e.IsDir() || strings.HasPrefix(n, ".") || n == "cur" || n == "new" || n == "tmp" || n == l.DirName {
			continue
		}
		name := prefix + n
		if _, _, err := normalizeName(name, LayoutFS, l.DirName); err != nil {
			continue
		}
		sub := filepath.Join(dir, n)
		if name != "INBOX" {
			box := sub
			if l.DirName != "" {
				box = filepath.Join(sub, l.DirName)
			}
			if isMaildir(box) {
				*names = append(*names, name)
			}
		}
		if len(*names) > 100000 {
			return fmt.Errorf("list %s: too many mailboxes", l.Root)
		}
		if err := l.walkFS(sub, name+"/", names); err != nil {
			return err
		}
	}
	return nil
}

// isMaildir says whether dir holds a mailbox (has cur/).
func isMaildir(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "cur"))
	return err == nil && st.IsDir()
}
