package mailstore

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Layouts of the mailbox directories under the mail root.
const (
	LayoutMaildirPP = "maildir++" // Dovecot's default: .Sent, .Archive.2024
	LayoutFS        = "fs"        // LAYOUT=fs: Sent/, Archive/2024/
)

// IndexMemory is Location.Index when the location says INDEX=MEMORY: the
// store keeps its index in memory only.
const IndexMemory = "MEMORY"

// Location is a parsed Dovecot mail_location of the maildir format
// (https://doc.dovecot.org/2.3/configuration_manual/mail_location/).
type Location struct {
	Root    string // mail root: INBOX and the Maildir++ folders live here
	Layout  string // LayoutMaildirPP or LayoutFS
	Inbox   string // directory of INBOX (INBOX= option, else derived from Root)
	Index   string // INDEX=: where postcote-index files go; "" = in the Maildir; IndexMemory
	Control string // CONTROL=: where dovecot-uidlist, dovecot-keywords, subscriptions go; "" = Root
	DirName string // DIRNAME=: name of the Maildir directory inside each fs-layout folder
}

// ParseLocation parses a mail_location such as "maildir:~/Maildir" or
// "maildir:/var/mail/%d/%n:LAYOUT=fs:INDEX=/var/index/%u". The caller (the
// userdb) has already expanded the % variables; "~" at the start of a path
// is replaced by home here. "::" stands for a literal ":" in a path, as in
// Dovecot. Other formats (sdbox, mdbox, mbox) are refused with a clear
// error.
func ParseLocation(location, home string) (Location, error) {
	var loc Location
	if strings.TrimSpace(location) == "" {
		return loc, fmt.Errorf("mail_location is empty")
	}
	if strings.ContainsRune(location, 0) {
		return loc, fmt.Errorf("mail_location contains a NUL byte")
	}
	if i := unexpandedVar(location); i >= 0 {
		// Unexpanded, every user's mail would land in one "%u" folder.
		return loc, fmt.Errorf("mail_location %q still holds the variable %q: it must be expanded for the user first", location, location[i:min(i+2, len(location))])
	}
	format, rest, ok := strings.Cut(location, ":")
	if !ok || strings.ContainsRune(format, '/') || strings.HasPrefix(format, "~") {
		// A bare path: Dovecot autodetects; postcote supports Maildir.
		format, rest = "maildir", location
	}
	switch strings.ToLower(format) {
	case "maildir":
	case "sdbox", "mdbox", "dbox", "mbox", "imapc", "pop3c", "cydir", "imapdir":
		return loc, fmt.Errorf("%s mail_location is not supported yet by postcote (use maildir:)", strings.ToLower(format))
	default:
		return loc, fmt.Errorf("mail_location %q: unknown mailbox format %q", location, format)
	}
	parts := splitLocation(rest)
	if len(parts) == 0 || parts[0] == "" {
		return loc, fmt.Errorf("mail_location %q: no path", location)
	}
	loc.Layout = LayoutMaildirPP
	var err error
	if loc.Root, err = expandPath(parts[0], home); err != nil {
		return loc, fmt.Errorf("mail_location %q: %w", location, err)
	}
	for _, opt := range parts[1:] {
		key, val, _ := strings.Cut(opt, "=")
		switch strings.ToUpper(key) {
		case "LAYOUT":
			switch strings.ToLower(val) {
			case "maildir++":
				loc.Layout = LayoutMaildirPP
			case "fs":
				loc.Layout = LayoutFS
			default:
				return loc, fmt.Errorf("mail_location %q: LAYOUT=%s is not supported (maildir++ or fs)", location, val)
			}
		case "INBOX":
			if loc.Inbox, err = expandPath(val, home); err != nil {
				return loc, fmt.Errorf("mail_location %q: INBOX: %w", location, err)
			}
		case "INDEX":
			if strings.EqualFold(val, IndexMemory) {
				loc.Index = IndexMemory
			} else if loc.Index, err = expandPath(val, home); err != nil {
				return loc, fmt.Errorf("mail_location %q: INDEX: %w", location, err)
			}
		case "CONTROL":
			if loc.Control, err = expandPath(val, home); err != nil {
				return loc, fmt.Errorf("mail_location %q: CONTROL: %w", location, err)
			}
		case "DIRNAME":
			if val == "" || val == "." || val == ".." || strings.ContainsAny(val, "/") {
				return loc, fmt.Errorf("mail_location %q: bad DIRNAME %q", location, val)
			}
			loc.DirName = val
		case "":
			// "maildir:~/Maildir:" — an empty option is harmless.
		case "INDEXPVT", "VOLATILEDIR", "ALT", "UTF8", "FULLDIRNAME", "NO-NOSELECT", "SUBSCRIPTIONS", "MAILBOXDIR", "ITERINDEX", "NOACL", "NO-ACL":
			// Dovecot options that change nothing postcote does.
		default:
			return loc, fmt.Errorf("mail_location %q: unknown option %q", location, key)
		}
	}
	if loc.DirName != "" && loc.Layout != LayoutFS {
		// Dovecot allows DIRNAME with Maildir++ only for INBOX; keep it simple.
		return loc, fmt.Errorf("mail_location %q: DIRNAME needs LAYOUT=fs", location)
	}
	if loc.Inbox == "" {
		loc.Inbox = loc.Root
		if loc.DirName != "" {
			loc.Inbox = filepath.Join(loc.Root, "INBOX", loc.DirName)
		}
	}
	return loc, nil
}

// splitLocation splits on ":" where "::" is an escaped colon.
func splitLocation(s string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			if i+1 < len(s) && s[i+1] == ':' {
				cur.WriteByte(':')
				i++
				continue
			}
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(s[i])
	}
	return append(parts, cur.String())
}

// expandPath replaces a leading "~" with home and requires an absolute,
// clean result.
func expandPath(p, home string) (string, error) {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home == "" {
			return "", fmt.Errorf("path %q uses ~ but the user has no home directory", p)
		}
		p = home + p[1:]
	} else if strings.HasPrefix(p, "~") {
		return "", fmt.Errorf("path %q: ~user is not supported", p)
	}
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	return filepath.Clean(p), nil
}

// unexpandedVar returns the index of a Dovecot % variable left in s
// ("%u", "%{home}"), or -1.
func unexpandedVar(s string) int {
	for i := 0; i+1 < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		c := s[i+1]
		if c == '{' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') {
			return i
		}
	}
	return -1
}
