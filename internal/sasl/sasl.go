package sasl

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strings"
)

// ErrAuthFailed means the credentials were wrong. Protocols answer it with
// their "authentication failed" reply (535 5.7.8, NO [AUTHENTICATIONFAILED]).
var ErrAuthFailed = errors.New("authentication failed")

// ErrTempFail means the user database could not be asked (back end down).
// Protocols answer it with a temporary failure (454 4.7.0, NO [UNAVAILABLE]),
// never as a wrong password.
var ErrTempFail = errors.New("temporary authentication failure")

// ErrMalformed means the client's response did not follow the mechanism.
var ErrMalformed = errors.New("malformed SASL response")

// ErrCancelled means the client sent "*" to abort the exchange (RFC 4954 4).
var ErrCancelled = errors.New("authentication cancelled")

// Request describes one login attempt for the password checker.
type Request struct {
	Service  string   // "smtp", "imap", "pop3", "sieve", "lmtp"
	AuthzID  string   // authorization identity, "" when not given
	User     string   // authentication identity
	Password string   // the plaintext password the client sent
	Remote   net.Addr // the client's address, for logs and failure counters
	Local    net.Addr
	Secured  bool // the connection is TLS-protected
}

// PasswordChecker verifies a user's password. It returns the canonical user
// name on success, ErrAuthFailed for a wrong user or password, and
// ErrTempFail (possibly wrapped) when the back end cannot answer.
type PasswordChecker interface {
	CheckPassword(ctx context.Context, req Request) (user string, err error)
}

// Server is one run of a mechanism on the server side.
type Server interface {
	// Next takes the client's decoded response (nil before the first
	// response when the client sent no initial response) and returns the
	// next challenge. done is true when the exchange is over: then err is
	// nil on success and User() names the authenticated user.
	Next(ctx context.Context, response []byte) (challenge []byte, done bool, err error)
	User() string
}

// Mechanisms lists the names this package implements, in the order servers
// advertise them. Which of them a server offers is its configuration's
// choice (auth_mechanisms); the SCRAM ones also need a checker that
// implements CredentialsLookup.
var Mechanisms = []string{"PLAIN", "LOGIN", "SCRAM-SHA-1", "SCRAM-SHA-256"}

// Security flags of a mechanism, named as Dovecot's auth protocol names
// them on its MECH lines (and as Postfix's smtpd_sasl_security_options
// read them).
const (
	// FlagPlaintext: the password crosses the wire in the clear (PLAIN,
	// LOGIN), so disable_plaintext_auth and noplaintext refuse it.
	FlagPlaintext = "plaintext"
	// FlagMutualAuth: the server proves it knows the credentials too
	// (SCRAM's server signature, RFC 5802 3).
	FlagMutualAuth = "mutual-auth"
)

// Flags returns the security flags of mechanism mech (case-insensitive),
// nil for a mechanism without any or one this package does not know.
func Flags(mech string) []string {
	switch strings.ToUpper(mech) {
	case "PLAIN", "LOGIN":
		return []string{FlagPlaintext}
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		// Dovecot's mech-scram.c: MECH_SEC_MUTUAL_AUTH only.
		return []string{FlagMutualAuth}
	}
	return nil
}

// IsPlaintext reports whether mech sends the password in the clear, the
// mechanisms Dovecot's disable_plaintext_auth keeps off unencrypted
// connections (its MECH_SEC_PLAINTEXT flag).
func IsPlaintext(mech string) bool {
	return slices.Contains(Flags(mech), FlagPlaintext)
}

// NewServer starts mechanism mech ("PLAIN", "LOGIN", "SCRAM-SHA-1" or
// "SCRAM-SHA-256", case-insensitive). base carries the service, addresses
// and TLS state; its User and Password are filled from the client's
// responses. It returns nil for a mechanism it does not know, and for a
// SCRAM mechanism when checker does not implement CredentialsLookup (a
// client of a remote auth server can only check passwords).
func NewServer(mech string, checker PasswordChecker, base Request) Server {
	switch m := strings.ToUpper(mech); m {
	case "PLAIN":
		return &plainServer{checker: checker, req: base}
	case "LOGIN":
		return &loginServer{checker: checker, req: base}
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		if lookup, ok := checker.(CredentialsLookup); ok {
			return newSCRAMServer(m, lookup, base, randomNonce)
		}
		if st, ok := checker.(MechanismStarter); ok {
			return st.StartMechanism(m, base)
		}
	}
	return nil
}

// MechanismStarter is implemented by a checker that runs mechanisms
// other than PLAIN and LOGIN elsewhere: a client of a remote Dovecot
// auth server relays the exchange as Postfix's smtpd does, so SCRAM works
// though the stored credentials never reach this process. StartMechanism
// returns nil when the remote end does not offer mech.
type MechanismStarter interface {
	StartMechanism(mech string, base Request) Server
}

// plainServer implements RFC 4616: one message
// authzid NUL authcid NUL passwd.
type plainServer struct {
	checker PasswordChecker
	req     Request
	user    string
}

func (s *plainServer) User() string { return s.user }

func (s *plainServer) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	if resp == nil {
		// No initial response: send an empty challenge (RFC 4422 5).
		return []byte{}, false, nil
	}
	parts := bytes.Split(resp, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return nil, true, ErrMalformed
	}
	s.req.AuthzID, s.req.User, s.req.Password = string(parts[0]), string(parts[1]), string(parts[2])
	user, err := s.checker.CheckPassword(ctx, s.req)
	if err != nil {
		return nil, true, err
	}
	// RFC 4616 2: an authzid other than the authenticated identity needs
	// proxy rights, which postcote does not grant.
	if s.req.AuthzID != "" && s.req.AuthzID != s.req.User && s.req.AuthzID != user {
		return nil, true, ErrAuthFailed
	}
	s.user = user
	return nil, true, nil
}

// loginServer implements the LOGIN mechanism: "Username:" then "Password:".
type loginServer struct {
	checker PasswordChecker
	req     Request
	step    int
	user    string
}

func (s *loginServer) User() string { return s.user }

func (s *loginServer) Next(ctx context.Context, resp []byte) ([]byte, bool, error) {
	switch s.step {
	case 0:
		s.step = 1
		if resp == nil {
			return []byte("Username:"), false, nil
		}
		fallthrough // initial response carries the user name
	case 1:
		if len(resp) == 0 || bytes.IndexByte(resp, 0) >= 0 {
			return nil, true, ErrMalformed
		}
		s.req.User = string(resp)
		s.step = 2
		return []byte("Password:"), false, nil
	case 2:
		if bytes.IndexByte(resp, 0) >= 0 {
			return nil, true, ErrMalformed
		}
		s.req.Password = string(resp)
		s.step = 3
		user, err := s.checker.CheckPassword(ctx, s.req)
		if err != nil {
			return nil, true, err
		}
		s.user = user
		return nil, true, nil
	}
	return nil, true, ErrMalformed
}
