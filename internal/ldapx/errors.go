package ldapx

import (
	"context"
	"errors"

	"github.com/go-ldap/ldap/v3"
)

// Sentinels for errors.Is on an *Error.
var (
	// ErrUnavailable: the directory could not answer now (unreachable,
	// TLS refused, timeout, busy, unavailable, shutting down). Report a
	// temporary failure; never read it as "wrong password".
	ErrUnavailable = errors.New("LDAP server unavailable")
	// ErrNoSuchObject: the search base or bind DN does not exist
	// (resultCode noSuchObject, RFC 4511 A.2).
	ErrNoSuchObject = errors.New("no such LDAP entry")
	// ErrInvalidCredentials: Authenticate's bind was refused
	// (invalidCredentials, RFC 4511 A.2). A refused bind as the
	// service's own BindDN does not match it: that is a configuration
	// error, not a user's wrong password.
	ErrInvalidCredentials = errors.New("invalid LDAP credentials")
	// ErrEmptyPassword: Authenticate was given an empty password and
	// sent nothing, since a simple bind with an empty password is an
	// unauthenticated bind that servers accept (RFC 4513 5.1.2, 6.3.1).
	ErrEmptyPassword = errors.New("empty password refused: it would be an unauthenticated bind")
)

// Error is a failed LDAP operation.
type Error struct {
	Op     string // "connect", "bind", "authenticate", "search"
	Server string // the URI, when a connection was made or tried
	// Code is the LDAP result code (RFC 4511 4.1.9), 0 when the server
	// sent none (network failure, timeout).
	Code int
	Err  error
	// temporary is set for failures where the directory did not answer.
	temporary bool
}

func (e *Error) Error() string {
	s := "ldap " + e.Op
	if e.Server != "" {
		s += " " + e.Server
	}
	if e.temporary {
		s += " (temporary failure)"
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed.
func (e *Error) Temporary() bool { return e.temporary }

// Is matches the package's sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return e.temporary
	case ErrNoSuchObject:
		return e.Code == ldap.LDAPResultNoSuchObject
	case ErrInvalidCredentials:
		return e.Op == "authenticate" && e.Code == ldap.LDAPResultInvalidCredentials
	case ErrEmptyPassword:
		return errors.Is(e.Err, ErrEmptyPassword)
	}
	return false
}

// IsTemporary reports whether err says the directory could not answer.
func IsTemporary(err error) bool { return errors.Is(err, ErrUnavailable) }

// temporaryCodes are result codes that say "not now" rather than "no".
var temporaryCodes = map[int]bool{
	ldap.LDAPResultTimeLimitExceeded:  true, // 3
	ldap.LDAPResultAdminLimitExceeded: true, // 11
	ldap.LDAPResultBusy:               true, // 51
	ldap.LDAPResultUnavailable:        true, // 52
	ldap.LDAPResultOther:              true, // 80 (slapd: "internal error")
	ldap.LDAPResultServerDown:         true, // 81
	ldap.LDAPResultTimeout:            true, // 85
	ldap.LDAPResultConnectError:       true, // 91
	ldap.ErrorNetwork:                 true, // 200: go-ldap's transport errors
	ldap.ErrorUnexpectedMessage:       true,
	ldap.ErrorUnexpectedResponse:      true,
	ldap.ErrorMalformedPacket:         true,
}

// wrap classifies err from op on server.
func wrap(op, server string, err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	out := &Error{Op: op, Server: server, Err: err}
	var le *ldap.Error
	switch {
	case errors.Is(err, ErrEmptyPassword):
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		out.temporary = true
	case errors.As(err, &le):
		out.Code = int(le.ResultCode)
		if out.Code >= 200 {
			out.Code = 0 // go-ldap's own codes are not LDAP result codes
		}
		out.temporary = temporaryCodes[int(le.ResultCode)]
	default:
		// Anything else comes from the transport: a closed or reset
		// connection, a refused dial, a TLS failure.
		out.temporary = true
	}
	return out
}

// isConnBroken reports whether err leaves the connection unusable.
func isConnBroken(err error) bool {
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.ErrorFilterCompile, ldap.ErrorFilterDecompile, ldap.ErrorDebugging, ldap.ErrorEmptyPassword:
			return false // refused before anything was sent
		}
		return le.ResultCode >= 200 || le.ResultCode == ldap.LDAPResultServerDown ||
			le.ResultCode == ldap.LDAPResultTimeout || le.ResultCode == ldap.LDAPResultConnectError
	}
	return true
}
