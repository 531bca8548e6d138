package userdb

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"math/bits"
)

// The yescrypt KDF itself (yescrypt-ref.c: yescrypt_kdf, smix, pwxform,
// Salsa20 BlockMix), without ROM support; crypt_yescrypt.go parses the
// crypt(3) strings and checks the parameters before calling it.

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
