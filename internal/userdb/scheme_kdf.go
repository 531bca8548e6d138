package userdb

import (
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Digest schemes (SHA, SSHA, PLAIN-MD5, ...) and the key-derivation
// schemes that golang.org/x/crypto and the standard library provide
// (bcrypt, argon2, PBKDF2).

func md5Sum(b ...[]byte) []byte {
	h := md5.New()
	for _, p := range b {
		h.Write(p)
	}
	return h.Sum(nil)
}

func sha1Sum(b ...[]byte) []byte {
	h := sha1.New()
	for _, p := range b {
		h.Write(p)
	}
	return h.Sum(nil)
}

func sha256Sum(b ...[]byte) []byte {
	h := sha256.New()
	for _, p := range b {
		h.Write(p)
	}
	return h.Sum(nil)
}

func sha512Sum(b ...[]byte) []byte {
	h := sha512.New()
	for _, p := range b {
		h.Write(p)
	}
	return h.Sum(nil)
}

// digestScheme is an unsalted digest of the password.
func digestScheme(name string, enc encoding, sum func(...[]byte) []byte) *scheme {
	size := len(sum(nil))
	return &scheme{
		name:   name,
		enc:    enc,
		rawLen: size,
		verify: func(plain, raw []byte, _ Limits) (bool, error) {
			return subtle.ConstantTimeCompare(sum(plain), raw) == 1, nil
		},
		generate: func(plain []byte, _ int) ([]byte, error) { return sum(plain), nil },
	}
}

// saltedSaltLen is the salt size Dovecot and slappasswd generate for the
// salted digest schemes.
const saltedSaltLen = 4

// saltedScheme is digest(password + salt) followed by the salt, the
// OpenLDAP {SSHA} family.
func saltedScheme(name string, sum func(...[]byte) []byte) *scheme {
	size := len(sum(nil))
	return &scheme{
		name: name,
		enc:  encBase64,
		verify: func(plain, raw []byte, _ Limits) (bool, error) {
			if len(raw) <= size {
				return false, fmt.Errorf("%w: %s password is too short", ErrBadHash, name)
			}
			digest, salt := raw[:size], raw[size:]
			return subtle.ConstantTimeCompare(sum(plain, salt), digest) == 1, nil
		},
		generate: func(plain []byte, _ int) ([]byte, error) {
			salt := randomBytes(saltedSaltLen)
			return append(sum(plain, salt), salt...), nil
		},
	}
}

// bcryptDefaultCost is what doveadm pw uses for BLF-CRYPT and CRYPT.
const bcryptDefaultCost = 5

func verifyBcrypt(plain, raw []byte, lim Limits) (bool, error) {
	if len(raw) < 4 || raw[0] != '$' || raw[1] != '2' || raw[3] != '$' {
		return false, fmt.Errorf("%w: BLF-CRYPT: not a $2y$ hash", ErrBadHash)
	}
	switch raw[2] {
	case 'a', 'b', 'y':
	default:
		// $2x$ (and the rest) need the old sign-extension bug emulated.
		return false, fmt.Errorf("%w: BLF-CRYPT: unsupported variant $2%c$", ErrBadHash, raw[2])
	}
	cost, err := bcrypt.Cost(raw)
	if err != nil {
		return false, fmt.Errorf("%w: BLF-CRYPT: %v", ErrBadHash, err)
	}
	if lim.MaxBcryptCost > 0 && cost > lim.MaxBcryptCost {
		return false, fmt.Errorf("%w: bcrypt cost %d > %d", ErrCostTooHigh, cost, lim.MaxBcryptCost)
	}
	err = bcrypt.CompareHashAndPassword(raw, plain)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	}
	return false, fmt.Errorf("%w: BLF-CRYPT: %v", ErrBadHash, err)
}

func generateBcrypt(plain []byte, cost int) ([]byte, error) {
	if cost == 0 {
		cost = bcryptDefaultCost
	}
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("bcrypt cost %d out of range %d-%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	// crypt(3) uses the first 72 bytes; x/crypto refuses longer input.
	if len(plain) > 72 {
		plain = plain[:72]
	}
	h, err := bcrypt.GenerateFromPassword(plain, cost)
	if err != nil {
		return nil, err
	}
	// Dovecot writes the "$2y$" prefix; the algorithm is the same.
	if len(h) > 3 && h[2] == 'a' {
		h[2] = 'y'
	}
	return h, nil
}

// argon2Params is a parsed libsodium/PHC argon2 string
// "$argon2id$v=19$m=65536,t=3,p=1$salt$hash" (unpadded base64).
type argon2Params struct {
	id           bool
	memory, time uint32
	threads      uint8
	salt, hash   []byte
}

func parseArgon2(s string) (argon2Params, error) {
	var p argon2Params
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" {
		return p, fmt.Errorf("%w: ARGON2: expected $argon2id$v=19$m=,t=,p=$salt$hash", ErrBadHash)
	}
	switch parts[1] {
	case "argon2id":
		p.id = true
	case "argon2i":
	default:
		return p, fmt.Errorf("%w: ARGON2: unsupported variant %q", ErrBadHash, parts[1])
	}
	if parts[2] != "v=19" {
		return p, fmt.Errorf("%w: ARGON2: unsupported version %q", ErrBadHash, parts[2])
	}
	var seen int
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return p, fmt.Errorf("%w: ARGON2: bad parameter %q", ErrBadHash, kv)
		}
		switch k {
		case "m":
			p.memory, seen = uint32(n), seen|1
		case "t":
			p.time, seen = uint32(n), seen|2
		case "p":
			if n > 255 {
				return p, fmt.Errorf("%w: ARGON2: bad parameter %q", ErrBadHash, kv)
			}
			p.threads, seen = uint8(n), seen|4
		default:
			return p, fmt.Errorf("%w: ARGON2: unknown parameter %q", ErrBadHash, kv)
		}
	}
	if seen != 7 || p.time == 0 || p.threads == 0 || p.memory < 8*uint32(p.threads) {
		return p, fmt.Errorf("%w: ARGON2: parameters %q out of range", ErrBadHash, parts[3])
	}
	var err error
	if p.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(p.salt) < 8 {
		return p, fmt.Errorf("%w: ARGON2: bad salt", ErrBadHash)
	}
	if p.hash, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(p.hash) < 16 || len(p.hash) > 1024 {
		return p, fmt.Errorf("%w: ARGON2: bad hash", ErrBadHash)
	}
	return p, nil
}

func verifyArgon2(plain, raw []byte, lim Limits) (bool, error) {
	p, err := parseArgon2(string(raw))
	if err != nil {
		return false, err
	}
	if (lim.MaxArgon2MemoryKiB > 0 && p.memory > lim.MaxArgon2MemoryKiB) ||
		(lim.MaxArgon2Time > 0 && p.time > lim.MaxArgon2Time) ||
		(lim.MaxArgon2Threads > 0 && p.threads > lim.MaxArgon2Threads) {
		return false, fmt.Errorf("%w: argon2 m=%d,t=%d,p=%d over m=%d,t=%d,p=%d", ErrCostTooHigh,
			p.memory, p.time, p.threads, lim.MaxArgon2MemoryKiB, lim.MaxArgon2Time, lim.MaxArgon2Threads)
	}
	var got []byte
	if p.id {
		got = argon2.IDKey(plain, p.salt, p.time, p.memory, p.threads, uint32(len(p.hash)))
	} else {
		got = argon2.Key(plain, p.salt, p.time, p.memory, p.threads, uint32(len(p.hash)))
	}
	return subtle.ConstantTimeCompare(got, p.hash) == 1, nil
}

// generateArgon2 uses libsodium's defaults as Dovecot does: ARGON2I
// "interactive+" (t=4, 32 MiB) and ARGON2ID "moderate" (t=3, 64 MiB);
// rounds overrides t.
func generateArgon2(id bool) func(plain []byte, rounds int) ([]byte, error) {
	return func(plain []byte, rounds int) ([]byte, error) {
		t, m, name := uint32(4), uint32(32*1024), "argon2i"
		if id {
			t, m, name = 3, 64*1024, "argon2id"
		}
		if rounds > 0 {
			if rounds > 1<<16 {
				return nil, fmt.Errorf("argon2 passes %d too large", rounds)
			}
			t = uint32(rounds)
		}
		salt := randomBytes(16)
		var h []byte
		if id {
			h = argon2.IDKey(plain, salt, t, m, 1, 32)
		} else {
			h = argon2.Key(plain, salt, t, m, 1, 32)
		}
		return fmt.Appendf(nil, "$%s$v=19$m=%d,t=%d,p=1$%s$%s", name, m, t,
			base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(h)), nil
	}
}

// Dovecot's PBKDF2 scheme: "$1$salt$rounds$hex", PBKDF2-HMAC-SHA1 with a
// 20-byte key; the salt is used as the ASCII string it is written as.
const (
	pbkdf2DefaultRounds = 5000
	pbkdf2KeyLen        = sha1.Size
	pbkdf2SaltLen       = 16
)

func verifyPBKDF2(plain, raw []byte, lim Limits) (bool, error) {
	rest, ok := strings.CutPrefix(string(raw), "$1$")
	parts := strings.Split(rest, "$")
	if !ok || len(parts) != 3 {
		return false, fmt.Errorf("%w: PBKDF2: expected $1$salt$rounds$hex", ErrBadHash)
	}
	rounds, err := strconv.Atoi(parts[1])
	if err != nil || rounds < 1 {
		return false, fmt.Errorf("%w: PBKDF2: bad rounds %q", ErrBadHash, parts[1])
	}
	key, err := hex.DecodeString(parts[2])
	if err != nil || len(key) != pbkdf2KeyLen {
		return false, fmt.Errorf("%w: PBKDF2: bad key", ErrBadHash)
	}
	if lim.MaxPBKDF2Rounds > 0 && rounds > lim.MaxPBKDF2Rounds {
		return false, fmt.Errorf("%w: PBKDF2 rounds %d > %d", ErrCostTooHigh, rounds, lim.MaxPBKDF2Rounds)
	}
	got, err := pbkdf2.Key(sha1.New, string(plain), []byte(parts[0]), rounds, pbkdf2KeyLen)
	if err != nil {
		return false, fmt.Errorf("PBKDF2: %w", err)
	}
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

func generatePBKDF2(plain []byte, rounds int) ([]byte, error) {
	if rounds == 0 {
		rounds = pbkdf2DefaultRounds
	}
	salt := randomCryptSalt(pbkdf2SaltLen)
	key, err := pbkdf2.Key(sha1.New, string(plain), salt, rounds, pbkdf2KeyLen)
	if err != nil {
		return nil, err
	}
	return fmt.Appendf(nil, "$1$%s$%d$%s", salt, rounds, hex.EncodeToString(key)), nil
}
