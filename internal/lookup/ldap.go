package lookup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"postcote/internal/ldapx"
)

// ldapTable is ldap:FILE, configured as ldap_table(5) describes.
type ldapTable struct {
	spec string
	opts *Options
	pool *ldapx.Pool

	base, filter, format string
	scope                ldapx.Scope
	attrs, special       []string
	sizeLimit, expLimit  int
	recursionLimit       int
	domains              domainFilter
}

func openLDAP(s Spec, o *Options, _ *Registry) (Table, error) {
	cf, err := readCfFile(s.Name)
	if err != nil {
		return nil, err
	}
	t := &ldapTable{spec: s.String(), opts: o}
	cfg, err := ldapConfig(cf)
	if err != nil {
		return nil, err
	}
	t.base = cf.get("search_base", "")
	t.filter = cf.get("query_filter", "(mailacceptinggeneralid=%s)")
	t.format = cf.get("result_format", cf.get("result_filter", "%s"))
	for name, tmpl := range map[string]string{"search_base": t.base, "query_filter": t.filter, "result_format": t.format} {
		if err := checkTemplate(tmpl); err != nil {
			return nil, fmt.Errorf("%s: %w", cf.pos(name), err)
		}
	}
	if !strings.HasPrefix(strings.TrimSpace(t.filter), "(") {
		// OpenLDAP's ldap_search adds the parentheses a bare
		// "attr=value" filter lacks (guide 001 writes it that way).
		t.filter = "(" + strings.TrimSpace(t.filter) + ")"
	}
	if t.scope, err = ldapx.ParseScope(cf.get("scope", "sub")); err != nil {
		return nil, fmt.Errorf("%s: %w", cf.pos("scope"), err)
	}
	t.attrs = cf.list("result_attribute", "maildrop")
	t.special = cf.list("special_result_attribute", "")
	for _, k := range []string{"leaf_result_attribute", "terminal_result_attribute"} {
		if cf.has(k) {
			return nil, fmt.Errorf("%s is not supported by postcote", cf.pos(k))
		}
	}
	if t.sizeLimit, err = cf.int("size_limit", 0); err != nil {
		return nil, err
	}
	if t.expLimit, err = cf.int("expansion_limit", 0); err != nil {
		return nil, err
	}
	if t.recursionLimit, err = cf.int("recursion_limit", 1000); err != nil {
		return nil, err
	}
	if t.recursionLimit == 0 {
		t.recursionLimit = 1
	}
	if t.domains, err = newDomainFilter(cf.list("domain", "")); err != nil {
		return nil, fmt.Errorf("%s: %w", cf.pos("domain"), err)
	}
	if t.pool, err = ldapx.NewPool(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return t, nil
}

// ldapConfig reads the connection keys of ldap_table(5).
func ldapConfig(cf *cfFile) (ldapx.Config, error) {
	var cfg ldapx.Config
	port := cf.get("server_port", "389")
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		return cfg, fmt.Errorf("%s: bad port %q", cf.pos("server_port"), port)
	}
	for _, h := range cf.list("server_host", "localhost") {
		uri := h
		if !strings.Contains(h, "://") {
			if !strings.Contains(h, ":") || strings.HasSuffix(h, "]") {
				h += ":" + port
			}
			uri = "ldap://" + h
		} else if strings.HasSuffix(h, "://") && !strings.HasPrefix(strings.ToLower(h), "ldapi") {
			// "ldap://" with no host is the library default: localhost.
			uri = h + "localhost"
		}
		u, err := ldapx.ParseURI(uri)
		if err != nil {
			return cfg, fmt.Errorf("%s: %w", cf.pos("server_host"), err)
		}
		cfg.URIs = append(cfg.URIs, u)
	}
	var err error
	if cfg.StartTLS, err = cf.bool("start_tls", false); err != nil {
		return cfg, err
	}
	cfg.TLS.CACertFile = cf.get("tls_ca_cert_file", "")
	cfg.TLS.CACertDir = cf.get("tls_ca_cert_dir", "")
	cfg.TLS.CertFile = cf.get("tls_cert", "")
	cfg.TLS.KeyFile = cf.get("tls_key", "")
	// Postfix's tls_require_cert is a boolean, default no.
	if cfg.TLS.RequireCert, err = ldapx.ParseTLSRequireCert(cf.get("tls_require_cert", "no")); err != nil {
		return cfg, fmt.Errorf("%s: %w", cf.pos("tls_require_cert"), err)
	}
	if v := cf.get("version", "2"); v != "2" && v != "3" {
		return cfg, fmt.Errorf("%s: %q: want 2 or 3 (postcote always speaks LDAPv3)", cf.pos("version"), v)
	}
	switch b := strings.ToLower(cf.get("bind", "yes")); b {
	case "yes", "true", "1", "simple":
		cfg.BindDN, cfg.BindPassword = cf.get("bind_dn", ""), cf.get("bind_pw", "")
	case "no", "false", "0", "none":
	default:
		return cfg, fmt.Errorf("%s: %q is not supported (use yes or no)", cf.pos("bind"), b)
	}
	timeout, err := cf.int("timeout", 10)
	if err != nil {
		return cfg, err
	}
	cfg.Timeout = time.Duration(timeout) * time.Second
	cfg.DialTimeout = cfg.Timeout
	deref, err := cf.int("dereference", 0)
	if err != nil || deref > 3 {
		return cfg, fmt.Errorf("%s: want 0, 1, 2 or 3", cf.pos("dereference"))
	}
	cfg.Deref = []ldapx.Deref{ldapx.DerefNever, ldapx.DerefSearching, ldapx.DerefFinding, ldapx.DerefAlways}[deref]
	return cfg, nil
}

func (t *ldapTable) Lookup(ctx context.Context, key string) ([]string, error) {
	// A key that is not UTF-8 cannot match a directory string (and
	// folding would mangle it): not found, as Postfix's UTF-8 check.
	if !utf8.ValidString(key) {
		return nil, nil
	}
	key = fold(t.opts, key)
	if key == "" || strings.IndexByte(key, 0) >= 0 || !t.domains.allows(key) {
		return nil, nil
	}
	filter, err := expandTemplate(t.filter, key, "", false, ldapx.EscapeFilter)
	if errors.Is(err, errSuppressed) {
		return nil, nil
	}
	if err != nil {
		return nil, lookupError(t.spec, err)
	}
	base, err := expandTemplate(t.base, key, "", false, ldapx.EscapeDN)
	if errors.Is(err, errSuppressed) {
		return nil, nil
	}
	if err != nil {
		return nil, lookupError(t.spec, err)
	}
	rc := &resultCollector{format: t.format, limit: t.expLimit, key: key}
	req := ldapx.SearchRequest{Base: base, Scope: t.scope, Filter: filter, Attributes: append(append([]string(nil), t.attrs...), t.special...)}
	if t.sizeLimit > 0 {
		req.SizeLimit = t.sizeLimit + 1
	}
	entries, err := t.pool.Search(ctx, req)
	if errors.Is(err, ldapx.ErrNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, lookupError(t.spec, err)
	}
	if t.sizeLimit > 0 && len(entries) > t.sizeLimit {
		return nil, lookupError(t.spec, fmt.Errorf("more than size_limit = %d entries", t.sizeLimit))
	}
	seen := map[string]bool{}
	if err := t.collect(ctx, entries, rc, seen, 1); err != nil {
		return nil, lookupError(t.spec, err)
	}
	if len(rc.out) == 0 {
		return nil, nil
	}
	return rc.out, nil
}

// collect adds the result attributes of entries, and follows the DNs of
// special_result_attribute (group members) with base searches, up to
// recursion_limit levels; each DN is visited once.
func (t *ldapTable) collect(ctx context.Context, entries []*ldapx.Entry, rc *resultCollector, seen map[string]bool, depth int) error {
	for _, e := range entries {
		if seen[strings.ToLower(e.DN)] {
			continue
		}
		seen[strings.ToLower(e.DN)] = true
		for _, a := range t.attrs {
			for _, v := range e.Values(a) {
				if err := rc.add(v); err != nil {
					return err
				}
			}
		}
		for _, a := range t.special {
			for _, dn := range e.Values(a) {
				if depth >= t.recursionLimit {
					return fmt.Errorf("recursion_limit = %d reached at %s", t.recursionLimit, dn)
				}
				if seen[strings.ToLower(dn)] {
					continue
				}
				sub, err := t.pool.Search(ctx, ldapx.SearchRequest{
					Base: dn, Scope: ldapx.ScopeBase,
					Attributes: append(append([]string(nil), t.attrs...), t.special...),
				})
				if errors.Is(err, ldapx.ErrNoSuchObject) {
					continue
				}
				if err != nil {
					return err
				}
				if err := t.collect(ctx, sub, rc, seen, depth+1); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (t *ldapTable) Close() error { return t.pool.Close() }
