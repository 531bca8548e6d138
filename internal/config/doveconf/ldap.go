package doveconf

import (
	"fmt"
	"strings"

	"postcote/internal/config"
)

// LDAPConf is a dovecot-ldap.conf.ext file: how the ldap passdb and
// userdb reach the directory and what they ask it. Defaults are
// Dovecot 2.3's.
type LDAPConf struct {
	Path string

	URIs  []string // uris: ldap://host, ldaps://host, ldapi://...
	Hosts []string // hosts: host[:port] (used when uris is empty)

	DN     string // dn: bind DN for searches; "" binds anonymously
	DNPass string // dnpass

	SASLBind    bool
	SASLMech    string
	SASLRealm   string
	SASLAuthzID string

	TLS            bool   // tls: StartTLS
	TLSCACertFile  string // tls_ca_cert_file
	TLSCACertDir   string // tls_ca_cert_dir
	TLSCertFile    string // tls_cert_file
	TLSKeyFile     string // tls_key_file
	TLSCipherSuite string // tls_cipher_suite
	// TLSRequireCert is never, allow, try, demand or hard ("" when
	// unset: the LDAP library's default, demand).
	TLSRequireCert string

	AuthBind       bool   // auth_bind: check passwords by binding as the user
	AuthBindUserDN string // auth_bind_userdn: DN template, e.g. uid=%n,ou=people,...

	Base  string // base: search base
	Scope string // scope: base, onelevel or subtree
	Deref string // deref: never, searching, finding or always

	UserAttrs     string // user_attrs: ldapAttr=userdbField,...
	UserFilter    string
	PassAttrs     string
	PassFilter    string
	IterateAttrs  string
	IterateFilter string

	DefaultPassScheme string
	LDAPVersion       int // ldap_version: 2 or 3
	DebugLevel        int // debug_level: OpenLDAP debug level (-1 = all)
	Blocking          bool

	values *extValues
}

var ldapKeys = keySet("uris", "hosts", "dn", "dnpass", "sasl_bind", "sasl_mech", "sasl_realm",
	"sasl_authz_id", "tls", "tls_ca_cert_file", "tls_ca_cert_dir", "tls_cert_file", "tls_key_file",
	"tls_cipher_suite", "tls_require_cert", "auth_bind", "auth_bind_userdn", "base", "scope",
	"deref", "user_attrs", "user_filter", "pass_attrs", "pass_filter", "iterate_attrs",
	"iterate_filter", "default_pass_scheme", "ldap_version", "debug_level", "ldaprc_path",
	"blocking", "user_global_uid", "user_global_gid")

// Pos returns where key was set, or the file's position when unset.
func (l *LDAPConf) Pos(key string) config.Pos { return l.values.pos(key) }

// ParseLDAPFile reads a dovecot-ldap.conf.ext file. Options: WithRoot.
func ParseLDAPFile(path string, opts ...Option) (*LDAPConf, error) {
	data, err := readExt(path, opts)
	if err != nil {
		return nil, err
	}
	return ParseLDAP(path, data)
}

// ParseLDAP parses dovecot-ldap.conf.ext text; name is used in errors.
// Unknown keys are errors, as in Dovecot; so are bad booleans,
// numbers and enumerations, a missing uris/hosts, and unbalanced
// parentheses in filters.
func ParseLDAP(name string, data []byte) (*LDAPConf, error) {
	ev, err := parseExt(name, data, ldapKeys)
	if err != nil {
		return nil, err
	}
	l := &LDAPConf{
		Path:              name,
		URIs:              strings.Fields(ev.str("uris", "")),
		Hosts:             strings.Fields(ev.str("hosts", "")),
		DN:                ev.str("dn", ""),
		DNPass:            ev.str("dnpass", ""),
		SASLMech:          ev.str("sasl_mech", ""),
		SASLRealm:         ev.str("sasl_realm", ""),
		SASLAuthzID:       ev.str("sasl_authz_id", ""),
		TLSCACertFile:     ev.str("tls_ca_cert_file", ""),
		TLSCACertDir:      ev.str("tls_ca_cert_dir", ""),
		TLSCertFile:       ev.str("tls_cert_file", ""),
		TLSKeyFile:        ev.str("tls_key_file", ""),
		TLSCipherSuite:    ev.str("tls_cipher_suite", ""),
		AuthBindUserDN:    ev.str("auth_bind_userdn", ""),
		Base:              ev.str("base", ""),
		UserAttrs:         ev.str("user_attrs", "homeDirectory=home,uidNumber=uid,gidNumber=gid"),
		UserFilter:        ev.str("user_filter", "(&(objectClass=posixAccount)(uid=%u))"),
		PassAttrs:         ev.str("pass_attrs", "uid=user,userPassword=password"),
		PassFilter:        ev.str("pass_filter", "(&(objectClass=posixAccount)(uid=%u))"),
		IterateAttrs:      ev.str("iterate_attrs", "uid=user"),
		IterateFilter:     ev.str("iterate_filter", "(objectClass=posixAccount)"),
		DefaultPassScheme: ev.str("default_pass_scheme", "crypt"),
		values:            ev,
	}
	var errs []error
	pick := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	var e error
	l.SASLBind, e = ev.bool("sasl_bind", false)
	pick(e)
	l.TLS, e = ev.bool("tls", false)
	pick(e)
	l.AuthBind, e = ev.bool("auth_bind", false)
	pick(e)
	l.Blocking, e = ev.bool("blocking", false)
	pick(e)
	l.TLSRequireCert, e = ev.enum("tls_require_cert", "", "never", "allow", "try", "demand", "hard")
	pick(e)
	l.Scope, e = ev.enum("scope", "subtree", "base", "onelevel", "subtree")
	pick(e)
	l.Deref, e = ev.enum("deref", "never", "never", "searching", "finding", "always")
	pick(e)
	l.LDAPVersion, e = ev.int("ldap_version", 3)
	pick(e)
	if e == nil && l.LDAPVersion != 2 && l.LDAPVersion != 3 {
		pick(config.Errorf(ev.pos("ldap_version"), "ldap_version", "bad value %d: use 2 or 3", l.LDAPVersion))
	}
	l.DebugLevel, e = ev.int("debug_level", 0)
	pick(e)
	if len(l.URIs) == 0 && len(l.Hosts) == 0 {
		pick(config.Errorf(config.Pos{File: name}, "uris", "neither uris nor hosts is set; add uris = ldap://server"))
	}
	for _, u := range l.URIs {
		if !strings.HasPrefix(u, "ldap://") && !strings.HasPrefix(u, "ldaps://") && !strings.HasPrefix(u, "ldapi://") {
			pick(config.Errorf(ev.pos("uris"), "uris", "bad URI %q: use ldap://host, ldaps://host or ldapi://path", truncate(u)))
		}
	}
	for _, k := range []string{"user_filter", "pass_filter", "iterate_filter"} {
		if bad := checkFilter(ev.str(k, "")); bad != "" {
			pick(config.Errorf(ev.pos(k), k, "%s", bad))
		}
	}
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return l, nil
}

// checkFilter finds unbalanced parentheses in an LDAP filter template
// (RFC 4515 3: a filter is enclosed in parentheses).
func checkFilter(f string) string {
	if f == "" {
		return ""
	}
	depth := 0
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return fmt.Sprintf("unbalanced ')' in filter %q", truncate(f))
			}
		}
	}
	if depth != 0 {
		return fmt.Sprintf("unbalanced '(' in filter %q", truncate(f))
	}
	return ""
}
