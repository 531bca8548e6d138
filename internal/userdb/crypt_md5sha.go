package userdb

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// This file implements the MD5-crypt ("$1$") and SHA-crypt ("$5$", "$6$")
// password hashes from their specifications, because no well-kept Go module
// provides them:
//
//   - MD5-crypt: Poul-Henning Kamp's FreeBSD crypt-md5.c (1994), the
//     algorithm glibc and Dovecot's password-scheme-md5crypt.c follow.
//   - SHA-crypt: Ulrich Drepper, "Unix crypt using SHA-256 and SHA-512"
//     (https://www.akkadia.org/drepper/SHA-crypt.txt), version 0.6, 2016.

// cryptAlphabet is the "./0-9A-Za-z" alphabet of crypt(3) hashes and salts.
const cryptAlphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// SHA-crypt round limits from the specification.
const (
	shaCryptRoundsDefault = 5000
	shaCryptRoundsMin     = 1000
	shaCryptRoundsMax     = 999999999
	shaCryptSaltMax       = 16
	md5CryptSaltMax       = 8
)

var errBadCrypt = errors.New("malformed crypt hash")

// cryptB64 appends the crypt(3) base-64 encoding of the 24-bit group
// b2 b1 b0, n characters, least significant 6 bits first.
func cryptB64(dst []byte, b2, b1, b0 byte, n int) []byte {
	w := uint(b2)<<16 | uint(b1)<<8 | uint(b0)
	for ; n > 0; n-- {
		dst = append(dst, cryptAlphabet[w&0x3f])
		w >>= 6
	}
	return dst
}

// md5Crypt computes the "$1$salt$hash" string of password. salt is the part
// after "$1$", up to the next "$" and at most 8 characters.
func md5Crypt(password, salt []byte) string {
	const magic = "$1$"
	if i := strings.IndexByte(string(salt), '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > md5CryptSaltMax {
		salt = salt[:md5CryptSaltMax]
	}

	alt := md5.New()
	alt.Write(password)
	alt.Write(salt)
	alt.Write(password)
	altSum := alt.Sum(nil)

	ctx := md5.New()
	ctx.Write(password)
	ctx.Write([]byte(magic))
	ctx.Write(salt)
	for n := len(password); n > 0; n -= 16 {
		ctx.Write(altSum[:min(n, 16)])
	}
	// For each bit of the length: a NUL byte for a set bit, the first
	// password byte for a clear one (an artefact of the original C code
	// that every implementation keeps).
	for i := len(password); i > 0; i >>= 1 {
		if i&1 != 0 {
			ctx.Write([]byte{0})
		} else {
			ctx.Write(password[:1])
		}
	}
	final := ctx.Sum(nil)

	for i := 0; i < 1000; i++ {
		c := md5.New()
		if i&1 != 0 {
			c.Write(password)
		} else {
			c.Write(final)
		}
		if i%3 != 0 {
			c.Write(salt)
		}
		if i%7 != 0 {
			c.Write(password)
		}
		if i&1 != 0 {
			c.Write(final)
		} else {
			c.Write(password)
		}
		final = c.Sum(final[:0])
	}

	out := make([]byte, 0, len(magic)+len(salt)+1+22)
	out = append(out, magic...)
	out = append(out, salt...)
	out = append(out, '$')
	out = cryptB64(out, final[0], final[6], final[12], 4)
	out = cryptB64(out, final[1], final[7], final[13], 4)
	out = cryptB64(out, final[2], final[8], final[14], 4)
	out = cryptB64(out, final[3], final[9], final[15], 4)
	out = cryptB64(out, final[4], final[10], final[5], 4)
	out = cryptB64(out, 0, 0, final[11], 2)
	return string(out)
}

// shaCryptParams is the parsed setting part of a "$5$" or "$6$" hash.
type shaCryptParams struct {
	id       byte // '5' or '6'
	rounds   int
	explicit bool // "rounds=N$" was present and is repeated in the output
	salt     []byte
}

// parseSHACrypt reads "$5$[rounds=N$]salt[$hash]" (the hash part may be
// absent when the string is only a setting for generation).
func parseSHACrypt(s string) (shaCryptParams, error) {
	var p shaCryptParams
	if len(s) < 3 || s[0] != '$' || (s[1] != '5' && s[1] != '6') || s[2] != '$' {
		return p, errBadCrypt
	}
	p.id = s[1]
	rest := s[3:]
	p.rounds = shaCryptRoundsDefault
	if r, ok := strings.CutPrefix(rest, "rounds="); ok {
		end := strings.IndexByte(r, '$')
		if end < 0 {
			return p, errBadCrypt
		}
		n, err := strconv.ParseUint(r[:end], 10, 64)
		if err != nil {
			return p, fmt.Errorf("%w: bad rounds %q", errBadCrypt, r[:end])
		}
		// Drepper 0.6: values out of range are clamped, not rejected.
		p.rounds = int(min(max(n, shaCryptRoundsMin), shaCryptRoundsMax))
		p.explicit = true
		rest = r[end+1:]
	}
	salt := rest
	if i := strings.IndexByte(salt, '$'); i >= 0 {
		salt = salt[:i]
	}
	if len(salt) > shaCryptSaltMax {
		salt = salt[:shaCryptSaltMax]
	}
	p.salt = []byte(salt)
	return p, nil
}

// sha512CryptOrder and sha256CryptOrder are the byte permutations the
// specification uses to encode the final digest, three bytes at a time.
var sha512CryptOrder = [...][3]int{
	{0, 21, 42}, {22, 43, 1}, {44, 2, 23}, {3, 24, 45}, {25, 46, 4},
	{47, 5, 26}, {6, 27, 48}, {28, 49, 7}, {50, 8, 29}, {9, 30, 51},
	{31, 52, 10}, {53, 11, 32}, {12, 33, 54}, {34, 55, 13}, {56, 14, 35},
	{15, 36, 57}, {37, 58, 16}, {59, 17, 38}, {18, 39, 60}, {40, 61, 19},
	{62, 20, 41},
}

var sha256CryptOrder = [...][3]int{
	{0, 10, 20}, {21, 1, 11}, {12, 22, 2}, {3, 13, 23}, {24, 4, 14},
	{15, 25, 5}, {6, 16, 26}, {27, 7, 17}, {18, 28, 8}, {9, 19, 29},
}

// shaCrypt computes the full "$5$..." or "$6$..." string for password.
func shaCrypt(password []byte, p shaCryptParams) string {
	var newHash func() hash.Hash
	if p.id == '6' {
		newHash = sha512.New
	} else {
		newHash = sha256.New
	}
	salt := p.salt

	// Steps 4-8: digest B = H(password salt password).
	b := newHash()
	b.Write(password)
	b.Write(salt)
	b.Write(password)
	bSum := b.Sum(nil)
	size := len(bSum)

	// Steps 1-3, 9-12: digest A.
	a := newHash()
	a.Write(password)
	a.Write(salt)
	n := len(password)
	for ; n > size; n -= size {
		a.Write(bSum)
	}
	a.Write(bSum[:n])
	for i := len(password); i > 0; i >>= 1 {
		if i&1 != 0 {
			a.Write(bSum)
		} else {
			a.Write(password)
		}
	}
	aSum := a.Sum(nil)

	// Steps 13-16: byte sequence P from digest DP.
	dp := newHash()
	for range len(password) {
		dp.Write(password)
	}
	dpSum := dp.Sum(nil)
	pSeq := make([]byte, 0, len(password))
	for len(pSeq)+size <= len(password) {
		pSeq = append(pSeq, dpSum...)
	}
	pSeq = append(pSeq, dpSum[:len(password)-len(pSeq)]...)

	// Steps 17-20: byte sequence S from digest DS.
	ds := newHash()
	for range 16 + int(aSum[0]) {
		ds.Write(salt)
	}
	dsSum := ds.Sum(nil)
	sSeq := make([]byte, 0, len(salt))
	for len(sSeq)+size <= len(salt) {
		sSeq = append(sSeq, dsSum...)
	}
	sSeq = append(sSeq, dsSum[:len(salt)-len(sSeq)]...)

	// Step 21: the rounds.
	c := aSum
	h := newHash()
	for i := 0; i < p.rounds; i++ {
		h.Reset()
		if i&1 != 0 {
			h.Write(pSeq)
		} else {
			h.Write(c)
		}
		if i%3 != 0 {
			h.Write(sSeq)
		}
		if i%7 != 0 {
			h.Write(pSeq)
		}
		if i&1 != 0 {
			h.Write(c)
		} else {
			h.Write(pSeq)
		}
		c = h.Sum(c[:0])
	}

	// Step 22: the output string.
	var out []byte
	out = append(out, '$', p.id, '$')
	if p.explicit {
		out = append(out, "rounds="...)
		out = strconv.AppendInt(out, int64(p.rounds), 10)
		out = append(out, '$')
	}
	out = append(out, salt...)
	out = append(out, '$')
	if p.id == '6' {
		for _, o := range sha512CryptOrder {
			out = cryptB64(out, c[o[0]], c[o[1]], c[o[2]], 4)
		}
		out = cryptB64(out, 0, 0, c[63], 2)
	} else {
		for _, o := range sha256CryptOrder {
			out = cryptB64(out, c[o[0]], c[o[1]], c[o[2]], 4)
		}
		out = cryptB64(out, 0, c[31], c[30], 3)
	}
	return string(out)
}
