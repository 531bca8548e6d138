package imapd

import (
	"encoding/base64"
	"errors"
	"strings"
	"unicode/utf16"
)

// mUTF-7 is RFC 3501 5.1.3's modified base64 alphabet ("," for "/").
var mutf7 = base64.NewEncoding("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,").WithPadding(base64.NoPadding)

// validMUTF7 reports whether name is well-formed modified UTF-7 (RFC 3501
// 5.1.3): printable US-ASCII, "&-" for "&", and "&…-" runs of modified
// base64 of UTF-16 that do not encode printable ASCII.
func validMUTF7(name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x20 || c > 0x7e {
			return false
		}
		if c != '&' {
			continue
		}
		j := strings.IndexByte(name[i+1:], '-')
		if j < 0 {
			return false
		}
		run := name[i+1 : i+1+j]
		i += j + 1
		if run == "" {
			continue
		}
		b, err := mutf7.DecodeString(run)
		if err != nil || len(b)%2 != 0 {
			return false
		}
		u := make([]uint16, len(b)/2)
		for k := range u {
			u[k] = uint16(b[2*k])<<8 | uint16(b[2*k+1])
			if u[k] >= 0x20 && u[k] <= 0x7e {
				return false
			}
		}
		for _, r := range utf16.Decode(u) {
			if r == 0xfffd {
				return false
			}
		}
	}
	return true
}

// storeName maps a client's mailbox name onto the store's: the
// namespace separator becomes "/", INBOX is case-insensitive (RFC 3501
// 5.1), and names must be valid modified UTF-7.
func (s *session) storeName(name string) (string, error) {
	if name == "" {
		return "", errors.New("Empty mailbox name.")
	}
	if !validMUTF7(name) {
		return "", errors.New("Mailbox name is not valid mUTF-7")
	}
	sep := s.opts.Separator
	if sep != "/" {
		if strings.Contains(name, "/") {
			return "", errors.New("Character not allowed in mailbox name: '/'")
		}
		name = strings.ReplaceAll(name, sep, "/")
	}
	first, rest, hasRest := strings.Cut(name, "/")
	if strings.EqualFold(first, "INBOX") {
		name = "INBOX"
		if hasRest {
			name += "/" + rest
		}
	}
	for _, part := range strings.Split(name, "/") {
		if part == "" {
			return "", errors.New("Invalid mailbox name: empty hierarchy level")
		}
		if part == "." || part == ".." {
			return "", errors.New("Invalid mailbox name")
		}
	}
	return name, nil
}

// imapName maps a store name onto the client's separator.
func (s *session) imapName(name string) string {
	if s.opts.Separator == "/" {
		return name
	}
	return strings.ReplaceAll(name, "/", s.opts.Separator)
}

// writeMailboxName writes a mailbox name as an atom when it is one and
// as a quoted string (or literal) otherwise, as Dovecot does.
func (s *session) writeMailboxName(name string) {
	if name != "" && !strings.EqualFold(name, "NIL") && isAtomString(name) {
		s.w.WriteString(name)
		return
	}
	s.w.str(name)
}

// patternMatcher matches LIST patterns (RFC 3501 6.3.8): "*" matches
// anything, "%" anything but the separator.
type patternMatcher struct {
	pattern string
	sep     byte
}

func newPatternMatcher(pattern, sep string) patternMatcher {
	// INBOX in the pattern is case-insensitive, like the name.
	end := strings.IndexAny(pattern, "*%"+sep)
	if end < 0 {
		end = len(pattern)
	}
	if strings.EqualFold(pattern[:end], "INBOX") {
		pattern = "INBOX" + pattern[end:]
	}
	return patternMatcher{pattern: pattern, sep: sep[0]}
}

// match runs in O(len(pattern)*len(name)) by dynamic programming, so no
// pattern can make it explode.
func (m patternMatcher) match(name string) bool {
	p := m.pattern
	// cur[j]: pattern[:i] matches name[:j].
	cur := make([]bool, len(name)+1)
	next := make([]bool, len(name)+1)
	cur[0] = true
	for i := 0; i < len(p); i++ {
		for j := range next {
			next[j] = false
		}
		switch p[i] {
		case '*':
			seen := false
			for j := 0; j <= len(name); j++ {
				seen = seen || cur[j]
				next[j] = seen
			}
		case '%':
			seen := false
			for j := 0; j <= len(name); j++ {
				if j > 0 && name[j-1] == m.sep {
					seen = false
				}
				seen = seen || cur[j]
				next[j] = seen
			}
		default:
			for j := 1; j <= len(name); j++ {
				next[j] = cur[j-1] && name[j-1] == p[i]
			}
		}
		cur, next = next, cur
	}
	return cur[len(name)]
}
