// Package ldapx is postcote's LDAP plumbing, shared by the ldap passdb and
// userdb (internal/userdb) and the MTA's ldap: lookup tables: a pool of
// connections to one directory, the TLS rules of OpenLDAP's client
// library, searches and binds with deadlines, the escaping that keeps
// user input out of filters and DNs, and errors that say whether the
// directory is down or merely has no such entry.
//
// The wire protocol is github.com/go-ldap/ldap/v3 (LDAPv3, RFC 4511),
// kept behind this package so callers never see its types.
//
// # Connections
//
// A Pool holds up to Config.MaxConns connections. Each is dialled from
// Config.URIs in order (ldap://, ldaps://, ldapi://), the first that
// connects wins; with Config.StartTLS an ldap:// connection is upgraded
// with the StartTLS extended operation (RFC 4511 4.14, RFC 4513 3) before
// anything else is sent, and a failed upgrade fails that URI instead of
// going on in clear text. A connection is bound as Config.BindDN for
// searches (anonymously when it is empty). Authenticate binds a
// connection as a user to check a password (RFC 4513 5.1.3). Idle
// connections are reused, user binds and service searches each on
// connections already in their state while the pool has room (a
// connection used for a user bind is bound back to the service DN before
// it serves a search again when it must be shared); one that fails on the network is
// dropped, and an operation that failed on a reused connection is tried
// once more on a fresh one, so a directory that was restarted is used
// again at once.
//
// # Certificates
//
// Config.TLS.RequireCert follows OpenLDAP's TLS_REQCERT (ldap.conf(5)):
// never and allow do not check the server's certificate, try checks it
// when one is sent, demand and hard (the default) require a certificate
// that chains to the CA file or directory (or the system roots when
// neither is set) and names the host of the URI.
//
// # Errors
//
// Every failure is an *Error. errors.Is(err, ErrUnavailable) is true when
// the directory could not answer (no server reachable, TLS refused,
// timeout, busy, unavailable): the caller should report a temporary
// failure and try again later. ErrNoSuchObject and ErrInvalidCredentials
// are the directory's definite answers. Passwords never appear in errors
// or debug lines.
//
// # Escaping
//
// EscapeFilter quotes a value for an assertion in a search filter
// (RFC 4515 3) and EscapeDN quotes a value for an attribute value in a
// distinguished name (RFC 4514 2.4), so that "*", ")(uid=*", "\" or a NUL
// in a user name match only that literal name.
package ldapx
