package userdb

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
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
	// 128·r·N bytes of V; r < 2^30 and N ≤ 2^63 so test without overflow.
	if p.n > maxMem/128/uint64(p.r) || p.t > maxT || p.p > maxP {
		return fmt.Errorf("%w: yescrypt N=%d r=%d p=%d t=%d over %d KiB, t=%d, p=%d",
			ErrCostTooHigh, p.n, p.r, p.p, p.t, maxMem/1024, maxT, maxP)
	}
	return nil
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

// yescryptCrypt computes the full crypt(3) string for a setting, as
// crypt("password", "$y$...") does.
func yescryptCrypt(plain []byte, setting string, lim Limits) (string, error) {
	h, err := parseYescrypt(setting)
	if err != nil {
		return "", err
	}
	if err := checkYescryptParams(h.params, lim); err != nil {
		return "", err
	}
	return h.prefix + "$" + encodeYes64(yescryptKDF(plain, h.salt, h.params)), nil
}

// yescryptKDF is yescrypt_kdf() for a 32-byte output; params were checked.
func yescryptKDF(passwd, salt []byte, p yescryptParams) []byte {
	if p.flags&yesRW != 0 && p.n/uint64(p.p) >= 0x100 && p.n/uint64(p.p)*uint64(p.r) >= 0x20000 {
		// Pre-hash with a 64 times smaller N, so that an attacker cannot
		// skip the large allocation by trying the small one first.
		pre := p
		pre.flags |= yesPrehash
		pre.n >>= 6
		pre.t = 0
		passwd = yescryptBody(passwd, salt, pre)
	}
	return yescryptBody(passwd, salt, p)
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

func pbkdf2SHA256(passwd, salt []byte, n int) []byte {
	// crypto/pbkdf2 only fails for FIPS-mode key sizes; an error here
	// would be a programming error, and the result is then all zero,
	// which never matches a stored hash.
	out, err := pbkdf2.Key(sha256.New, string(passwd), salt, 1, n)
	if err != nil {
		return make([]byte, n)
	}
	return out
}

// yescryptBody is yescrypt_kdf_body() without ROM, for a 32-byte output.
func yescryptBody(passwd, salt []byte, p yescryptParams) []byte {
	flags := p.flags
	if flags != 0 {
		key := "yescrypt"
		if flags&yesPrehash != 0 {
			key = "yescrypt-prehash"
		}
		passwd = hmacSHA256([]byte(key), passwd)
	}
	r := int(p.r)
	bBytes := pbkdf2SHA256(passwd, salt, 128*r*int(p.p))
	if flags != 0 {
		passwd = append([]byte(nil), bBytes[:32]...)
	}
	b := make([]uint32, len(bBytes)/4)
	for i := range b {
		b[i] = binary.LittleEndian.Uint32(bBytes[4*i:])
	}
	v := make([]uint32, 32*uint64(r)*p.n)
	xy := make([]uint32, 64*r)
	if flags&yesRW != 0 {
		ctx := make([]pwxformCtx, p.p)
		for i := range ctx {
			ctx[i].s = make([]uint32, sWords)
		}
		yesSmix(b, r, p.n, p.p, p.t, flags, v, xy, ctx, passwd)
	} else {
		for i := 0; i < int(p.p); i++ {
			yesSmix(b[32*r*i:32*r*(i+1)], r, p.n, 1, p.t, flags, v, xy, nil, nil)
		}
	}
	for i, w := range b {
		binary.LittleEndian.PutUint32(bBytes[4*i:], w)
	}
	dk := pbkdf2SHA256(passwd, bBytes, yesHashBytes)
	if flags != 0 && flags&yesPrehash == 0 {
		// ClientKey and StoredKey as in SCRAM (RFC 5802 section 3).
		client := hmacSHA256(dk, []byte("Client Key"))
		sum := sha256.Sum256(client)
		dk = sum[:]
	}
	return dk
}

// pwxformCtx holds one lane's S-boxes: S0, S1, S2 are word offsets into s
// that rotate after every pwxform, and w is the S2 write position.
type pwxformCtx struct {
	s          []uint32
	s0, s1, s2 int
	w          int
}

// salsa20 applies the Salsa20 core with the given rounds to b, which is
// in the "SIMD-shuffled" word order the reference keeps blocks in
// (word i holds word i*5 mod 16 of the block).
func salsa20(b []uint32, rounds int) {
	var x [16]uint32
	for i := 0; i < 16; i++ {
		x[i*5%16] = b[i]
	}
	for i := 0; i < rounds; i += 2 {
		// Columns.
		x[4] ^= bits.RotateLeft32(x[0]+x[12], 7)
		x[8] ^= bits.RotateLeft32(x[4]+x[0], 9)
		x[12] ^= bits.RotateLeft32(x[8]+x[4], 13)
		x[0] ^= bits.RotateLeft32(x[12]+x[8], 18)
		x[9] ^= bits.RotateLeft32(x[5]+x[1], 7)
		x[13] ^= bits.RotateLeft32(x[9]+x[5], 9)
		x[1] ^= bits.RotateLeft32(x[13]+x[9], 13)
		x[5] ^= bits.RotateLeft32(x[1]+x[13], 18)
		x[14] ^= bits.RotateLeft32(x[10]+x[6], 7)
		x[2] ^= bits.RotateLeft32(x[14]+x[10], 9)
		x[6] ^= bits.RotateLeft32(x[2]+x[14], 13)
		x[10] ^= bits.RotateLeft32(x[6]+x[2], 18)
		x[3] ^= bits.RotateLeft32(x[15]+x[11], 7)
		x[7] ^= bits.RotateLeft32(x[3]+x[15], 9)
		x[11] ^= bits.RotateLeft32(x[7]+x[3], 13)
		x[15] ^= bits.RotateLeft32(x[11]+x[7], 18)
		// Rows.
		x[1] ^= bits.RotateLeft32(x[0]+x[3], 7)
		x[2] ^= bits.RotateLeft32(x[1]+x[0], 9)
		x[3] ^= bits.RotateLeft32(x[2]+x[1], 13)
		x[0] ^= bits.RotateLeft32(x[3]+x[2], 18)
		x[6] ^= bits.RotateLeft32(x[5]+x[4], 7)
		x[7] ^= bits.RotateLeft32(x[6]+x[5], 9)
		x[4] ^= bits.RotateLeft32(x[7]+x[6], 13)
		x[5] ^= bits.RotateLeft32(x[4]+x[7], 18)
		x[11] ^= bits.RotateLeft32(x[10]+x[9], 7)
		x[8] ^= bits.RotateLeft32(x[11]+x[10], 9)
		x[9] ^= bits.RotateLeft32(x[8]+x[11], 13)
		x[10] ^= bits.RotateLeft32(x[9]+x[8], 18)
		x[12] ^= bits.RotateLeft32(x[15]+x[14], 7)
		x[13] ^= bits.RotateLeft32(x[12]+x[15], 9)
		x[14] ^= bits.RotateLeft32(x[13]+x[12], 13)
		x[15] ^= bits.RotateLeft32(x[14]+x[13], 18)
	}
	for i := 0; i < 16; i++ {
		b[i] += x[i*5%16]
	}
}

func blkxor(dst, src []uint32) {
	for i := range dst {
		dst[i] ^= src[i]
	}
}

// blockmixSalsa8 is scrypt's BlockMix with Salsa20/8 over 2r 64-byte
// blocks; y is scratch of the same size.
func blockmixSalsa8(b, y []uint32, r int) {
	var x [16]uint32
	copy(x[:], b[(2*r-1)*16:])
	for i := 0; i < 2*r; i++ {
		blkxor(x[:], b[i*16:(i+1)*16])
		salsa20(x[:], 8)
		copy(y[i*16:], x[:])
	}
	for i := 0; i < r; i++ {
		copy(b[i*16:(i+1)*16], y[(2*i)*16:])
		copy(b[(i+r)*16:(i+r+1)*16], y[(2*i+1)*16:])
	}
}

// pwxform transforms one 64-byte block with the lane's S-boxes: for
// each of the 4 gathers, two 64-bit lanes become hi*lo + S0[...] xor
// S1[...], the S-box entries chosen by the low and high words of the
// first lane; rounds 1-4 also write into S2.
func (c *pwxformCtx) pwxform(x *[pwxWords]uint32) {
	s0 := (*[2 * sPairs]uint32)(c.s[c.s0:])
	s1 := (*[2 * sPairs]uint32)(c.s[c.s1:])
	s2 := (*[2 * sPairs]uint32)(c.s[c.s2:])
	w := c.w
	for i := 0; i < pwxRounds; i++ {
		write := i != 0 && i != pwxRounds-1
		for j := 0; j < pwxGather; j++ {
			l := (*[4]uint32)(x[j*4:])
			// Byte offsets masked by sMask, as word indexes.
			p0 := (l[0] >> 2) & (sMask >> 2)
			p1 := (l[1] >> 2) & (sMask >> 2)
			a := uint64(l[1])*uint64(l[0]) + (uint64(s0[p0+1])<<32 | uint64(s0[p0]))
			a ^= uint64(s1[p1+1])<<32 | uint64(s1[p1])
			b := uint64(l[3])*uint64(l[2]) + (uint64(s0[p0+3])<<32 | uint64(s0[p0+2]))
			b ^= uint64(s1[p1+3])<<32 | uint64(s1[p1+2])
			l[0], l[1], l[2], l[3] = uint32(a), uint32(a>>32), uint32(b), uint32(b>>32)
			if write {
				k := (2 * w) & (2*sPairs - 4)
				s2[k], s2[k+1], s2[k+2], s2[k+3] = uint32(a), uint32(a>>32), uint32(b), uint32(b>>32)
				w += 2
			}
		}
	}
	c.s0, c.s1, c.s2 = c.s2, c.s0, c.s1
	c.w = w & (sPairs - 1)
}

// blockmixPwxform is yescrypt's BlockMix_pwxform; y is 16 words of
// scratch.
func (c *pwxformCtx) blockmixPwxform(b, y []uint32, r int) {
	r1 := 128 * r / pwxBytes
	x := (*[pwxWords]uint32)(y)
	copy(x[:], b[(r1-1)*pwxWords:])
	for i := 0; i < r1; i++ {
		bi := (*[pwxWords]uint32)(b[i*pwxWords:])
		if r1 > 1 {
			for k := range x {
				x[k] ^= bi[k]
			}
		}
		c.pwxform(x)
		*bi = *x
	}
	i := (r1 - 1) * pwxBytes / 64
	salsa20(b[i*16:(i+1)*16], 2)
	for i++; i < 2*r; i++ {
		blkxor(b[i*16:(i+1)*16], b[(i-1)*16:i*16])
		salsa20(b[i*16:(i+1)*16], 2)
	}
}

// integerify reads the last 64-byte block's first 64 bits (words 0 and
// 13 in the shuffled order).
func integerify(x []uint32, r int) uint64 {
	last := x[(2*r-1)*16:]
	return uint64(last[13])<<32 | uint64(last[0])
}

func p2floor(x uint64) uint64 {
	if x == 0 {
		return 0
	}
	return 1 << (63 - bits.LeadingZeros64(x))
}

func wrap(x, i uint64) uint64 {
	n := p2floor(i)
	return (x & (n - 1)) + (i - n)
}

// blockmix runs the block function: pwxform when the lane has S-boxes,
// Salsa20/8 otherwise.
func blockmix(c *pwxformCtx, x, y []uint32, r int) {
	if c != nil {
		c.blockmixPwxform(x, y, r)
	} else {
		blockmixSalsa8(x, y, r)
	}
}

// loadShuffled copies block b into x in the shuffled word order;
// storeShuffled is the inverse.
func loadShuffled(x, b []uint32, r int) {
	for k := 0; k < 2*r; k++ {
		for i := 0; i < 16; i++ {
			x[k*16+i] = b[k*16+i*5%16]
		}
	}
}

func storeShuffled(b, x []uint32, r int) {
	for k := 0; k < 2*r; k++ {
		for i := 0; i < 16; i++ {
			b[k*16+i*5%16] = x[k*16+i]
		}
	}
}

// smix1 is the first loop of SMix: fill V with N successive states (in
// RW mode also reading back earlier ones).
func smix1(b []uint32, r int, n uint64, flags uint32, v, xy []uint32, c *pwxformCtx) {
	s := 32 * r
	x, y := xy[:s], xy[s:]
	loadShuffled(x, b, r)
	for i := uint64(0); i < n; i++ {
		copy(v[i*uint64(s):], x)
		if flags&yesRW != 0 && i > 1 {
			j := wrap(integerify(x, r), i)
			blkxor(x, v[j*uint64(s):(j+1)*uint64(s)])
		}
		blockmix(c, x, y, r)
	}
	storeShuffled(b, x, r)
}

// smix2 is the second loop of SMix: nloop data-dependent reads of V (and
// writes back in RW mode).
func smix2(b []uint32, r int, n, nloop uint64, flags uint32, v, xy []uint32, c *pwxformCtx) {
	s := uint64(32 * r)
	x, y := xy[:s], xy[s:]
	loadShuffled(x, b, r)
	for i := uint64(0); i < nloop; i++ {
		j := integerify(x, r) & (n - 1)
		vj := v[j*s : (j+1)*s]
		blkxor(x, vj)
		if flags&yesRW != 0 {
			copy(vj, x)
		}
		blockmix(c, x, y, r)
	}
	storeShuffled(b, x, r)
}

// yesSmix is SMix over p lanes; passwd (the 32-byte pre-hashed password,
// RW mode only) is replaced in place by HMAC-SHA256 keyed with lane 0's
// last block once its S-boxes are filled.
func yesSmix(b []uint32, r int, n uint64, p, t uint32, flags uint32, v, xy []uint32, ctx []pwxformCtx, passwd []byte) {
	s := 32 * r
	nchunk := n / uint64(p)
	nloopAll := nchunk
	if flags&yesRW != 0 {
		if t <= 1 {
			if t != 0 {
				nloopAll *= 2
			}
			nloopAll = (nloopAll + 2) / 3
		} else {
			nloopAll *= uint64(t - 1)
		}
	} else if t != 0 {
		if t == 1 {
			nloopAll += (nloopAll + 1) / 2
		}
		nloopAll *= uint64(t)
	}
	var nloopRW uint64
	if flags&yesRW != 0 {
		nloopRW = nloopAll / uint64(p)
	}
	nchunk &^= 1
	nloopAll = (nloopAll + 1) &^ 1
	nloopRW = (nloopRW + 1) &^ 1

	vchunk := uint64(0)
	for i := 0; i < int(p); i++ {
		np := nchunk
		if i == int(p)-1 {
			np = n - vchunk
		}
		bp := b[i*s : (i+1)*s]
		vp := v[vchunk*uint64(s):]
		var c *pwxformCtx
		if flags&yesRW != 0 {
			c = &ctx[i]
			smix1(bp[:32], 1, sBytes/128, 0, c.s, xy, nil)
			c.s2, c.s1, c.s0, c.w = 0, 2*sPairs, 4*sPairs, 0
			if i == 0 {
				var key [64]byte
				for k, w := range bp[s-16:] {
					binary.LittleEndian.PutUint32(key[4*k:], w)
				}
				copy(passwd, hmacSHA256(key[:], passwd))
			}
		}
		smix1(bp, r, np, flags, vp, xy, c)
		smix2(bp, r, p2floor(np), nloopRW, flags, vp, xy, c)
		vchunk += nchunk
	}
	for i := 0; i < int(p); i++ {
		var c *pwxformCtx
		if flags&yesRW != 0 {
			c = &ctx[i]
		}
		smix2(b[i*s:(i+1)*s], r, n, nloopAll-nloopRW, flags&^yesRW, v, xy, c)
	}
}
