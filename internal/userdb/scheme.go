package userdb

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strings"
)

// Password schemes as Dovecot 2.3 names and stores them
// (https://doc.dovecot.org/2.3/configuration_manual/authentication/password_schemes/).
// A stored password is "{SCHEME}data" or, without the braces, data in the
// passdb's default scheme. SCHEME may end in ".B64", ".BASE64" or ".HEX"
// to say how the binary digest of the SHA/MD5 family is written; without
// the suffix each scheme has its own default encoding, and for digests of
// a fixed size Dovecot guesses hex when the length is twice the digest
// size. Scheme names are case-insensitive.

// Errors a verification may return besides a plain mismatch. Callers log
// them (the reason, never the password) and treat the login as failed.
var (
	ErrUnknownScheme = errors.New("unknown password scheme")
	ErrBadHash       = errors.New("password data is not valid for its scheme")
	ErrCostTooHigh   = errors.New("password hash cost exceeds the configured limit")
)

// Limits caps the work a stored hash may ask for, so that a crafted or
// careless hash cannot turn each login attempt into seconds of CPU time.
// A hash over a cap fails verification with ErrCostTooHigh.
type Limits struct {
	MaxBcryptCost       int    // bcrypt "$2y$NN$": NN at most this
	MaxSHACryptRounds   int    // SHA-crypt "rounds=N"
	MaxPBKDF2Rounds     int    // PBKDF2 "$1$salt$rounds$"
	MaxArgon2MemoryKiB  uint32 // argon2 "m="
	MaxArgon2Time       uint32 // argon2 "t="
	MaxArgon2Threads    uint8  // argon2 "p="
	MaxPasswordBytes    int    // longer plaintexts never match
	MaxSHACryptWorkload int64  // rounds × (len(password)+128) bytes hashed
	// yescrypt "$y$" (crypt_yescrypt.go): 128·N·r bytes of memory, t
	// and p; the work (blocks mixed) may be four times the memory. Zero
	// means the default cap (256 MiB, t=16, p=16), never "no cap"; 1 GiB
	// is the ceiling whatever the setting.
	MaxYescryptMemoryKiB uint32
	MaxYescryptTime      uint32
	MaxYescryptThreads   uint32
	// MemoryHard, when set, bounds the memory-hard checks running at
	// once (memgate.go); DefaultLimits gives each database one gate
	// with a slot per CPU (at least two).
	MemoryHard *MemoryGate
}

// DefaultLimits returns the caps postcote applies unless configured
// otherwise. They admit what doveadm pw produces with its largest common
// settings (bcrypt cost 12-14, SHA-crypt up to a million rounds, argon2id
// at libsodium's "sensitive" 1 GiB is refused: 256 MiB at most).
func DefaultLimits() Limits {
	return Limits{
		MaxBcryptCost:        16,
		MaxSHACryptRounds:    1_000_000,
		MaxPBKDF2Rounds:      1_000_000,
		MaxArgon2MemoryKiB:   256 * 1024,
		MaxArgon2Time:        16,
		MaxArgon2Threads:     16,
		MaxPasswordBytes:     1024,
		MaxSHACryptWorkload:  1_000_000 * 256,
		MaxYescryptMemoryKiB: yescryptDefaultMaxMemoryKiB,
		MaxYescryptTime:      yescryptDefaultMaxTime,
		MaxYescryptThreads:   yescryptDefaultMaxThreads,
		MemoryHard:           NewMemoryGate(max(2, runtime.NumCPU())),
	}
}

type encoding int

const (
	encNone encoding = iota
	encBase64
	encHex
)

// scheme is one entry of the scheme table.
type scheme struct {
	name   string
	enc    encoding // how the data is written when the name has no suffix
	rawLen int      // exact decoded size in bytes; 0 = any
	// verify reports whether plain matches the decoded stored data.
	verify func(plain, raw []byte, lim Limits) (bool, error)
	// generate returns the raw (not yet encoded) stored data; rounds 0
	// means the scheme's default cost.
	generate func(plain []byte, rounds int) ([]byte, error)
}

// schemeByName returns the table entry for an upper-case scheme name
// without encoding suffix.
func schemeByName(name string) *scheme {
	switch name {
	case "PLAIN", "CLEAR", "CLEARTEXT":
		return &scheme{name: name, verify: verifyPlain, generate: generatePlain}
	case "CRYPT":
		return &scheme{name: name, verify: verifyCrypt, generate: generateBcrypt}
	case "BLF-CRYPT":
		return &scheme{name: name, verify: verifyBcrypt, generate: generateBcrypt}
	case "SHA512-CRYPT":
		return &scheme{name: name, verify: verifySHACryptID('6'), generate: generateSHACrypt('6')}
	case "SHA256-CRYPT":
		return &scheme{name: name, verify: verifySHACryptID('5'), generate: generateSHACrypt('5')}
	case "MD5-CRYPT":
		return &scheme{name: name, verify: verifyMD5Crypt, generate: generateMD5Crypt}
	case "MD5":
		// Dovecot's MD5 is MD5-crypt, accepting PLAIN-MD5 data too.
		return &scheme{name: name, verify: verifyMD5, generate: generateMD5Crypt}
	case "DES-CRYPT":
		return &scheme{name: name, verify: verifyDESCrypt, generate: generateDESCrypt}
	case "SHA", "SHA1":
		return digestScheme(name, encBase64, sha1Sum)
	case "SHA256":
		return digestScheme(name, encBase64, sha256Sum)
	case "SHA512":
		return digestScheme(name, encBase64, sha512Sum)
	case "PLAIN-MD5":
		return digestScheme(name, encHex, md5Sum)
	case "LDAP-MD5":
		return digestScheme(name, encBase64, md5Sum)
	case "SSHA":
		return saltedScheme(name, sha1Sum)
	case "SSHA256":
		return saltedScheme(name, sha256Sum)
	case "SSHA512":
		return saltedScheme(name, sha512Sum)
	case "SMD5":
		return saltedScheme(name, md5Sum)
	case "ARGON2I":
		return &scheme{name: name, verify: verifyArgon2, generate: generateArgon2(false)}
	case "ARGON2ID":
		return &scheme{name: name, verify: verifyArgon2, generate: generateArgon2(true)}
	case "PBKDF2":
		return &scheme{name: name, verify: verifyPBKDF2, generate: generatePBKDF2}
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		return scramScheme(name)
	}
	return nil
}

// SchemeNames lists the schemes postcote implements, for doveadm pw -l.
func SchemeNames() []string {
	return []string{
		"ARGON2I", "ARGON2ID", "BLF-CRYPT", "CLEAR", "CLEARTEXT", "CRYPT",
		"DES-CRYPT", "LDAP-MD5", "MD5", "MD5-CRYPT", "PBKDF2", "PLAIN",
		"PLAIN-MD5", "SCRAM-SHA-1", "SCRAM-SHA-256", "SHA", "SHA1", "SHA256",
		"SHA256-CRYPT", "SHA512", "SHA512-CRYPT", "SMD5", "SSHA", "SSHA256",
		"SSHA512",
	}
}

// lookupScheme resolves a scheme name with an optional encoding suffix.
func lookupScheme(name string) (*scheme, encoding, bool, error) {
	upper := strings.ToUpper(name)
	base, suffix, hasSuffix := strings.Cut(upper, ".")
	s := schemeByName(base)
	if s == nil {
		return nil, 0, false, fmt.Errorf("%w %q", ErrUnknownScheme, name)
	}
	enc := s.enc
	if hasSuffix {
		switch suffix {
		case "B64", "BASE64":
			enc = encBase64
		case "HEX":
			enc = encHex
		default:
			return nil, 0, false, fmt.Errorf("%w %q (unknown encoding %q)", ErrUnknownScheme, name, suffix)
		}
	}
	return s, enc, hasSuffix, nil
}

// SplitScheme separates a stored password into its "{SCHEME}" prefix (""
// when absent) and the data. As Dovecot does, an unprefixed
// "$1$salt$hash" is recognised as MD5-CRYPT.
func SplitScheme(stored string) (scheme, data string) {
	if rest, ok := strings.CutPrefix(stored, "$1$"); ok {
		if i := strings.IndexByte(rest, '$'); i >= 0 {
			if j := strings.IndexByte(rest[i+1:], '$'); j >= 0 {
				return "MD5-CRYPT", stored[:3+i+1+j]
			}
			return "MD5-CRYPT", stored
		}
	}
	if !strings.HasPrefix(stored, "{") {
		return "", stored
	}
	end := strings.IndexByte(stored, '}')
	if end < 0 {
		return "", stored
	}
	return stored[1:end], stored[end+1:]
}

// decodePassword turns the stored data into the bytes the scheme's
// verifier takes, as Dovecot's password_decode() does.
func decodePassword(s *scheme, enc encoding, explicit bool, data string) ([]byte, error) {
	if enc != encNone && s.rawLen != 0 && !explicit {
		// No suffix: a fixed-size digest is hex when its length says so.
		if len(data) == s.rawLen*2 {
			enc = encHex
		} else {
			enc = encBase64
		}
	}
	var raw []byte
	switch enc {
	case encNone:
		raw = []byte(data)
	case encHex:
		b, err := hex.DecodeString(data)
		if err == nil {
			raw = b
			break
		}
		// Some lengths look like hex and are base64 after all.
		fallthrough
	case encBase64:
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: input is not valid base64", ErrBadHash, s.name)
		}
		raw = b
	}
	if s.rawLen != 0 && len(raw) != s.rawLen {
		return nil, fmt.Errorf("%w: %s: input length %d instead of %d", ErrBadHash, s.name, len(raw), s.rawLen)
	}
	return raw, nil
}

// VerifyPassword reports whether plain matches the stored password. stored
// may carry a "{SCHEME}" prefix; otherwise defaultScheme applies ("" means
// CRYPT, Dovecot's default). A mismatch is (false, nil). An unknown scheme,
// data that does not fit its scheme, or a cost above lim returns an error
// (wrapping ErrUnknownScheme, ErrBadHash or ErrCostTooHigh) that the
// caller logs and treats as a failed login. Digests are compared in
// constant time.
func VerifyPassword(plain, stored, defaultScheme string, lim Limits) (bool, error) {
	name, data := SplitScheme(stored)
	if name == "MD5-CRYPT" && strings.EqualFold(defaultScheme, "PBKDF2") {
		// Unprefixed PBKDF2 data also starts with "$1$".
		name, data = "", stored
	}
	if name == "" {
		name = defaultScheme
	}
	if name == "" {
		name = "CRYPT"
	}
	s, enc, explicit, err := lookupScheme(name)
	if err != nil {
		return false, err
	}
	raw, err := decodePassword(s, enc, explicit, data)
	if err != nil {
		return false, err
	}
	if lim.MaxPasswordBytes > 0 && len(plain) > lim.MaxPasswordBytes {
		return false, nil
	}
	if lim.MemoryHard != nil && memoryHard(name, raw) {
		lim.MemoryHard.enter()
		defer lim.MemoryHard.leave()
	}
	return s.verify([]byte(plain), raw, lim)
}

// Generate hashes password in scheme the way "doveadm pw -s SCHEME" does,
// with the scheme's default cost, and returns "{SCHEME}data".
func Generate(schemeName, password string) (string, error) {
	return GenerateRounds(schemeName, password, 0)
}

// GenerateRounds is Generate with a cost ("doveadm pw -r ROUNDS"): bcrypt
// cost, SHA-crypt or PBKDF2 rounds, argon2 passes. 0 means the default.
func GenerateRounds(schemeName, password string, rounds int) (string, error) {
	if schemeName == "" {
		schemeName = "CRYPT"
	}
	s, enc, _, err := lookupScheme(schemeName)
	if err != nil {
		return "", err
	}
	if rounds < 0 {
		return "", fmt.Errorf("generate %s: negative rounds %d", s.name, rounds)
	}
	raw, err := s.generate([]byte(password), rounds)
	if err != nil {
		return "", fmt.Errorf("generate %s: %w", s.name, err)
	}
	var data string
	switch enc {
	case encNone:
		data = string(raw)
	case encBase64:
		data = base64.StdEncoding.EncodeToString(raw)
	case encHex:
		data = hex.EncodeToString(raw)
	}
	return "{" + strings.ToUpper(schemeName) + "}" + data, nil
}

// randomCryptSalt returns n characters of the crypt(3) alphabet.
func randomCryptSalt(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	for i := range b {
		b[i] = cryptAlphabet[int(b[i])%len(cryptAlphabet)]
	}
	return b
}

// randomBytes returns n random bytes.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func verifyPlain(plain, raw []byte, _ Limits) (bool, error) {
	return subtle.ConstantTimeCompare(plain, raw) == 1, nil
}

func generatePlain(plain []byte, _ int) ([]byte, error) {
	return append([]byte(nil), plain...), nil
}

// verifyCrypt dispatches on the crypt(3) hash prefix, as the system
// crypt() does for Dovecot's CRYPT scheme.
func verifyCrypt(plain, raw []byte, lim Limits) (bool, error) {
	s := string(raw)
	switch {
	case len(s) > 4 && s[0] == '$' && s[1] == '2' && s[3] == '$':
		return verifyBcrypt(plain, raw, lim)
	case strings.HasPrefix(s, "$1$"):
		return verifyMD5Crypt(plain, raw, lim)
	case strings.HasPrefix(s, "$5$"), strings.HasPrefix(s, "$6$"):
		return verifySHACrypt(plain, raw, lim)
	case strings.HasPrefix(s, "$y$"), strings.HasPrefix(s, "$7$"), strings.HasPrefix(s, "$gy$"):
		return verifyYescrypt(plain, raw, lim)
	case len(s) == 0:
		// An empty hash matches nothing (Dovecot crypt_verify).
		return false, nil
	case len(s) == 13 && !strings.HasPrefix(s, "$"):
		return verifyDESCrypt(plain, raw, lim)
	}
	return false, fmt.Errorf("%w: CRYPT: unsupported crypt(3) format", ErrBadHash)
}

func verifyMD5Crypt(plain, raw []byte, _ Limits) (bool, error) {
	s := string(raw)
	rest, ok := strings.CutPrefix(s, "$1$")
	if !ok || !strings.Contains(rest, "$") {
		return false, fmt.Errorf("%w: MD5-CRYPT: not a $1$ hash", ErrBadHash)
	}
	got := md5Crypt(plain, []byte(rest))
	return subtle.ConstantTimeCompare([]byte(got), raw) == 1, nil
}

// verifyMD5 is Dovecot's MD5 scheme: MD5-crypt, or else PLAIN-MD5 data.
func verifyMD5(plain, raw []byte, lim Limits) (bool, error) {
	if strings.HasPrefix(string(raw), "$1$") {
		return verifyMD5Crypt(plain, raw, lim)
	}
	s := schemeByName("PLAIN-MD5")
	digest, err := decodePassword(s, s.enc, false, string(raw))
	if err != nil {
		return false, fmt.Errorf("%w: MD5: not a valid MD5-CRYPT or PLAIN-MD5 password", ErrBadHash)
	}
	return s.verify(plain, digest, lim)
}

func generateMD5Crypt(plain []byte, _ int) ([]byte, error) {
	return []byte(md5Crypt(plain, randomCryptSalt(md5CryptSaltMax))), nil
}

func verifySHACryptID(id byte) func(plain, raw []byte, lim Limits) (bool, error) {
	return func(plain, raw []byte, lim Limits) (bool, error) {
		if len(raw) < 3 || raw[1] != id {
			return false, fmt.Errorf("%w: SHA-crypt: expected a $%c$ hash", ErrBadHash, id)
		}
		return verifySHACrypt(plain, raw, lim)
	}
}

func verifySHACrypt(plain, raw []byte, lim Limits) (bool, error) {
	p, err := parseSHACrypt(string(raw))
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrBadHash, err)
	}
	if lim.MaxSHACryptRounds > 0 && p.rounds > lim.MaxSHACryptRounds {
		return false, fmt.Errorf("%w: SHA-crypt rounds %d > %d", ErrCostTooHigh, p.rounds, lim.MaxSHACryptRounds)
	}
	if lim.MaxSHACryptWorkload > 0 && int64(p.rounds)*int64(len(plain)+128) > lim.MaxSHACryptWorkload {
		return false, fmt.Errorf("%w: SHA-crypt rounds %d with a %d-byte password", ErrCostTooHigh, p.rounds, len(plain))
	}
	got := shaCrypt(plain, p)
	return subtle.ConstantTimeCompare([]byte(got), raw) == 1, nil
}

func generateSHACrypt(id byte) func(plain []byte, rounds int) ([]byte, error) {
	return func(plain []byte, rounds int) ([]byte, error) {
		p := shaCryptParams{id: id, rounds: shaCryptRoundsDefault, salt: randomCryptSalt(shaCryptSaltMax)}
		if rounds != 0 {
			p.rounds = min(max(rounds, shaCryptRoundsMin), shaCryptRoundsMax)
			p.explicit = true
		}
		return []byte(shaCrypt(plain, p)), nil
	}
}
