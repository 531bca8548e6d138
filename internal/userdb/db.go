package userdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"postcote/internal/maillog"
)

// Request is one passdb or userdb lookup.
type Request struct {
	User       string // the user name the databases are asked about (after auth_username_format)
	OrigUser   string // the name as the client sent it
	Service    string // "imap", "pop3", "smtp", "lmtp", "sieve", "doveadm"
	RemoteIP   string // "" when not on a network connection
	LocalIP    string
	RemotePort string
	LocalPort  string
	Secured    bool   // TLS or a local connection
	Home       string // home known so far (from default_fields), for %h
}

// Vars returns the %variables of the request.
func (r Request) Vars() Vars {
	return Vars{
		User: r.User, OrigUser: r.OrigUser, Service: r.Service,
		RemoteIP: r.RemoteIP, LocalIP: r.LocalIP,
		RemotePort: r.RemotePort, LocalPort: r.LocalPort, Home: r.Home,
		Secured: r.Secured,
	}
}

// PassStatus is the outcome of a passdb verification.
type PassStatus int

// Outcomes of PassDB.Verify. A back end that cannot answer returns an
// error instead.
const (
	PassOK          PassStatus = iota // password matched (or nopassword)
	PassMismatch                      // user known, password wrong
	PassUnknownUser                   // no such user in this passdb
)

func (s PassStatus) String() string {
	switch s {
	case PassOK:
		return "ok"
	case PassMismatch:
		return "password mismatch"
	case PassUnknownUser:
		return "unknown user"
	}
	return fmt.Sprintf("PassStatus(%d)", int(s))
}

// PassResult is what a passdb says about a user.
type PassResult struct {
	Status PassStatus
	// Fields are the passdb extra fields, expanded: "user" (canonical
	// name), "nologin", "reason", "allow_nets", "nopassword", ...
	Fields Fields
	// UserdbFields are the "userdb_" fields with the prefix removed, for
	// a prefetch userdb.
	UserdbFields Fields
	// Reason says why the result is not PassOK, for the log. It never
	// holds a password.
	Reason string
}

// PassDB verifies passwords. Drivers: passwd-file, static (later: ldap,
// sql, passwd, pam).
type PassDB interface {
	// Verify checks password for req.User. A wrong password is
	// PassMismatch, an unknown user PassUnknownUser; an error means the
	// back end could not answer (it is never used for a wrong password).
	Verify(ctx context.Context, req Request, password string) (PassResult, error)
}

// CredentialsDB is implemented by passdbs that can return the stored
// password instead of verifying one (needed by SCRAM and by doveadm auth
// lookup). stored is "{SCHEME}data" or data in scheme.
type CredentialsDB interface {
	LookupCredentials(ctx context.Context, req Request) (stored, scheme string, res PassResult, err error)
}

// UserDB looks users up for mail delivery and mailbox access.
type UserDB interface {
	// Lookup returns the user's fields (uid, gid, home, mail, quota_rule,
	// ...), already expanded. found is false for an unknown user; an
	// error means the back end could not answer.
	Lookup(ctx context.Context, req Request) (fields Fields, found bool, err error)
	// Iterate calls fn with every user name the database holds
	// (doveadm user '*'). It returns ErrIterateUnsupported when the
	// driver cannot list users.
	Iterate(ctx context.Context, fn func(user string) error) error
}

// ErrIterateUnsupported is returned by UserDB.Iterate for drivers that
// cannot list their users (static, path templates with variables).
var ErrIterateUnsupported = errors.New("user iteration not supported")

// ErrNotSupported is returned for drivers postcote does not provide yet.
var ErrNotSupported = errors.New("not yet supported by postcote")

// Options are the settings drivers share.
type Options struct {
	// Log receives error lines ("auth" program); nil discards.
	Log *maillog.Logger
	// Verbose is auth_verbose: also log info lines (missing per-domain
	// passwd-file, ...).
	Verbose bool
	// DefaultPassScheme is the global default_pass_scheme; a driver's own
	// scheme= wins. "" means CRYPT.
	DefaultPassScheme string
	// Limits caps the cost of stored hashes; the zero value means
	// DefaultLimits().
	Limits Limits
	// IDs resolves uid/gid names; nil means /etc/passwd and /etc/group.
	IDs IDResolver
}

func (o Options) limits() Limits {
	if o.Limits == (Limits{}) {
		return DefaultLimits()
	}
	return o.Limits
}

func (o Options) ids() IDResolver {
	if o.IDs == nil {
		return NewSystemIDs("", "")
	}
	return o.IDs
}

func (o Options) logf(format string, args ...any) {
	o.Log.Printf("auth", format, args...)
}

func (o Options) verbosef(format string, args ...any) {
	if o.Verbose {
		o.logf(format, args...)
	}
}

// NewPassDB builds a passdb from a "passdb { driver = ... args = ... }"
// section.
func NewPassDB(driver, args string, opts Options) (PassDB, error) {
	switch strings.ToLower(driver) {
	case "passwd-file":
		return newPasswdFilePassDB(args, opts)
	case "static":
		return newStaticPassDB(args, opts)
	case "ldap":
		return newLDAPPassDB(args, opts)
	case "sql":
		return newSQLPassDB(args, opts)
	case "passwd":
		return newPasswdPassDB(args, opts)
	case "shadow":
		return newShadowPassDB(args, opts)
	case "pam":
		return newPAMPassDB(args, opts)
	case "checkpassword", "bsdauth", "imap", "oauth2", "lua", "dict":
		return nil, fmt.Errorf("passdb driver %q: %w", driver, ErrNotSupported)
	case "":
		return nil, errors.New("passdb: driver not set")
	}
	return nil, fmt.Errorf("passdb: unknown driver %q", driver)
}

// NewUserDB builds a userdb from a "userdb { driver = ... args = ...
// default_fields = ... override_fields = ... }" section. default_fields
// are set before the driver's own fields, override_fields after, each
// expanded per lookup.
func NewUserDB(driver, args, defaultFields, overrideFields string, opts Options) (UserDB, error) {
	var db UserDB
	var err error
	switch strings.ToLower(driver) {
	case "passwd-file":
		db, err = newPasswdFileUserDB(args, opts)
	case "static":
		db, err = newStaticUserDB(args, opts)
	case "ldap":
		db, err = newLDAPUserDB(args, opts)
	case "sql":
		db, err = newSQLUserDB(args, opts)
	case "passwd":
		db, err = newPasswdUserDB(args, opts)
	case "prefetch", "checkpassword", "nss", "lua", "dict":
		return nil, fmt.Errorf("userdb driver %q: %w", driver, ErrNotSupported)
	case "":
		return nil, errors.New("userdb: driver not set")
	default:
		return nil, fmt.Errorf("userdb: unknown driver %q", driver)
	}
	if err != nil {
		return nil, err
	}
	def, over := ParseTemplate(defaultFields), ParseTemplate(overrideFields)
	if err := def.check("default_fields"); err != nil {
		return nil, fmt.Errorf("userdb %s: %w", driver, err)
	}
	if err := over.check("override_fields"); err != nil {
		return nil, fmt.Errorf("userdb %s: %w", driver, err)
	}
	if def.Empty() && over.Empty() {
		return db, nil
	}
	return &templateUserDB{inner: db, defaults: def, overrides: over}, nil
}

// templateUserDB applies default_fields and override_fields around a
// driver, as Dovecot's userdb_template does.
type templateUserDB struct {
	inner               UserDB
	defaults, overrides Template
}

func (t *templateUserDB) Lookup(ctx context.Context, req Request) (Fields, bool, error) {
	var out Fields
	t.defaults.ApplyTo(&out, req.Vars())
	if h, ok := out.Get("home"); ok && req.Home == "" {
		req.Home = h
	}
	got, found, err := t.inner.Lookup(ctx, req)
	if err != nil || !found {
		return nil, found, err
	}
	for _, kv := range got {
		out.Set(kv.Key, kv.Value)
	}
	vars := req.Vars()
	vars.Home = out.Value("home")
	t.overrides.ApplyTo(&out, vars)
	return out, true, nil
}

// DriverName implements Named.
func (t *templateUserDB) DriverName() string { return dbName(t.inner, "userdb", 0) }

func (t *templateUserDB) Iterate(ctx context.Context, fn func(string) error) error {
	return t.inner.Iterate(ctx, fn)
}

// checkTemplate reports an unknown %variable in a setting's value, so
// that a typo fails at start-up instead of at every lookup.
func checkTemplate(setting, value string) error {
	if _, err := ExpandCheck(value, Vars{}); err != nil {
		return fmt.Errorf("%s: %w", setting, err)
	}
	return nil
}

// Close releases the wrapped userdb's connections, when it holds any.
func (t *templateUserDB) Close() error {
	switch c := t.inner.(type) {
	case interface{ Close() error }:
		return c.Close()
	case interface{ Close() }:
		c.Close()
	}
	return nil
}
