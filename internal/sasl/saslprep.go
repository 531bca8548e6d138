package sasl

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// SASLprep prepares a user name or password as a query string with the
// SASLprep profile (RFC 4013) of stringprep (RFC 3454): non-ASCII spaces
// become U+0020, the characters "commonly mapped to nothing" are removed,
// the result is NFKC-normalized, prohibited characters (controls, private
// use, non-characters, surrogates, tagging and display-changing ones) fail
// it, and so does a mix of right-to-left and left-to-right text that
// breaks RFC 3454 6. Unassigned code points are allowed, as for a query.
// The normalization is golang.org/x/text's, of a newer Unicode version
// than stringprep's 3.2; the two differ only on characters assigned
// since. A string that is ASCII without control characters comes back
// unchanged.
func SASLprep(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("SASLprep: not UTF-8") // C.5 surrogates decode as errors
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			ascii = false
			break
		}
	}
	if ascii {
		return s, nil
	}
	// RFC 4013 2.1 mapping.
	var b strings.Builder
	for _, r := range s {
		switch {
		case mappedToNothing(r):
		case nonASCIISpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	// RFC 4013 2.2 normalization: form KC.
	out := norm.NFKC.String(b.String())
	// RFC 4013 2.3 prohibited output and 2.4 bidi (RFC 3454 6).
	var hasRandAL, hasL bool
	for _, r := range out {
		if prohibited(r) {
			return "", fmt.Errorf("SASLprep: prohibited character U+%04X", r)
		}
		p, _ := bidi.LookupRune(r)
		switch p.Class() {
		case bidi.R, bidi.AL:
			hasRandAL = true
		case bidi.L:
			hasL = true
		}
	}
	if hasRandAL {
		first, _ := utf8.DecodeRuneInString(out)
		last, _ := utf8.DecodeLastRuneInString(out)
		if hasL || !randAL(first) || !randAL(last) {
			return "", errors.New("SASLprep: mixed or badly delimited right-to-left text")
		}
	}
	return out, nil
}

func randAL(r rune) bool {
	p, _ := bidi.LookupRune(r)
	return p.Class() == bidi.R || p.Class() == bidi.AL
}

// nonASCIISpace is RFC 3454 table C.1.2.
func nonASCIISpace(r rune) bool {
	switch r {
	case 0x00A0, 0x1680, 0x202F, 0x205F, 0x3000:
		return true
	}
	return r >= 0x2000 && r <= 0x200B
}

// mappedToNothing is RFC 3454 table B.1.
func mappedToNothing(r rune) bool {
	switch r {
	case 0x00AD, 0x034F, 0x1806, 0x180B, 0x180C, 0x180D, 0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF:
		return true
	}
	return r >= 0xFE00 && r <= 0xFE0F
}

// prohibited is RFC 4013 2.3: RFC 3454 tables C.1.2 and C.2.1 to C.9.
func prohibited(r rune) bool {
	switch {
	case nonASCIISpace(r): // C.1.2
		return true
	case r < 0x20 || r == 0x7F: // C.2.1
		return true
	case r >= 0x80 && r <= 0x9F: // C.2.2
		return true
	case r == 0x06DD, r == 0x070F, r == 0x180E, r == 0x200C, r == 0x200D,
		r == 0x2028, r == 0x2029, r >= 0x2060 && r <= 0x2063, r == 0xFEFF,
		r >= 0xFFF9 && r <= 0xFFFC, r >= 0x1D173 && r <= 0x1D17A: // C.2.2
		return true
	case r >= 0xE000 && r <= 0xF8FF, r >= 0xF0000 && r <= 0xFFFFD, r >= 0x100000 && r <= 0x10FFFD: // C.3
		return true
	case r >= 0xFDD0 && r <= 0xFDEF, r&0xFFFE == 0xFFFE: // C.4
		return true
	case r >= 0xD800 && r <= 0xDFFF, r == utf8.RuneError: // C.5 (and undecodable bytes)
		return true
	case r >= 0xFFF9 && r <= 0xFFFD: // C.6
		return true
	case r >= 0x2FF0 && r <= 0x2FFB: // C.7
		return true
	case r == 0x0340, r == 0x0341, r == 0x200E, r == 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x206A && r <= 0x206F: // C.8
		return true
	case r == 0xE0001, r >= 0xE0020 && r <= 0xE007F: // C.9
		return true
	}
	return false
}
