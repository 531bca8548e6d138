package userdb

import (
	"crypto/subtle"
	"fmt"
)

// Traditional DES crypt(3) (Version 7 Unix; the algorithm of glibc's
// crypt() for a two-character salt), Dovecot's DES-CRYPT scheme. The
// password's first eight characters, shifted left one bit, form the DES
// key; a zero block is encrypted 25 times with the E expansion perturbed
// by the 12-bit salt; the 64-bit result is written as 11 characters. DES
// itself follows FIPS 46-3; it is written out here because crypto/des has
// no way to perturb E. Speed is not a goal: one hash is 400 rounds.

var desIP = [64]byte{
	58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
	62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
	57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3,
	61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
}

var desFP = [64]byte{
	40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
	38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
	36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
	34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
}

var desE = [48]byte{
	32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9,
	8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17,
	16, 17, 18, 19, 20, 21, 20, 21, 22, 23, 24, 25,
	24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
}

var desP = [32]byte{
	16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10,
	2, 8, 24, 14, 32, 27, 3, 9, 19, 13, 30, 6, 22, 11, 4, 25,
}

var desPC1 = [56]byte{
	57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18,
	10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60, 52, 44, 36,
	63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22,
	14, 6, 61, 53, 45, 37, 29, 21, 13, 5, 28, 20, 12, 4,
}

var desPC2 = [48]byte{
	14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10,
	23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2,
	41, 52, 31, 37, 47, 55, 30, 40, 51, 45, 33, 48,
	44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
}

var desShifts = [16]byte{1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1}

var desS = [8][64]byte{
	{14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7,
		0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12, 11, 9, 5, 3, 8,
		4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0,
		15, 12, 8, 2, 4, 9, 1, 7, 5, 11, 3, 14, 10, 0, 6, 13},
	{15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10,
		3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1, 10, 6, 9, 11, 5,
		0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15,
		13, 8, 10, 1, 3, 15, 4, 2, 11, 6, 7, 12, 0, 5, 14, 9},
	{10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8,
		13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5, 14, 12, 11, 15, 1,
		13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7,
		1, 10, 13, 0, 6, 9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12},
	{7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15,
		13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2, 12, 1, 10, 14, 9,
		10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4,
		3, 15, 0, 6, 10, 1, 13, 8, 9, 4, 5, 11, 12, 7, 2, 14},
	{2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9,
		14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15, 10, 3, 9, 8, 6,
		4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14,
		11, 8, 12, 7, 1, 14, 2, 13, 6, 15, 0, 9, 10, 4, 5, 3},
	{12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11,
		10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13, 14, 0, 11, 3, 8,
		9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6,
		4, 3, 2, 12, 9, 5, 15, 10, 11, 14, 1, 7, 6, 0, 8, 13},
	{4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1,
		13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5, 12, 2, 15, 8, 6,
		1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2,
		6, 11, 13, 8, 1, 4, 10, 7, 9, 5, 0, 15, 14, 2, 3, 12},
	{13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7,
		1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6, 11, 0, 14, 9, 2,
		7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8,
		2, 1, 14, 7, 4, 10, 8, 13, 15, 12, 9, 0, 3, 5, 6, 11},
}

// desBits holds one bit per byte, most significant bit of the block first.
type desBits [64]byte

func desUnpack(b [8]byte) desBits {
	var out desBits
	for i := range 64 {
		out[i] = (b[i/8] >> (7 - i%8)) & 1
	}
	return out
}

func desPack(in desBits) [8]byte {
	var b [8]byte
	for i := range 64 {
		b[i/8] |= in[i] << (7 - i%8)
	}
	return b
}

// desSubkeys returns the 16 round keys of FIPS 46-3 for key.
func desSubkeys(key [8]byte) [16][48]byte {
	kb := desUnpack(key)
	var cd [56]byte
	for i, p := range desPC1 {
		cd[i] = kb[p-1]
	}
	var ks [16][48]byte
	for r := range 16 {
		for range desShifts[r] {
			c0, d0 := cd[0], cd[28]
			copy(cd[0:27], cd[1:28])
			copy(cd[28:55], cd[29:56])
			cd[27], cd[55] = c0, d0
		}
		for i, p := range desPC2 {
			ks[r][i] = cd[p-1]
		}
	}
	return ks
}

// desEncrypt encrypts block once with the round keys ks and the
// expansion table e (desE, or desE perturbed by a crypt salt).
func desEncrypt(block desBits, ks *[16][48]byte, e *[48]byte) desBits {
	var lr desBits
	for i, p := range desIP {
		lr[i] = block[p-1]
	}
	for r := range 16 {
		var sOut, f [32]byte
		for s := range 8 {
			var x [6]byte
			for j := range 6 {
				x[j] = lr[32+int(e[6*s+j])-1] ^ ks[r][6*s+j]
			}
			row := x[0]<<1 | x[5]
			col := x[1]<<3 | x[2]<<2 | x[3]<<1 | x[4]
			v := desS[s][int(row)*16+int(col)]
			for j := range 4 {
				sOut[4*s+j] = (v >> (3 - j)) & 1
			}
		}
		for i, p := range desP {
			f[i] = sOut[p-1]
		}
		// L(i) = R(i-1); R(i) = L(i-1) xor f(R(i-1), K(i)).
		for i := range 32 {
			lr[i], lr[32+i] = lr[32+i], lr[i]^f[i]
		}
	}
	// The output block is R16 L16 through the final permutation.
	var pre desBits
	copy(pre[:32], lr[32:])
	copy(pre[32:], lr[:32])
	var out desBits
	for i, p := range desFP {
		out[i] = pre[p-1]
	}
	return out
}

// cryptCharValue maps a crypt(3) alphabet character to its 6-bit value.
func cryptCharValue(c byte) (int, bool) {
	switch {
	case c == '.' || c == '/':
		return int(c - '.'), true
	case c >= '0' && c <= '9':
		return int(c-'0') + 2, true
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 12, true
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 38, true
	}
	return 0, false
}

// desCrypt returns the 13-character crypt(3) hash of password with the
// two-character salt.
func desCrypt(password []byte, salt [2]byte) (string, error) {
	e := desE
	for i, c := range salt {
		v, ok := cryptCharValue(c)
		if !ok {
			return "", fmt.Errorf("%w: DES-CRYPT: bad salt character %q", ErrBadHash, c)
		}
		for j := range 6 {
			if v>>j&1 != 0 {
				e[6*i+j], e[6*i+j+24] = e[6*i+j+24], e[6*i+j]
			}
		}
	}
	var key [8]byte
	for i := 0; i < 8 && i < len(password); i++ {
		key[i] = password[i] << 1
	}
	ks := desSubkeys(key)
	var block desBits
	for range 25 {
		block = desEncrypt(block, &ks, &e)
	}
	out := []byte{salt[0], salt[1]}
	for i := range 11 {
		var c byte
		for j := range 6 {
			c <<= 1
			if k := 6*i + j; k < 64 {
				c |= block[k]
			}
		}
		out = append(out, cryptAlphabet[c])
	}
	return string(out), nil
}

func verifyDESCrypt(plain, raw []byte, _ Limits) (bool, error) {
	if len(raw) != 13 {
		return false, fmt.Errorf("%w: DES-CRYPT: expected 13 characters", ErrBadHash)
	}
	got, err := desCrypt(plain, [2]byte{raw[0], raw[1]})
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(got), raw) == 1, nil
}

func generateDESCrypt(plain []byte, _ int) ([]byte, error) {
	s := randomCryptSalt(2)
	h, err := desCrypt(plain, [2]byte{s[0], s[1]})
	return []byte(h), err
}
