package sasl

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// SCRAMClient is the client side of SCRAM-SHA-1 and SCRAM-SHA-256 without
// channel binding (RFC 5802 5, RFC 7677). Its Start and Next methods have
// the shape of github.com/emersion/go-sasl's Client, so go-imap's and
// go-smtp's clients can use it. It checks the server's signature: Next
// fails when the server does not prove it knows the credentials.
type SCRAMClient struct {
	mech, user, password, authzid string
	hash                          func() hash.Hash
	nonce                         func() (string, error)

	step        int
	gs2Header   string
	bare        string
	serverSig   []byte
	authMessage string
}

// NewSCRAMClient returns a client for mech ("SCRAM-SHA-1" or
// "SCRAM-SHA-256", case-insensitive) logging in as user with password,
// acting as authzid when that is not empty. The password is prepared with
// SASLprep as RFC 5802 2.2 Normalize() says.
func NewSCRAMClient(mech, user, password, authzid string) (*SCRAMClient, error) {
	c := &SCRAMClient{mech: strings.ToUpper(mech), user: user, authzid: authzid, nonce: randomNonce}
	switch c.mech {
	case "SCRAM-SHA-1":
		c.hash = sha1.New
	case "SCRAM-SHA-256":
		c.hash = sha256.New
	default:
		return nil, fmt.Errorf("SCRAM client: unknown mechanism %q", mech)
	}
	p, err := SASLprep(password)
	if err != nil {
		return nil, fmt.Errorf("SCRAM client: password: %w", err)
	}
	c.password = p
	return c, nil
}

// errSCRAMServer is what the client reports when the server's messages
// or signature are wrong.
var errSCRAMServer = errors.New("SCRAM server failed mutual authentication")

// escapeSASLName encodes "," and "=" as RFC 5802 5.1 requires.
func escapeSASLName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}

// Start returns the mechanism name and the client-first-message.
func (c *SCRAMClient) Start() (mech string, ir []byte, err error) {
	user, err := SASLprep(c.user)
	if err != nil || user == "" {
		return "", nil, fmt.Errorf("SCRAM client: user name cannot be prepared: %v", err)
	}
	cnonce, err := c.nonce()
	if err != nil {
		return "", nil, err
	}
	c.gs2Header = "n,,"
	if c.authzid != "" {
		c.gs2Header = "n,a=" + escapeSASLName(c.authzid) + ","
	}
	c.bare = "n=" + escapeSASLName(user) + ",r=" + cnonce
	c.step = 1
	return c.mech, []byte(c.gs2Header + c.bare), nil
}

// Next answers the server-first-message with the client-final-message,
// then checks the server-final-message and answers it with an empty
// response.
func (c *SCRAMClient) Next(challenge []byte) ([]byte, error) {
	switch c.step {
	case 1:
		c.step = 2
		return c.final(string(challenge))
	case 2:
		c.step = 3
		msg := string(challenge)
		if e, ok := strings.CutPrefix(msg, "e="); ok {
			return nil, fmt.Errorf("SCRAM client: server error %q", e)
		}
		v, ok := strings.CutPrefix(msg, "v=")
		if !ok {
			return nil, fmt.Errorf("%w: server-final-message %q", errSCRAMServer, msg)
		}
		if i := strings.IndexByte(v, ','); i >= 0 {
			v = v[:i] // extensions
		}
		sig, err := base64.StdEncoding.DecodeString(v)
		if err != nil || subtle.ConstantTimeCompare(sig, c.serverSig) != 1 {
			return nil, fmt.Errorf("%w: wrong server signature", errSCRAMServer)
		}
		return []byte{}, nil
	}
	return nil, fmt.Errorf("SCRAM client: unexpected challenge after the exchange")
}

// final computes the client-final-message from the server-first-message
// (RFC 5802 3).
func (c *SCRAMClient) final(serverFirst string) ([]byte, error) {
	var nonce, salt64, iter string
	for _, f := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(f, "m="):
			return nil, fmt.Errorf("%w: mandatory extension in server-first-message", errSCRAMServer)
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt64 = f[2:]
		case strings.HasPrefix(f, "i="):
			iter = f[2:]
		}
	}
	cnonce := strings.TrimPrefix(c.bare[strings.LastIndex(c.bare, ",r=")+1:], "r=")
	if !strings.HasPrefix(nonce, cnonce) || len(nonce) == len(cnonce) || !printable(nonce) {
		return nil, fmt.Errorf("%w: server nonce does not extend the client's", errSCRAMServer)
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return nil, fmt.Errorf("%w: bad salt", errSCRAMServer)
	}
	n, err := strconv.Atoi(iter)
	if err != nil || n < 1 || n > MaxSCRAMIterations {
		// The cap keeps a hostile server from making the client
		// compute for minutes.
		return nil, fmt.Errorf("%w: iteration count %q outside 1..%d", errSCRAMServer, iter, MaxSCRAMIterations)
	}
	clientKey, storedKey, serverKey, err := deriveSCRAMKeys(c.hash, c.password, salt, n)
	if err != nil {
		return nil, fmt.Errorf("SCRAM client: %w", err)
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString([]byte(c.gs2Header)) + ",r=" + nonce
	c.authMessage = c.bare + "," + serverFirst + "," + withoutProof
	proof := make([]byte, len(clientKey))
	subtle.XORBytes(proof, clientKey, hmacSum(c.hash, storedKey, []byte(c.authMessage)))
	c.serverSig = hmacSum(c.hash, serverKey, []byte(c.authMessage))
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// SCRAMKeys derives the credentials a server stores for password with
// mech's hash (RFC 5802 3).
func SCRAMKeys(mech, password string, salt []byte, iterations int) (SCRAMCredentials, error) {
	h := sha256.New
	switch strings.ToUpper(mech) {
	case "SCRAM-SHA-256":
	case "SCRAM-SHA-1":
		h = sha1.New
	default:
		return SCRAMCredentials{}, fmt.Errorf("SCRAM: unknown mechanism %q", mech)
	}
	_, stored, server, err := deriveSCRAMKeys(h, password, salt, iterations)
	if err != nil {
		return SCRAMCredentials{}, fmt.Errorf("SCRAM keys: %w", err)
	}
	return SCRAMCredentials{Iterations: iterations, Salt: append([]byte(nil), salt...), StoredKey: stored, ServerKey: server}, nil
}

// SCRAMKeysHash is SCRAMKeys for a hash function instead of a mechanism
// name (the password schemes keep SCRAM-SHA-1 and SCRAM-SHA-256 by their
// hash): it returns StoredKey and ServerKey.
func SCRAMKeysHash(h func() hash.Hash, password string, salt []byte, iter int) (storedKey, serverKey []byte, err error) {
	_, storedKey, serverKey, err = deriveSCRAMKeys(h, password, salt, iter)
	return storedKey, serverKey, err
}

// deriveSCRAMKeys is RFC 5802 3:
//
//	SaltedPassword := Hi(Normalize(password), salt, i)
//	ClientKey := HMAC(SaltedPassword, "Client Key")
//	StoredKey := H(ClientKey)
//	ServerKey := HMAC(SaltedPassword, "Server Key")
func deriveSCRAMKeys(h func() hash.Hash, password string, salt []byte, iter int) (clientKey, storedKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(h, password, salt, iter, h().Size())
	if err != nil {
		return nil, nil, nil, err
	}
	clientKey = hmacSum(h, salted, []byte("Client Key"))
	sh := h()
	sh.Write(clientKey)
	return clientKey, sh.Sum(nil), hmacSum(h, salted, []byte("Server Key")), nil
}
