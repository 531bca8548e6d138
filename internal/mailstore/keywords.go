package mailstore

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// maxKeywords is how many keywords a Maildir can name: one lowercase
// letter each, a–z.
const maxKeywords = 26

// keywords is the dovecot-keywords table: "<index> <keyword>" per line,
// index 0 being letter 'a'.
type keywords struct {
	names [maxKeywords]string
}

// parseKeywords reads a dovecot-keywords file. Like Dovecot it skips
// lines it cannot use instead of failing.
func parseKeywords(data []byte) *keywords {
	kw := &keywords{}
	for _, line := range bytes.Split(data, []byte("\n")) {
		l := strings.TrimRight(string(line), "\r")
		idx, name, ok := strings.Cut(l, " ")
		if !ok || name == "" || !validKeyword(name) {
			continue
		}
		n, err := strconv.Atoi(idx)
		if err != nil || n < 0 || n >= maxKeywords {
			continue
		}
		if kw.index(name) >= 0 {
			continue
		}
		kw.names[n] = name
	}
	return kw
}

// marshal writes the table in Dovecot's format.
func (kw *keywords) marshal() []byte {
	var b bytes.Buffer
	for i, n := range kw.names {
		if n != "" {
			fmt.Fprintf(&b, "%d %s\n", i, n)
		}
	}
	return b.Bytes()
}

func (kw *keywords) name(i int) string {
	if i < 0 || i >= maxKeywords {
		return ""
	}
	return kw.names[i]
}

// index finds a keyword; IMAP keywords compare case-insensitively
// (RFC 9051 2.3.2).
func (kw *keywords) index(name string) int {
	for i, n := range kw.names {
		if n != "" && strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// add gives name a letter, returning its index, or -1 when all 26
// letters are taken (Dovecot then drops the keyword for this Maildir).
func (kw *keywords) add(name string) int {
	if i := kw.index(name); i >= 0 {
		return i
	}
	for i, n := range kw.names {
		if n == "" {
			kw.names[i] = name
			return i
		}
	}
	return -1
}

// list returns the defined keywords in index order.
func (kw *keywords) list() []string {
	var out []string
	for _, n := range kw.names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// validKeyword accepts an IMAP flag-keyword atom (RFC 9051 9: atom, no
// atom-specials, no "\").
func validKeyword(k string) bool {
	if k == "" || len(k) > 200 {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= 0x20 || c >= 0x7f || strings.IndexByte(`(){%*"\]`, c) >= 0 {
			return false
		}
	}
	return true
}
