package userdb

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"postcote/internal/sasl"
)

// SCRAM-SHA-1 and SCRAM-SHA-256 stored credentials (RFC 5802 3, RFC 7677),
// in Dovecot's form "iterations,salt,StoredKey,ServerKey" with base64
// salt and keys. They verify plaintext logins (PLAIN, LOGIN) and give a
// SCRAM mechanism what it needs without the password. As Dovecot does,
// the password is used as given, without SASLprep.

const (
	scramDefaultIter = 4096
	scramSaltLen     = 16
)

// SCRAMCredentials are the parts of a stored SCRAM password.
type SCRAMCredentials struct {
	Hash       func() hash.Hash // sha1.New or sha256.New
	Iterations int
	Salt       []byte
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte // HMAC(SaltedPassword, "Server Key")
}

// ParseSCRAM reads the data of a {SCRAM-SHA-1} or {SCRAM-SHA-256}
// password (without the prefix); scheme names which.
func ParseSCRAM(scheme, data string) (SCRAMCredentials, error) {
	var c SCRAMCredentials
	switch strings.ToUpper(scheme) {
	case "SCRAM-SHA-1":
		c.Hash = sha1.New
	case "SCRAM-SHA-256":
		c.Hash = sha256.New
	default:
		return c, fmt.Errorf("%w %q", ErrUnknownScheme, scheme)
	}
	size := c.Hash().Size()
	parts := strings.Split(data, ",")
	if len(parts) != 4 {
		return c, fmt.Errorf("%w: %s: expected iterations,salt,storedkey,serverkey", ErrBadHash, scheme)
	}
	n, err := strconv.Atoi(parts[0])
	if err != nil || n < 1 {
		return c, fmt.Errorf("%w: %s: bad iteration count", ErrBadHash, scheme)
	}
	c.Iterations = n
	if c.Salt, err = base64.StdEncoding.DecodeString(parts[1]); err != nil || len(c.Salt) == 0 {
		return c, fmt.Errorf("%w: %s: bad salt", ErrBadHash, scheme)
	}
	if c.StoredKey, err = base64.StdEncoding.DecodeString(parts[2]); err != nil || len(c.StoredKey) != size {
		return c, fmt.Errorf("%w: %s: bad StoredKey", ErrBadHash, scheme)
	}
	if c.ServerKey, err = base64.StdEncoding.DecodeString(parts[3]); err != nil || len(c.ServerKey) != size {
		return c, fmt.Errorf("%w: %s: bad ServerKey", ErrBadHash, scheme)
	}
	return c, nil
}

// scramKeys derives StoredKey and ServerKey from a password (RFC 5802 3).
func scramKeys(h func() hash.Hash, password, salt []byte, iter int) (stored, server []byte, err error) {
	return sasl.SCRAMKeysHash(h, string(password), salt, iter)
}

func scramScheme(name string) *scheme {
	return &scheme{
		name: name,
		verify: func(plain, raw []byte, lim Limits) (bool, error) {
			c, err := ParseSCRAM(name, string(raw))
			if err != nil {
				return false, err
			}
			if lim.MaxPBKDF2Rounds > 0 && c.Iterations > lim.MaxPBKDF2Rounds {
				return false, fmt.Errorf("%w: %s iterations %d > %d", ErrCostTooHigh, name, c.Iterations, lim.MaxPBKDF2Rounds)
			}
			stored, _, err := scramKeys(c.Hash, plain, c.Salt, c.Iterations)
			if err != nil {
				return false, fmt.Errorf("%s: %w", name, err)
			}
			return subtle.ConstantTimeCompare(stored, c.StoredKey) == 1, nil
		},
		generate: func(plain []byte, _ int) ([]byte, error) {
			// doveadm pw ignores -r for SCRAM and always uses 4096.
			h := sha1.New
			if name == "SCRAM-SHA-256" {
				h = sha256.New
			}
			salt := randomBytes(scramSaltLen)
			stored, server, err := scramKeys(h, plain, salt, scramDefaultIter)
			if err != nil {
				return nil, err
			}
			enc := base64.StdEncoding.EncodeToString
			return fmt.Appendf(nil, "%d,%s,%s,%s", scramDefaultIter, enc(salt), enc(stored), enc(server)), nil
		},
	}
}
