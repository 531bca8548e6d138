// Package sasl owns the server side of the SASL mechanisms that every
// postcote protocol offers (SMTP AUTH, IMAP AUTHENTICATE, POP3 AUTH,
// ManageSieve AUTHENTICATE and the Dovecot auth service).
//
// A mechanism is a small state machine: the protocol layer feeds it the
// client's decoded responses and sends back the challenges it returns,
// base64-encoding them in its own syntax. Passwords are checked through the
// PasswordChecker interface, which internal/userdb implements, so the
// mechanisms know nothing about where users live.
//
// PLAIN is RFC 4616; LOGIN is the draft-murchison-sasl-login mechanism that
// Outlook and old clients use.
package sasl

import (
	"bytes"
	"context"
	"errors"
	"net"
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
// advertise them.
var Mechanisms = []string{"PLAIN", "LOGIN"}

// NewServer starts mechanism mech ("PLAIN" or "LOGIN", case-insensitive).
// base carries the service, addresses and TLS state; its User and Password
// are filled from the client's responses. It returns nil for a mechanism it
// does not know.
func NewServer(mech string, checker PasswordChecker, base Request) Server {
	switch strings.ToUpper(mech) {
	case "PLAIN":
		return &plainServer{checker: checker, req: base}
	case "LOGIN":
		return &loginServer{checker: checker, req: base}
	}
	return nil
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
