package ldapx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Config says how a Pool reaches and binds to a directory.
type Config struct {
	// URIs are tried in order for every new connection: ldap://host[:port],
	// ldaps://host[:port], ldapi://%2Fpath%2Fto%2Fsocket.
	URIs []string
	// StartTLS upgrades ldap:// connections with StartTLS (Dovecot's
	// tls = yes, Postfix's start_tls = yes). ldaps:// connections are TLS
	// from the start and ldapi:// ones are local, so neither is upgraded.
	StartTLS bool
	TLS      TLSOptions

	// BindDN and BindPassword are the identity searches run as; an empty
	// BindDN means anonymous searches. An empty BindPassword with a
	// BindDN is refused by NewPool: it would be an unauthenticated bind
	// (RFC 4513 5.1.2), not the identity asked for.
	BindDN, BindPassword string

	// DialTimeout bounds connecting, the TLS handshake and the first bind
	// (default 5 s); Timeout bounds each operation (default 10 s). A
	// context deadline that comes sooner wins.
	DialTimeout time.Duration
	Timeout     time.Duration
	// MaxConns is the most connections open at once (default 16);
	// callers beyond it wait for a free one or their context.
	MaxConns int
	// IdleTimeout closes connections unused for that long before reuse
	// (default 60 s), since firewalls and servers drop idle sessions.
	IdleTimeout time.Duration

	// Deref is the alias dereferencing of searches (default never).
	Deref Deref

	// Debugf, when set, receives one line per connection, bind and
	// search (never a password).
	Debugf func(format string, args ...any)
}

// TLSOptions are the certificate settings of ldap.conf(5) and of
// Dovecot's and Postfix's LDAP files.
type TLSOptions struct {
	CACertFile string // PEM file of trusted CAs (tls_ca_cert_file)
	CACertDir  string // directory of PEM CA files (tls_ca_cert_dir)
	CertFile   string // client certificate for TLS client auth (tls_cert_file)
	KeyFile    string // its key (tls_key_file)
	// RequireCert is how strictly the server's certificate is checked;
	// the zero value is TLSDemand, OpenLDAP's default.
	RequireCert TLSRequireCert
}

// TLSRequireCert is OpenLDAP's TLS_REQCERT level (ldap.conf(5)).
type TLSRequireCert int

// The levels. The zero value is the strict default.
const (
	// TLSDemand: a certificate must be sent and must be valid for the
	// host, or the session ends.
	TLSDemand TLSRequireCert = iota
	// TLSNever: the server's certificate is not asked for or checked.
	TLSNever
	// TLSAllow: a missing or bad certificate is ignored.
	TLSAllow
	// TLSTry: no certificate is fine; a bad one ends the session.
	TLSTry
	// TLSHard is a synonym of TLSDemand.
	TLSHard
)

func (r TLSRequireCert) String() string {
	switch r {
	case TLSNever:
		return "never"
	case TLSAllow:
		return "allow"
	case TLSTry:
		return "try"
	case TLSHard:
		return "hard"
	}
	return "demand"
}

// ParseTLSRequireCert reads a tls_require_cert value: OpenLDAP's never,
// allow, try, demand, hard; and Postfix's boolean form, where yes means
// demand and no means never (postfix ldap_table(5)). "" is demand.
func ParseTLSRequireCert(s string) (TLSRequireCert, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "demand":
		return TLSDemand, nil
	case "hard":
		return TLSHard, nil
	case "never":
		return TLSNever, nil
	case "allow":
		return TLSAllow, nil
	case "try":
		return TLSTry, nil
	case "yes", "true", "on", "1":
		return TLSDemand, nil
	case "no", "false", "off", "0":
		return TLSNever, nil
	}
	return TLSDemand, fmt.Errorf("tls_require_cert %q: use never, allow, try, demand or hard", s)
}

// Scope is a search scope (RFC 4511 4.5.1.2).
type Scope int

// Scopes.
const (
	ScopeSubtree  Scope = iota // the base and everything below it
	ScopeBase                  // the base entry only
	ScopeOneLevel              // the base's immediate children
)

func (s Scope) String() string {
	switch s {
	case ScopeBase:
		return "base"
	case ScopeOneLevel:
		return "onelevel"
	}
	return "subtree"
}

// ParseScope reads Dovecot's base/onelevel/subtree and Postfix's
// base/one/sub.
func ParseScope(s string) (Scope, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "subtree", "sub":
		return ScopeSubtree, nil
	case "base":
		return ScopeBase, nil
	case "onelevel", "one":
		return ScopeOneLevel, nil
	}
	return ScopeSubtree, fmt.Errorf("scope %q: use base, onelevel or subtree", s)
}

// Deref is how aliases are dereferenced in searches (RFC 4511 4.5.1.3).
type Deref int

// Deref values, in the protocol's order.
const (
	DerefNever     Deref = iota // neverDerefAliases
	DerefSearching              // derefInSearching
	DerefFinding                // derefFindingBaseObj
	DerefAlways                 // derefAlways
)

// ParseDeref reads never/searching/finding/always.
func ParseDeref(s string) (Deref, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "never":
		return DerefNever, nil
	case "searching":
		return DerefSearching, nil
	case "finding":
		return DerefFinding, nil
	case "always":
		return DerefAlways, nil
	}
	return DerefNever, fmt.Errorf("deref %q: use never, searching, finding or always", s)
}

// ParseURI checks an LDAP URI (RFC 4516 2, with OpenLDAP's ldapi
// scheme) and returns it in canonical form. A bare "host" or
// "host:port" (Dovecot's hosts, Postfix's server_host) becomes
// ldap://host[:port].
func ParseURI(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errors.New("empty LDAP URI")
	}
	if !strings.Contains(s, "://") {
		s = "ldap://" + s
	}
	scheme, rest, _ := strings.Cut(s, "://")
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "ldapi":
		host, _, _ := strings.Cut(rest, "/")
		if _, err := url.PathUnescape(host); err != nil {
			return "", fmt.Errorf("LDAP URI %q: bad socket path: %v", s, err)
		}
		return scheme + "://" + rest, nil
	case "ldap", "ldaps":
	default:
		return "", fmt.Errorf("LDAP URI %q: scheme must be ldap, ldaps or ldapi", s)
	}
	u, err := url.Parse(scheme + "://" + rest)
	if err != nil {
		return "", fmt.Errorf("LDAP URI %q: %v", s, err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("LDAP URI %q: no host", s)
	}
	if u.User != nil {
		return "", fmt.Errorf("LDAP URI %q: user information is not allowed", s)
	}
	if p := u.Port(); p != "" {
		if n, err := parsePort(p); err != nil || n == 0 {
			return "", fmt.Errorf("LDAP URI %q: bad port", s)
		}
	}
	// The DN, attributes, scope and filter parts of an LDAP URL
	// (RFC 4516) do not apply to a server address; drop them.
	return scheme + "://" + u.Host, nil
}

func parsePort(p string) (int, error) {
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' || n > 65535 {
			return 0, errors.New("bad port")
		}
		n = n*10 + int(c-'0')
	}
	if n > 65535 {
		return 0, errors.New("bad port")
	}
	return n, nil
}

// uriHost returns the host name of an ldap:// or ldaps:// URI, the name
// the server's certificate must carry.
func uriHost(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// tlsBase builds the parts of the TLS configuration shared by every
// connection; forHost adds the host check.
type tlsBase struct {
	roots   *x509.CertPool
	certs   []tls.Certificate
	require TLSRequireCert
}

func newTLSBase(o TLSOptions) (*tlsBase, error) {
	b := &tlsBase{require: o.RequireCert}
	if o.CACertFile != "" || o.CACertDir != "" {
		b.roots = x509.NewCertPool()
		if o.CACertFile != "" {
			pem, err := os.ReadFile(o.CACertFile)
			if err != nil {
				return nil, fmt.Errorf("tls_ca_cert_file: %w", err)
			}
			if !b.roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("tls_ca_cert_file %s: no PEM certificate in it", o.CACertFile)
			}
		}
		if o.CACertDir != "" {
			ents, err := os.ReadDir(o.CACertDir)
			if err != nil {
				return nil, fmt.Errorf("tls_ca_cert_dir: %w", err)
			}
			for _, e := range ents {
				if e.IsDir() {
					continue
				}
				pem, err := os.ReadFile(filepath.Join(o.CACertDir, e.Name()))
				if err != nil {
					continue // unreadable files in a CA dir are skipped, as OpenSSL does
				}
				b.roots.AppendCertsFromPEM(pem)
			}
		}
	}
	if o.CertFile != "" || o.KeyFile != "" {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, errors.New("tls_cert_file and tls_key_file go together")
		}
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file/tls_key_file: %w", err)
		}
		b.certs = []tls.Certificate{c}
	}
	return b, nil
}

// forHost returns the TLS configuration for a connection to host.
// Verification is done here rather than by crypto/tls so that the
// OpenLDAP levels can be followed exactly: never and allow accept
// anything; try accepts a missing certificate but not a bad one; demand
// and hard need a good one.
func (b *tlsBase) forHost(host string) *tls.Config {
	roots, require := b.roots, b.require
	return &tls.Config{
		ServerName:         host,
		Certificates:       b.certs,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // checked by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			switch require {
			case TLSNever, TLSAllow:
				return nil
			}
			if len(cs.PeerCertificates) == 0 {
				if require == TLSTry {
					return nil
				}
				return errors.New("server sent no certificate (tls_require_cert demands one)")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				DNSName:       host,
				Roots:         roots,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return fmt.Errorf("server certificate not trusted (tls_require_cert %s): %w", require, err)
			}
			return nil
		},
	}
}
