package userdb

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// This file implements yescrypt ("$y$", what Debian 12's passwd and
// chpasswd write into /etc/shadow) and classic scrypt in its crypt(3)
// form ("$7$"), from the yescrypt 1.1 reference implementation by
// Alexander Peslyak (openwall.com/yescrypt, yescrypt-ref.c and
// yescrypt-common.c), which libxcrypt carries. No Go module for it is
// available, and Dovecot 2.3 itself has no yescrypt scheme: it verifies
// "$y$" through libc's crypt() under its CRYPT scheme, as postcote does
// here (verifyCrypt dispatches on the prefix).
//
// Only what crypt(3) can produce is accepted: the RW flavor that
// libxcrypt uses (pwxform with 6 rounds, 4 gathers, 2 simple lanes, 12 KiB
// S-boxes), WORM, classic scrypt; no ROM and no hash upgrades (g), which
// the reference refuses too. "$gy$" (gost-yescrypt) is refused as not
// supported. N, r, p and t are capped by Limits before any memory is
// allocated.

// yescrypt flag bits (yescrypt.h).
const (
	yesWORM        = 0x001
	yesRW          = 0x002
	yesModeMask    = 0x003
	yesFlavorMask  = 0x3fc
	yesPrehash     = 0x10000000
	yesRWDefaults  = yesRW | 0x004 | 0x010 | 0x020 | 0x080 // ROUNDS_6 GATHER_4 SIMPLE_2 SBOX_12K
	yesKnownFlags  = yesModeMask | yesFlavorMask | yesPrehash
	yesHashBytes   = 32
	yesMaxSaltSize = 64
)

// pwxform parameters of the RW flavor libxcrypt uses.
const (
	pwxSimple = 2
	pwxGather = 4
	pwxRounds = 6
	sWidth    = 8
	pwxBytes  = pwxGather * pwxSimple * 8 // 64
	pwxWords  = pwxBytes / 4              // 16
	sBytes    = 3 * (1 << sWidth) * pwxSimple * 8
	sWords    = sBytes / 4                          // 3072
	sMask     = ((1 << sWidth) - 1) * pwxSimple * 8 // byte offset mask, 0xff0
	sPairs    = (1 << sWidth) * pwxSimple           // 64-bit entries per S-box
)

// Absolute ceilings whatever Limits say: libxcrypt's largest cost (11) is
// N=2^18, r=32 (1 GiB).
const (
	yesAbsMaxMemory = 1 << 30
	yesAbsMaxTime   = 1 << 10
	yesAbsMaxP      = 1 << 10
)

// Default caps used when the Limits fields are zero (see Limits).
const (
	yescryptDefaultMaxMemoryKiB = 256 * 1024 // libxcrypt costs 1-9
	yescryptDefaultMaxTime      = 16
	yescryptDefaultMaxThreads   = 16
)

// ErrYescryptUnsupported is returned for crypt(3) formats of the yescrypt
// family that postcote does not implement ("$gy$", ROM, hash upgrades,
// non-default pwxform flavors).
var ErrYescryptUnsupported = errors.New("yescrypt variant not supported")

type yescryptParams struct {
	flags   uint32
	n       uint64
	r, p, t uint32
	g       uint32
	nrom    uint64
}

// yescryptHash is a parsed "$y$params$salt$hash" or "$7$..." string.
type yescryptHash struct {
	params yescryptParams
	prefix string // everything up to and including the salt, as written
	salt   []byte
	hash   string // the 43-character encoded hash ("" in a setting)
}

// atoi64 maps a crypt(3) alphabet character to its value, 64 if invalid.
func atoi64(c byte) uint32 {
	switch {
	case c >= '.' && c <= '9':
		return uint32(c - '.')
	case c >= 'A' && c <= 'Z':
		return uint32(c-'A') + 12
	case c >= 'a' && c <= 'z':
		return uint32(c-'a') + 38
	}
	return 64
}

// next64 takes the first character of s as a 6-bit value.
func next64(s string) (uint32, string, error) {
	if s == "" {
		return 0, s, errBadCrypt
	}
	c := atoi64(s[0])
	if c > 63 {
		return 0, s, errBadCrypt
	}
	return c, s[1:], nil
}

// decodeYesUint32 reads yescrypt's variable-length number encoding
// (decode64_uint32): the first character says how many follow.
func decodeYesUint32(s string, min uint32) (uint32, string, error) {
	c, s, err := next64(s)
	if err != nil {
		return 0, s, err
	}
	var start, end, chars, nbits uint32 = 0, 47, 1, 0
	v := uint64(min)
	for c > end {
		v += uint64(end+1-start) << nbits
		start = end + 1
		end = start + (62-end)/2
		chars++
		nbits += 6
	}
	v += uint64(c-start) << nbits
	for ; chars > 1; chars-- {
		if c, s, err = next64(s); err != nil {
			return 0, s, err
		}
		nbits -= 6
		v += uint64(c) << nbits
	}
	if v > 0xffffffff {
		return 0, s, errBadCrypt
	}
	return uint32(v), s, nil
}

// decodeYesFixed reads n characters as a little-endian 6-bit-group number
// (decode64_uint32_fixed with 30 bits).
func decodeYesFixed(s string, n int) (uint32, string, error) {
	var v uint32
	for i := 0; i < n; i++ {
		c, rest, err := next64(s)
		if err != nil {
			return 0, s, err
		}
		v |= c << (6 * i)
		s = rest
	}
	return v, s, nil
}

// decodeYes64 is yescrypt's decode64: groups of up to four characters,
// least significant bits first, each giving up to three bytes; the
// unused high bits of a short last group must be zero.
func decodeYes64(s string, max int) ([]byte, error) {
	var out []byte
	for len(s) > 0 {
		var v, nbits uint32
		for len(s) > 0 && nbits < 24 {
			c := atoi64(s[0])
			if c > 63 {
				return nil, errBadCrypt
			}
			s = s[1:]
			v |= c << nbits
			nbits += 6
		}
		if nbits < 12 {
			return nil, errBadCrypt
		}
		for nbits >= 8 {
			out = append(out, byte(v))
			v >>= 8
			nbits -= 8
		}
		if v != 0 {
			return nil, errBadCrypt
		}
		if len(out) > max {
			return nil, errBadCrypt
		}
	}
	return out, nil
}

// encodeYes64 is yescrypt's encode64, the inverse of decodeYes64.
func encodeYes64(src []byte) string {
	var b strings.Builder
	for i := 0; i < len(src); {
		var v, nbits uint32
		for nbits < 24 && i < len(src) {
			v |= uint32(src[i]) << nbits
			i++
			nbits += 8
		}
		for n := uint32(0); n < nbits; n += 6 {
			b.WriteByte(cryptAlphabet[v&0x3f])
			v >>= 6
		}
	}
	return b.String()
}

// yescryptHashLen is the encoded size of the 32-byte hash.
var yescryptHashLen = (yesHashBytes*8 + 5) / 6

// parseYescrypt reads a "$y$" or "$7$" hash (or setting, without the
// final "$hash").
func parseYescrypt(s string) (yescryptHash, error) {
	var h yescryptHash
	p := yescryptParams{p: 1}
	var rest string
	switch {
	case strings.HasPrefix(s, "$gy$"):
		return h, fmt.Errorf("%w: gost-yescrypt ($gy$)", ErrYescryptUnsupported)
	case strings.HasPrefix(s, "$7$"):
		rest = s[3:]
		if rest == "" {
			return h, errBadCrypt
		}
		nlog := atoi64(rest[0])
		if nlog < 1 || nlog > 63 {
			return h, errBadCrypt
		}
		p.n = 1 << nlog
		var err error
		if p.r, rest, err = decodeYesFixed(rest[1:], 5); err != nil {
			return h, err
		}
		if p.p, rest, err = decodeYesFixed(rest, 5); err != nil {
			return h, err
		}
	case strings.HasPrefix(s, "$y$"):
		var err error
		var flavor, nlog uint32
		if flavor, rest, err = decodeYesUint32(s[3:], 0); err != nil {
			return h, err
		}
		switch {
		case flavor < yesRW:
			p.flags = flavor
		case flavor <= yesRW+(yesFlavorMask>>2):
			p.flags = yesRW + ((flavor - yesRW) << 2)
		default:
			return h, errBadCrypt
		}
		if nlog, rest, err = decodeYesUint32(rest, 1); err != nil || nlog > 63 {
			return h, errBadCrypt
		}
		p.n = 1 << nlog
		if p.r, rest, err = decodeYesUint32(rest, 1); err != nil {
			return h, err
		}
		if rest != "" && rest[0] != '$' {
			var have uint32
			if have, rest, err = decodeYesUint32(rest, 1); err != nil {
				return h, err
			}
			if have&1 != 0 {
				if p.p, rest, err = decodeYesUint32(rest, 2); err != nil {
					return h, err
				}
			}
			if have&2 != 0 {
				if p.t, rest, err = decodeYesUint32(rest, 1); err != nil {
					return h, err
				}
			}
			if have&4 != 0 {
				if p.g, rest, err = decodeYesUint32(rest, 1); err != nil {
					return h, err
				}
			}
			if have&8 != 0 {
				var romLog uint32
				if romLog, rest, err = decodeYesUint32(rest, 1); err != nil || romLog > 63 {
					return h, errBadCrypt
				}
				p.nrom = 1 << romLog
			}
		}
		if rest == "" || rest[0] != '$' {
			return h, errBadCrypt
		}
		rest = rest[1:]
	default:
		return h, errBadCrypt
	}
	saltStr, hash, hasHash := rest, "", false
	if i := strings.LastIndexByte(rest, '$'); i >= 0 {
		saltStr, hash, hasHash = rest[:i], rest[i+1:], true
	}
	h.prefix = s[:len(s)-len(rest)] + saltStr
	if s[1] == '7' {
		h.salt = []byte(saltStr) // $7$ uses the salt string as is
	} else {
		salt, err := decodeYes64(saltStr, yesMaxSaltSize)
		if err != nil {
			return h, err
		}
		h.salt = salt
	}
	if hasHash && len(hash) != yescryptHashLen {
		return h, errBadCrypt
	}
	h.params, h.hash = p, hash
	return h, nil
}

// checkYescryptParams refuses what the reference refuses and what is
// above the caps, before anything is allocated.
func checkYescryptParams(p yescryptParams, lim Limits) error {
	if p.g != 0 || p.nrom != 0 {
		return fmt.Errorf("%w: ROM or hash upgrades", ErrYescryptUnsupported)
	}
	switch p.flags & yesModeMask {
	case 0:
		if p.flags != 0 || p.t != 0 {
			return errBadCrypt
		}
	case yesWORM:
		if p.flags != yesWORM {
			return errBadCrypt
		}
	case yesRW:
		if p.flags&yesFlavorMask != yesRWDefaults&yesFlavorMask {
			return fmt.Errorf("%w: pwxform flavor %#x", ErrYescryptUnsupported, p.flags)
		}
	default:
		return errBadCrypt
	}
	if p.n <= 1 || p.n&(p.n-1) != 0 || p.r < 1 || p.p < 1 || uint64(p.r)*uint64(p.p) >= 1<<30 {
		return errBadCrypt
	}
	if p.flags&yesRW != 0 && p.n/uint64(p.p) <= 1 {
		return errBadCrypt
	}
	maxMem := uint64(lim.MaxYescryptMemoryKiB) * 1024
	if maxMem == 0 {
		maxMem = yescryptDefaultMaxMemoryKiB * 1024
	}
	maxMem = min(maxMem, yesAbsMaxMemory)
	maxT := lim.MaxYescryptTime
	if maxT == 0 {
		maxT = yescryptDefaultMaxTime
	}
	maxP := lim.MaxYescryptThreads
	if maxP == 0 {
		maxP = yescryptDefaultMaxThreads
	}
	maxT, maxP = min(maxT, yesAbsMaxTime), min(maxP, yesAbsMaxP)
	if p.t > maxT || p.p > maxP {
		return fmt.Errorf("%w: yescrypt t=%d p=%d over t=%d p=%d", ErrCostTooHigh, p.t, p.p, maxT, maxP)
	}
	// Memory: V is N blocks of 128·r bytes, at most the cap (libxcrypt's
	// cost 9 is exactly 256 MiB); B and XY, p+2 blocks, a sixteenth of
	// it. r < 2^30, N ≤ 2^63 and p ≤ 2^10: no overflow below.
	blockMax := maxMem / 128 / uint64(p.r)
	if p.n > blockMax || uint64(p.p)+2 > blockMax/16 {
		return fmt.Errorf("%w: yescrypt N=%d r=%d p=%d needs over %d KiB", ErrCostTooHigh, p.n, p.r, p.p, maxMem/1024)
	}
	// Time: the blocks mixed, at most four times the memory cap (about
	// as long as bcrypt at its cap), so that t or, without RW, p cannot
	// multiply the work of an admitted N·r.
	if w := yescryptWork(p); w > 4*blockMax {
		return fmt.Errorf("%w: yescrypt N=%d r=%d p=%d t=%d mixes %d MiB, over %d MiB",
			ErrCostTooHigh, p.n, p.r, p.p, p.t, w*128*uint64(p.r)>>20, 4*maxMem>>20)
	}
	return nil
}

// yescryptWork is how many 128·r-byte blocks the KDF mixes, from the
// loop counts of yesSmix: N for the first loop, then N/3, 2N/3 or (t-1)N
// with RW (whatever p), N, 1.5N or tN per lane without it.
func yescryptWork(p yescryptParams) uint64 {
	n, t := p.n, uint64(p.t)
	if p.flags&yesRW != 0 {
		switch t {
		case 0:
			return n + n/3
		case 1:
			return n + 2*n/3
		}
		return n + n*(t-1)
	}
	var second uint64
	switch t {
	case 0:
		second = n
	case 1:
		second = n + n/2
	default:
		second = n * t
	}
	return uint64(p.p) * (n + second)
}

// verifyYescrypt checks plain against a "$y$" or "$7$" hash.
func verifyYescrypt(plain, raw []byte, lim Limits) (bool, error) {
	h, err := parseYescrypt(string(raw))
	if err != nil {
		if errors.Is(err, ErrYescryptUnsupported) {
			return false, fmt.Errorf("%w: CRYPT: %v", ErrBadHash, err)
		}
		return false, fmt.Errorf("%w: CRYPT: malformed yescrypt hash", ErrBadHash)
	}
	if h.hash == "" {
		return false, fmt.Errorf("%w: CRYPT: yescrypt setting without a hash", ErrBadHash)
	}
	if err := checkYescryptParams(h.params, lim); err != nil {
		if errors.Is(err, ErrCostTooHigh) {
			return false, err
		}
		return false, fmt.Errorf("%w: CRYPT: yescrypt: %v", ErrBadHash, err)
	}
	dk := yescryptKDF(plain, h.salt, h.params)
	got := encodeYes64(dk)
	return subtle.ConstantTimeCompare([]byte(got), []byte(h.hash)) == 1, nil
}
