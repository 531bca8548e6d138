package sasl

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SCRAMCredentials are what a SCRAM server keeps of a password (RFC 5802
// 3): the salt and iteration count the client needs to derive its keys,
// StoredKey = H(ClientKey) to check the client's proof, and ServerKey to
// sign the exchange.
type SCRAMCredentials struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// CredentialsLookup is implemented by checkers that can run SCRAM
// (internal/userdb's Checker). The mechanism asks LookupSCRAM for the
// credentials after the client's first message and reports the outcome
// of the proof to FinishSCRAM, so that SCRAM logins count and slow down
// failures exactly as PLAIN's do.
type CredentialsLookup interface {
	// LookupSCRAM returns the canonical user name and the SCRAM
	// credentials of req.User for mech ("SCRAM-SHA-1" or
	// "SCRAM-SHA-256"). An unknown user, a user whose stored password
	// cannot give them (a crypt hash) or a login the passdb refuses is
	// ErrAuthFailed (returned after the failure delay); a back end that
	// cannot answer wraps ErrTempFail.
	LookupSCRAM(ctx context.Context, req Request, mech string) (user string, creds SCRAMCredentials, err error)
	// FinishSCRAM reports whether the client's proof for user was
	// right. A wrong one counts as a failed login: FinishSCRAM waits
	// the growing failure delay and returns ErrAuthFailed (possibly
	// wrapped). A right one returns nil.
	FinishSCRAM(ctx context.Context, req Request, user string, ok bool) error
}

// MaxSCRAMIterations caps the iteration count of stored SCRAM credentials
// (Dovecot's SCRAM_MAX_ITERATE_COUNT, 128 × 4096): a larger count in a
// crafted passdb entry would make every client burn its CPU.
const MaxSCRAMIterations = 128 * 4096

// scramNonceBytes is the entropy of the server's nonce part.
const scramNonceBytes = 32

// SCRAM server-error values (RFC 5802 7).
const (
	SCRAMInvalidEncoding            = "invalid-encoding"
	SCRAMExtensionsNotSupported     = "extensions-not-supported"
	SCRAMInvalidProof               = "invalid-proof"
	SCRAMChannelBindingsDontMatch   = "channel-bindings-dont-match"
	SCRAMChannelBindingNotSupported = "channel-binding-not-supported"
	SCRAMInvalidUsernameEncoding    = "invalid-username-encoding"
	SCRAMOtherError                 = "other-error"
)

// SCRAMError is a SCRAM exchange that failed for a reason RFC 5802 7
// names (Value, the "e=" attribute) with details for the log. It matches
// ErrAuthFailed when the proof or the user was wrong and ErrMalformed when
// the client broke the protocol.
type SCRAMError struct {
	Value  string // server-error-value, e.g. "invalid-proof"
	Detail string
	err    error // ErrAuthFailed or ErrMalformed
}

func (e *SCRAMError) Error() string {
	s := e.Unwrap().Error() + ": SCRAM " + e.Value
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns ErrAuthFailed or ErrMalformed (ErrAuthFailed for a
// SCRAMError made outside this package).
func (e *SCRAMError) Unwrap() error {
	if e.err == nil {
		return ErrAuthFailed
	}
	return e.err
}

// ServerFinal is the server-final-message reporting the error, "e=value"
// (RFC 5802 7), for a protocol that can carry data with a failure.
func (e *SCRAMError) ServerFinal() []byte { return []byte("e=" + e.Value) }

func scramMalformed(value, format string, args ...any) error {
	return &SCRAMError{Value: value, Detail: fmt.Sprintf(format, args...), err: ErrMalformed}
}

// scramServer runs one SCRAM exchange.
type scramServer struct {
	mech   string
	hash   func() hash.Hash
	lookup CredentialsLookup
	req    Request
	nonce  func() (string, error)

	step            int
	gs2Header       string
	clientFirstBare string
	serverFirst     string
	fullNonce       string
	canonical       string
	creds           SCRAMCredentials
	user            string
}

func newSCRAMServer(mech string, lookup CredentialsLookup, base Request, nonce func() (string, error)) *scramServer {
	h := sha256.New
	if mech == "SCRAM-SHA-1" {
		h = sha1.New
	}
	return &scramServer{mech: mech, hash: h, lookup: lookup, req: base, nonce: nonce}
}

// randomNonce returns the server's nonce part: printable characters
// other than "," (RFC 5802 7 "printable"), from crypto/rand.
func randomNonce() (string, error) {
	b := make([]byte, scramNonceBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("SCRAM nonce: %w", err)
	}
	return base64.RawStdEncoding.EncodeToString(b), nil
}

func (s *scramServer) User() string { return s.user }

const (
	scramWantFirst = iota
	scramWantFinal
	scramWantEmpty
	scramDone
)

func (s *scramServer) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	switch s.step {
	case scramWantFirst:
		if resp == nil {
			// No initial response: an empty challenge asks for it
			// (RFC 4422 5).
			return []byte{}, false, nil
		}
		chal, err := s.first(ctx, resp)
		if err != nil {
			s.step = scramDone
			return nil, true, err
		}
		s.step = scramWantFinal
		return chal, false, nil
	case scramWantFinal:
		chal, err := s.final(ctx, resp)
		if err != nil {
			s.step = scramDone
			return nil, true, err
		}
		s.step = scramWantEmpty
		return chal, false, nil
	case scramWantEmpty:
		s.step = scramDone
		// RFC 4422 5: the server-final message went out as a
		// challenge; the client answers it with an empty response.
		if len(resp) != 0 {
			return nil, true, scramMalformed(SCRAMOtherError, "non-empty response to server-final-message")
		}
		s.user = s.canonical
		return nil, true, nil
	}
	return nil, true, ErrMalformed
}

// clientFirst is a parsed client-first-message (RFC 5802 7).
type clientFirst struct {
	gs2Header string // "n,," or "y,a=...," — the channel-binding input
	authzid   string
	user      string // unescaped, not yet SASLprepped
	nonce     string // c-nonce
	bare      string // client-first-message-bare
}

// parseClientFirst reads
//
//	client-first-message = gs2-header client-first-message-bare
//	gs2-header = gs2-cbind-flag "," [ authzid ] ","
//	gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
//	client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
func parseClientFirst(msg []byte) (clientFirst, error) {
	var cf clientFirst
	if err := checkValueChars(msg); err != nil {
		return cf, err
	}
	s := string(msg)
	flag, rest, ok := strings.Cut(s, ",")
	if !ok {
		return cf, scramMalformed(SCRAMOtherError, "missing first ',' in GS2 header")
	}
	switch {
	case flag == "n", flag == "y":
		// "y": the client could bind but thinks the server cannot;
		// right, since -PLUS is not offered (RFC 5802 6).
	case strings.HasPrefix(flag, "p="):
		return cf, &SCRAMError{Value: SCRAMChannelBindingNotSupported, Detail: "client requires channel binding " + strconv.Quote(flag[2:]), err: ErrMalformed}
	default:
		return cf, scramMalformed(SCRAMOtherError, "invalid GS2 channel-binding flag %q", flag)
	}
	az, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, scramMalformed(SCRAMOtherError, "missing second ',' in GS2 header")
	}
	if az != "" {
		v, ok := strings.CutPrefix(az, "a=")
		if !ok {
			return cf, scramMalformed(SCRAMOtherError, "invalid authzid field")
		}
		name, err := unescapeSASLName(v)
		if err != nil {
			return cf, err
		}
		cf.authzid = name
	}
	cf.gs2Header = s[:len(s)-len(bare)]
	cf.bare = bare
	fields := strings.Split(bare, ",")
	if strings.HasPrefix(fields[0], "m=") {
		// RFC 5802 5.1: a mandatory extension this server does not
		// know fails the authentication.
		return cf, &SCRAMError{Value: SCRAMExtensionsNotSupported, err: ErrMalformed}
	}
	if len(fields) < 2 {
		return cf, scramMalformed(SCRAMOtherError, "client-first-message-bare needs n= and r=")
	}
	v, ok := strings.CutPrefix(fields[0], "n=")
	if !ok {
		return cf, scramMalformed(SCRAMOtherError, "expected username attribute n=")
	}
	name, err := unescapeSASLName(v)
	if err != nil {
		return cf, err
	}
	if name == "" {
		return cf, &SCRAMError{Value: SCRAMInvalidUsernameEncoding, Detail: "empty user name", err: ErrMalformed}
	}
	cf.user = name
	nonce, ok := strings.CutPrefix(fields[1], "r=")
	if !ok || nonce == "" || !printable(nonce) {
		return cf, scramMalformed(SCRAMOtherError, "invalid nonce attribute r=")
	}
	cf.nonce = nonce
	return cf, nil
}

// checkValueChars refuses what no SCRAM message may hold: invalid UTF-8
// and NUL (RFC 5802 7 value-char).
func checkValueChars(msg []byte) error {
	if !utf8.Valid(msg) || bytes.IndexByte(msg, 0) >= 0 {
		return scramMalformed(SCRAMInvalidEncoding, "message is not UTF-8 without NUL")
	}
	return nil
}

// printable is RFC 5802 7 "printable": %x21-2B / %x2D-7E.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// unescapeSASLName decodes "=2C" and "=3D" (RFC 5802 5.1: any other "="
// MUST fail the authentication).
func unescapeSASLName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", &SCRAMError{Value: SCRAMInvalidUsernameEncoding, Detail: "'=' not followed by 2C or 3D", err: ErrMalformed}
		}
		i += 2
	}
	return b.String(), nil
}

// first handles the client-first-message: parse, look the user up, send
// the server-first-message.
func (s *scramServer) first(ctx context.Context, resp []byte) ([]byte, error) {
	cf, err := parseClientFirst(resp)
	if err != nil {
		return nil, err
	}
	// RFC 5802 5.1: the user name is prepared with SASLprep as a query
	// string (the client should have done so already; doing it again
	// changes nothing for a prepared name).
	user, err := SASLprep(cf.user)
	if err != nil {
		return nil, &SCRAMError{Value: SCRAMInvalidUsernameEncoding, Detail: err.Error(), err: ErrMalformed}
	}
	authzid := cf.authzid
	if authzid != "" {
		if authzid, err = SASLprep(authzid); err != nil {
			return nil, &SCRAMError{Value: SCRAMInvalidUsernameEncoding, Detail: "authzid: " + err.Error(), err: ErrMalformed}
		}
	}
	s.req.User, s.req.AuthzID, s.req.Password = user, authzid, ""
	s.gs2Header, s.clientFirstBare = cf.gs2Header, cf.bare
	canonical, creds, err := s.lookup.LookupSCRAM(ctx, s.req, s.mech)
	if err != nil {
		return nil, err
	}
	if err := s.checkCreds(creds); err != nil {
		// A broken passdb entry: logged by the caller, and a failed
		// login like any other (Dovecot: auth_request_fail).
		if ferr := s.lookup.FinishSCRAM(ctx, s.req, canonical, false); ferr != nil {
			return nil, fmt.Errorf("%w (%v)", ferr, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrAuthFailed, err)
	}
	snonce, err := s.nonce()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTempFail, err)
	}
	s.canonical, s.creds = canonical, creds
	s.fullNonce = cf.nonce + snonce
	// server-first-message = nonce "," salt "," iteration-count
	s.serverFirst = "r=" + s.fullNonce + ",s=" + base64.StdEncoding.EncodeToString(creds.Salt) + ",i=" + strconv.Itoa(creds.Iterations)
	return []byte(s.serverFirst), nil
}

// checkCreds refuses credentials that do not fit the mechanism or whose
// iteration count is out of bounds.
func (s *scramServer) checkCreds(c SCRAMCredentials) error {
	size := s.hash().Size()
	switch {
	case c.Iterations < 1 || c.Iterations > MaxSCRAMIterations:
		return fmt.Errorf("%s credentials: iteration count %d outside 1..%d", s.mech, c.Iterations, MaxSCRAMIterations)
	case len(c.Salt) == 0:
		return fmt.Errorf("%s credentials: empty salt", s.mech)
	case len(c.StoredKey) != size || len(c.ServerKey) != size:
		return fmt.Errorf("%s credentials: keys are not %d bytes", s.mech, size)
	}
	return nil
}

// clientFinal is a parsed client-final-message (RFC 5802 7):
//
//	client-final-message-without-proof = channel-binding "," nonce ["," extensions]
//	client-final-message = client-final-message-without-proof "," proof
type clientFinal struct {
	cbind        []byte // decoded c= value
	nonce        string
	proof        []byte
	withoutProof string
}

func parseClientFinal(msg []byte) (clientFinal, error) {
	var cf clientFinal
	if err := checkValueChars(msg); err != nil {
		return cf, err
	}
	s := string(msg)
	i := strings.LastIndex(s, ",")
	if i < 0 {
		return cf, scramMalformed(SCRAMOtherError, "client-final-message without proof")
	}
	cf.withoutProof = s[:i]
	p, ok := strings.CutPrefix(s[i+1:], "p=")
	if !ok {
		return cf, scramMalformed(SCRAMOtherError, "last attribute is not the proof p=")
	}
	var err error
	if cf.proof, err = base64.StdEncoding.DecodeString(p); err != nil {
		return cf, scramMalformed(SCRAMInvalidEncoding, "proof is not base64")
	}
	fields := strings.Split(cf.withoutProof, ",")
	if len(fields) < 2 {
		return cf, scramMalformed(SCRAMOtherError, "client-final-message needs c=, r= and p=")
	}
	c, ok := strings.CutPrefix(fields[0], "c=")
	if !ok {
		return cf, scramMalformed(SCRAMOtherError, "expected channel-binding attribute c=")
	}
	if cf.cbind, err = base64.StdEncoding.DecodeString(c); err != nil {
		return cf, scramMalformed(SCRAMInvalidEncoding, "channel binding is not base64")
	}
	if cf.nonce, ok = strings.CutPrefix(fields[1], "r="); !ok {
		return cf, scramMalformed(SCRAMOtherError, "expected nonce attribute r=")
	}
	return cf, nil
}

// final checks the client-final-message's proof and returns the
// server-final-message.
func (s *scramServer) final(ctx context.Context, resp []byte) ([]byte, error) {
	cf, err := parseClientFinal(resp)
	if err != nil {
		return nil, err
	}
	// cbind-input = gs2-header: no cbind-data for "n" and "y".
	if !bytes.Equal(cf.cbind, []byte(s.gs2Header)) {
		return nil, &SCRAMError{Value: SCRAMChannelBindingsDontMatch, err: ErrMalformed}
	}
	if subtle.ConstantTimeCompare([]byte(cf.nonce), []byte(s.fullNonce)) != 1 {
		return nil, scramMalformed(SCRAMOtherError, "wrong nonce")
	}
	size := s.hash().Size()
	authMessage := []byte(s.clientFirstBare + "," + s.serverFirst + "," + cf.withoutProof)
	ok := len(cf.proof) == size
	if ok {
		// ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage);
		// the proof is right when H(ClientKey) = StoredKey (RFC 5802 3).
		sig := hmacSum(s.hash, s.creds.StoredKey, authMessage)
		clientKey := make([]byte, size)
		subtle.XORBytes(clientKey, cf.proof, sig)
		h := s.hash()
		h.Write(clientKey)
		ok = subtle.ConstantTimeCompare(h.Sum(nil), s.creds.StoredKey) == 1
	}
	if !ok {
		if err := s.lookup.FinishSCRAM(ctx, s.req, s.canonical, false); err != nil {
			return nil, &SCRAMError{Value: SCRAMInvalidProof, err: err}
		}
		return nil, &SCRAMError{Value: SCRAMInvalidProof, err: ErrAuthFailed}
	}
	if err := s.lookup.FinishSCRAM(ctx, s.req, s.canonical, true); err != nil {
		return nil, err
	}
	// RFC 5802 5 and 4616 2 (as for PLAIN): an authzid other than the
	// authenticated identity needs proxy rights, which postcote does
	// not grant.
	if a := s.req.AuthzID; a != "" && a != s.req.User && a != s.canonical {
		return nil, fmt.Errorf("%w: authzid %q differs from user %q", ErrAuthFailed, a, s.canonical)
	}
	// server-final-message = verifier, "v=" base64(ServerSignature).
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacSum(s.hash, s.creds.ServerKey, authMessage))), nil
}

func hmacSum(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}
