package userdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"postcote/internal/sasl"
)

// SCRAM logins (sasl.CredentialsLookup). As Dovecot's auth process does
// for its SCRAM mechanisms (a "lookup credentials" request to the
// passdbs), the credentials come from the first passdb that can return
// the stored password:
//
//   - {SCRAM-SHA-256} or {SCRAM-SHA-1} data, the mechanism's own scheme,
//     as doveadm pw writes it (iterations,salt,StoredKey,ServerKey);
//   - a {PLAIN}/{CLEAR}/{CLEARTEXT} password (any encoding suffix), from
//     which the keys are computed with a fresh salt and 4096 iterations,
//     Dovecot's default;
//   - anything else (a crypt hash, the other SCRAM hash) cannot give them
//     and the login fails, as Dovecot's "Requested SCRAM-SHA-256 scheme,
//     but we have only SHA512-CRYPT" does.
//
// Every failure (unknown user, unusable scheme, refused login, wrong
// proof) goes through the same counter and growing delay as a wrong PLAIN
// password.

var _ sasl.CredentialsLookup = (*Checker)(nil)

// errSchemeNotAvailable: the stored password cannot give SCRAM credentials.
var errSchemeNotAvailable = errors.New("password scheme cannot give SCRAM credentials")

// LookupSCRAM implements sasl.CredentialsLookup.
func (c *Checker) LookupSCRAM(ctx context.Context, sreq sasl.Request, mech string) (string, sasl.SCRAMCredentials, error) {
	rip, rport := addrParts(sreq.Remote)
	lip, lport := addrParts(sreq.Local)
	user, err := c.normalizeUser(sreq.User)
	if err != nil {
		c.verbose("auth(%s,%s): %v", logUser(sreq.User), rip, err)
		return "", sasl.SCRAMCredentials{}, c.failed(ctx, rip, "", sasl.ErrAuthFailed)
	}
	req := Request{
		User: user, OrigUser: sreq.User, Service: sreq.Service,
		RemoteIP: rip, RemotePort: rport, LocalIP: lip, LocalPort: lport,
		Secured: sreq.Secured,
	}
	if err := ctx.Err(); err != nil {
		return "", sasl.SCRAMCredentials{}, fmt.Errorf("%w: %v", sasl.ErrTempFail, err)
	}
	canonical, stored, scheme, fields, err := c.credentials(ctx, req)
	switch {
	case errors.Is(err, sasl.ErrTempFail):
		return "", sasl.SCRAMCredentials{}, err
	case err != nil:
		c.verbose("%s(%s,%s): unknown user", strings.ToLower(mech), logUser(user), rip)
		return "", sasl.SCRAMCredentials{}, c.failed(ctx, rip, user, sasl.ErrAuthFailed)
	}
	if err := checkAllowNets(fields, rip); err != nil {
		c.verbose("%s(%s,%s): %v", strings.ToLower(mech), logUser(user), rip, err)
		return "", sasl.SCRAMCredentials{}, c.failed(ctx, rip, user, &LoginRefusedError{Reason: "allow_nets check failed"})
	}
	if fields.Has("nologin") {
		reason := fields.Value("reason")
		c.verbose("%s(%s,%s): login refused by nologin (reason: %q)", strings.ToLower(mech), logUser(user), rip, reason)
		return "", sasl.SCRAMCredentials{}, c.failed(ctx, rip, user, &LoginRefusedError{Reason: reason})
	}
	creds, err := scramCredentials(mech, stored, scheme)
	if err != nil {
		// A scheme that cannot serve SCRAM is configuration, not an
		// attack: logged with auth_verbose as Dovecot does; a broken
		// stored value is an error.
		if errors.Is(err, errSchemeNotAvailable) {
			c.verbose("%s(%s,%s): %v", strings.ToLower(mech), logUser(user), rip, err)
		} else {
			c.log("Error: %s(%s,%s): %v", strings.ToLower(mech), logUser(user), rip, err)
		}
		return "", sasl.SCRAMCredentials{}, c.failed(ctx, rip, user, sasl.ErrAuthFailed)
	}
	return canonical, creds, nil
}

// FinishSCRAM implements sasl.CredentialsLookup: a wrong proof is a failed
// login for the client's address and the name it logged in with.
func (c *Checker) FinishSCRAM(ctx context.Context, sreq sasl.Request, user string, ok bool) error {
	rip, _ := addrParts(sreq.Remote)
	name, err := c.normalizeUser(sreq.User)
	if err != nil {
		name = ""
	}
	if ok {
		if name != "" {
			c.fails.clear("user:" + name)
		}
		return nil
	}
	c.verbose("%s(%s,%s): Password mismatch", "scram", logUser(name), rip)
	return c.failed(ctx, rip, name, sasl.ErrAuthFailed)
}

// scramCredentials turns a stored password into mech's credentials.
func scramCredentials(mech, stored, defaultScheme string) (sasl.SCRAMCredentials, error) {
	name, data := SplitScheme(stored)
	if name == "" {
		name = defaultScheme
	}
	if name == "" {
		name = "CRYPT"
	}
	s, enc, explicit, err := lookupScheme(name)
	if err != nil {
		return sasl.SCRAMCredentials{}, err
	}
	switch s.name {
	case mech:
		p, err := ParseSCRAM(mech, data)
		if err != nil {
			return sasl.SCRAMCredentials{}, err
		}
		return sasl.SCRAMCredentials{Iterations: p.Iterations, Salt: p.Salt, StoredKey: p.StoredKey, ServerKey: p.ServerKey}, nil
	case "PLAIN", "CLEAR", "CLEARTEXT":
		plain, err := decodePassword(s, enc, explicit, data)
		if err != nil {
			return sasl.SCRAMCredentials{}, err
		}
		// As Dovecot, the stored password is used as is (no SASLprep).
		return sasl.SCRAMKeys(mech, string(plain), randomBytes(scramSaltLen), scramDefaultIter)
	}
	return sasl.SCRAMCredentials{}, fmt.Errorf("%w: requested %s scheme, but we have only %s", errSchemeNotAvailable, mech, strings.ToUpper(name))
}
