package userdb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"postcote/internal/config/doveconf"
	"postcote/internal/ldapx"
)

// The ldap driver
// (https://doc.dovecot.org/2.3/configuration_manual/authentication/ldap/),
// configured as Dovecot 2.3 configures it:
//
//	passdb { driver = ldap  args = /etc/dovecot/dovecot-ldap.conf.ext }
//	userdb { driver = ldap  args = /etc/dovecot/dovecot-ldap.conf.ext }
//
// The file (doveconf.ParseLDAPFile) names the servers (uris, or hosts),
// the service identity (dn, dnpass; anonymous without dn), TLS (tls =
// yes for StartTLS, ldaps:// URIs, tls_ca_cert_file, tls_ca_cert_dir,
// tls_cert_file, tls_key_file, tls_require_cert), and the searches
// (base, scope, deref, pass_filter/pass_attrs, user_filter/user_attrs,
// iterate_filter/iterate_attrs). The passdb checks a password in one of
// three ways, as Dovecot does:
//
//   - auth_bind = yes with auth_bind_userdn (guides 000, 001): the DN is
//     the template expanded with the user's name, each value RFC 4514
//     escaped; the password is checked by binding as that DN; no search.
//   - auth_bind = yes without auth_bind_userdn: pass_filter is searched
//     as dn/dnpass; exactly one entry must match (none: unknown user;
//     more: an error, the login fails); the password is checked by
//     binding as that entry's DN; pass_attrs give the extra fields.
//   - auth_bind = no: pass_filter is searched, the field mapped to
//     "password" by pass_attrs (userPassword=password) is the stored
//     hash, verified with the password schemes (default_pass_scheme of
//     the file, CRYPT by default).
//
// Filters are expanded with %u %n %d and the other variables, each value
// RFC 4515 escaped, so "*", "(", ")", "\" and NUL in a user name match
// only themselves. An empty password is refused before any bind: a
// simple bind with an empty password is an anonymous bind that servers
// accept (RFC 4513 5.1.2). A directory that does not answer is an error
// (the Checker turns it into a temporary failure), never a wrong
// password; connections are pooled and re-opened after a failure
// (internal/ldapx). dnpass is never logged, at any debug level.
//
// Not provided: sasl_bind (SASL binds to the directory: refused at
// start-up), and LDAPv2 (ldap_version = 2 is accepted with a warning and
// LDAPv3 is spoken, as every current server does). tls_cipher_suite is
// an OpenSSL/GnuTLS cipher string; Go's TLS picks its own suites and the
// setting is ignored with a warning.

// ldapDB is the state a passdb or userdb ldap shares: the file's
// settings and a connection pool.
type ldapDB struct {
	kind  string // "passdb" or "userdb"
	conf  *doveconf.LDAPConf
	pool  *ldapx.Pool
	scope ldapx.Scope
	opts  Options
	// debug is debug_level != 0: LDAP operations are logged even
	// without auth_debug.
	debug bool
}

// ldapTimeout bounds one LDAP operation when the caller's context has
// no sooner deadline.
const ldapTimeout = 10 * time.Second

func newLDAPDB(kind, args string, opts Options) (*ldapDB, error) {
	path := strings.TrimSpace(args)
	if path == "" {
		return nil, fmt.Errorf("%s ldap: args must be the path of dovecot-ldap.conf.ext", kind)
	}
	conf, err := doveconf.ParseLDAPFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s ldap: %w", kind, err)
	}
	db := &ldapDB{kind: kind, conf: conf, opts: opts, debug: conf.DebugLevel != 0}
	if strings.TrimSpace(conf.Base) == "" && !(kind == "passdb" && conf.AuthBind && conf.AuthBindUserDN != "") {
		// As Dovecot: every search needs a base ("No base given").
		return nil, fmt.Errorf("%s ldap %s: base is not set", kind, path)
	}
	if conf.SASLBind {
		return nil, fmt.Errorf("%s ldap %s: sasl_bind = yes: %w (use simple binds with dn/dnpass)", kind, path, ErrNotSupported)
	}
	if conf.LDAPVersion == 2 {
		opts.logf("Warning: %s ldap %s: ldap_version = 2 ignored: LDAPv2 is historic (RFC 3494); speaking LDAPv3", kind, path)
	}
	if conf.TLSCipherSuite != "" {
		opts.logf("Warning: %s ldap %s: tls_cipher_suite ignored: postcote uses Go's TLS cipher suites", kind, path)
	}
	if db.scope, err = ldapx.ParseScope(conf.Scope); err != nil {
		return nil, fmt.Errorf("%s ldap %s: %w", kind, path, err)
	}
	deref, err := ldapx.ParseDeref(conf.Deref)
	if err != nil {
		return nil, fmt.Errorf("%s ldap %s: %w", kind, path, err)
	}
	require, err := ldapx.ParseTLSRequireCert(conf.TLSRequireCert)
	if err != nil {
		return nil, fmt.Errorf("%s ldap %s: %w", kind, path, err)
	}
	uris := conf.URIs
	if len(uris) == 0 {
		uris = conf.Hosts // host[:port]; ParseURI makes ldap://host[:port]
	}
	for _, t := range []struct{ name, value string }{
		{"base", conf.Base}, {"pass_filter", conf.PassFilter}, {"user_filter", conf.UserFilter},
		{"iterate_filter", conf.IterateFilter}, {"auth_bind_userdn", conf.AuthBindUserDN},
	} {
		if err := checkTemplate(kind+" ldap "+t.name, t.value); err != nil {
			return nil, err
		}
	}
	cfg := ldapx.Config{
		URIs:     uris,
		StartTLS: conf.TLS,
		TLS: ldapx.TLSOptions{
			CACertFile: conf.TLSCACertFile, CACertDir: conf.TLSCACertDir,
			CertFile: conf.TLSCertFile, KeyFile: conf.TLSKeyFile,
			RequireCert: require,
		},
		BindDN: conf.DN, BindPassword: conf.DNPass,
		Timeout: ldapTimeout,
		Deref:   deref,
		Debugf:  db.debugf,
	}
	if db.pool, err = ldapx.NewPool(cfg); err != nil {
		return nil, fmt.Errorf("%s ldap %s: %w", kind, path, err)
	}
	return db, nil
}

// debugf logs an LDAP operation: always with debug_level set in the
// file, otherwise only with auth_debug. Callers never pass dnpass or a
// user's password.
func (db *ldapDB) debugf(format string, args ...any) {
	if db.debug {
		db.opts.Log.Printf("auth", "debug: "+format, args...)
		return
	}
	db.opts.Log.Debugf("auth", format, args...)
}

// Close closes the connections.
func (db *ldapDB) Close() error { return db.pool.Close() }

// nameUsable reports whether the user name may be sent to the
// directory. A NUL is escaped properly (RFC 4515 "\00", RFC 4514
// "\00") but slapd compares some syntaxes (IA5String, such as mail) as C
// strings, so "han@company.com\x00" would match han's entry: a name with
// a NUL is nobody.
func nameUsable(req Request) bool {
	return !strings.ContainsRune(req.User, 0) && !strings.ContainsRune(req.OrigUser, 0)
}

// filterVars are the request's variables with every value RFC 4515
// escaped, for filters.
func filterVars(req Request) Vars {
	v := req.Vars()
	v.Escape = ldapx.EscapeFilter
	return v
}

// dnVars are the request's variables with every value RFC 4514 escaped,
// for DNs (auth_bind_userdn, base).
func dnVars(req Request) Vars {
	v := req.Vars()
	v.Escape = ldapx.EscapeDN
	return v
}

// findOne searches filter under base for the request's user and
// returns the only entry, nil when there is none, and an error when
// there are several (a filter that is not unique must not pick one at
// random) or the directory could not answer. A base that does not exist
// (base = ou=%d,... for an unknown domain) means an unknown user.
func (db *ldapDB) findOne(ctx context.Context, req Request, setting, filter string, attrs []string) (*ldapx.Entry, error) {
	if !nameUsable(req) {
		db.opts.verbosef("ldap(%s,%s): NUL in user name", logUser(req.User), req.RemoteIP)
		return nil, nil
	}
	base := Expand(db.conf.Base, dnVars(req))
	f := Expand(filter, filterVars(req))
	es, err := db.pool.Search(ctx, ldapx.SearchRequest{
		Base: base, Scope: db.scope, Filter: f, Attributes: attrs, SizeLimit: 2,
	})
	if errors.Is(err, ldapx.ErrNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch len(es) {
	case 0:
		return nil, nil
	case 1:
		return es[0], nil
	}
	return nil, fmt.Errorf("%s %s under %q matched multiple objects, aborting", setting, f, base)
}

// warnf logs notes about entries (multi-valued attributes) with
// auth_verbose.
func (db *ldapDB) warnf(req Request) func(string, ...any) {
	return func(format string, args ...any) {
		db.opts.verbosef("ldap(%s,%s): "+format, append([]any{logUser(req.User), req.RemoteIP}, args...)...)
	}
}

// ldapPassDB is the passdb side. With auth_bind it does not implement
// CredentialsDB: the password is never read from the directory.
type ldapPassDB struct {
	db        *ldapDB
	passAttrs attrMap
	scheme    string
	limits    Limits
}

// ldapBindPassDB is the passdb for auth_bind = yes. It wraps (not
// embeds) the search side so that it does not offer LookupCredentials.
type ldapBindPassDB struct{ p *ldapPassDB }

// DriverName implements Named.
func (b *ldapBindPassDB) DriverName() string { return "ldap" }

// Close closes the connections.
func (b *ldapBindPassDB) Close() error { return b.p.Close() }

// newLDAPPassDB returns a *ldapPassDB, or a *ldapBindPassDB with
// auth_bind.
func newLDAPPassDB(args string, opts Options) (PassDB, error) {
	db, err := newLDAPDB("passdb", args, opts)
	if err != nil {
		return nil, err
	}
	pa, err := parseAttrMap("pass_attrs", db.conf.PassAttrs)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("passdb ldap %s: %w", db.conf.Path, err)
	}
	scheme := db.conf.DefaultPassScheme
	if scheme == "" {
		scheme = opts.DefaultPassScheme
	}
	if scheme == "" {
		scheme = "CRYPT"
	}
	if _, _, _, err := lookupScheme(scheme); err != nil {
		db.Close()
		return nil, fmt.Errorf("passdb ldap %s: default_pass_scheme: %w", db.conf.Path, err)
	}
	p := &ldapPassDB{db: db, passAttrs: pa, scheme: scheme, limits: opts.limits()}
	if db.conf.AuthBind {
		return &ldapBindPassDB{p}, nil
	}
	return p, nil
}

// DriverName implements Named.
func (p *ldapPassDB) DriverName() string { return "ldap" }

// Close closes the connections.
func (p *ldapPassDB) Close() error { return p.db.Close() }

// lookup finds the user's entry with pass_filter and maps pass_attrs.
// stored is the "password" field ("" when absent).
func (p *ldapPassDB) lookup(ctx context.Context, req Request) (e *ldapx.Entry, stored string, res PassResult, err error) {
	e, err = p.db.findOne(ctx, req, "pass_filter", p.db.conf.PassFilter, p.passAttrs.attributes())
	if err != nil {
		return nil, "", PassResult{}, fmt.Errorf("passdb ldap: %w", err)
	}
	if e == nil {
		return nil, "", PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	}
	res.Status = PassOK
	for _, kv := range p.passAttrs.fieldsFrom(e, req.Vars(), p.db.warnf(req)) {
		switch {
		case kv.Key == "password":
			stored = kv.Value
		case kv.Key == "password_noscheme":
			// A stored password that may start with "{" without it
			// being a scheme prefix.
			stored = "{" + p.scheme + "}" + kv.Value
		case strings.HasPrefix(kv.Key, "userdb_"):
			if k := strings.TrimPrefix(kv.Key, "userdb_"); k != "" {
				res.UserdbFields.Set(k, kv.Value)
			}
		default:
			res.Fields.Set(kv.Key, kv.Value)
		}
	}
	return e, stored, res, nil
}

// LookupCredentials implements CredentialsDB (auth_bind = no only).
func (p *ldapPassDB) LookupCredentials(ctx context.Context, req Request) (string, string, PassResult, error) {
	_, stored, res, err := p.lookup(ctx, req)
	return stored, p.scheme, res, err
}

// Verify checks the password stored in the directory.
func (p *ldapPassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	_, stored, res, err := p.lookup(ctx, req)
	if err != nil || res.Status != PassOK {
		return res, err
	}
	if stored == "" && !res.Fields.Has("nopassword") {
		p.db.opts.verbosef("ldap(%s,%s): no password returned (and no nopassword): check pass_attrs and the ACL on userPassword", logUser(req.User), req.RemoteIP)
		res.Status, res.Reason = PassMismatch, "no password in the directory"
		return res, nil
	}
	return verifyStored(p.db.opts, p.limits, "ldap", req, password, stored, p.scheme, res), nil
}

// Verify checks the password by binding as the user.
func (b *ldapBindPassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	p := b.p
	if password == "" {
		// RFC 4513 5.1.2: an empty password would bind anonymously,
		// and succeed.
		p.db.opts.verbosef("ldap(%s,%s): empty password", logUser(req.User), req.RemoteIP)
		return PassResult{Status: PassMismatch, Reason: "empty password"}, nil
	}
	if !nameUsable(req) {
		p.db.opts.verbosef("ldap(%s,%s): NUL in user name", logUser(req.User), req.RemoteIP)
		return PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	}
	var res PassResult
	var dn string
	if tmpl := p.db.conf.AuthBindUserDN; tmpl != "" {
		dn = Expand(tmpl, dnVars(req))
	} else {
		e, _, r, err := p.lookup(ctx, req)
		if err != nil || r.Status != PassOK {
			return r, err
		}
		dn, res = e.DN, r
	}
	err := p.db.pool.Authenticate(ctx, dn, password)
	switch {
	case err == nil:
		res.Status = PassOK
		return res, nil
	case errors.Is(err, ldapx.ErrInvalidCredentials):
		return PassResult{Status: PassMismatch, Reason: "invalid credentials"}, nil
	case errors.Is(err, ldapx.ErrNoSuchObject):
		return PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	}
	return PassResult{}, fmt.Errorf("passdb ldap: %w", err)
}
