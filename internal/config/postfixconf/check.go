package postfixconf

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"postcote/internal/config"
)

// checker holds what Check knows about the whole configuration.
type checker struct {
	refs     map[string]bool // names used as $name somewhere
	services map[string]bool // master.cf service names
}

// Postfix accepts per-transport parameters named after master.cf
// services: "maildrop_destination_recipient_limit" and the like.
// transportSuffixesImpl are the per-transport settings the queue
// manager implements, with the kind of their value.
var transportSuffixesImpl = map[string]Kind{
	"_destination_concurrency_limit":               KindInt,
	"_destination_recipient_limit":                 KindInt,
	"_destination_rate_delay":                      KindTime,
	"_initial_destination_concurrency":             KindInt,
	"_destination_concurrency_failed_cohort_limit": KindInt,
}

var transportSuffixes = []string{
	"_destination_concurrency_limit", "_destination_recipient_limit",
	"_destination_rate_delay", "_initial_destination_concurrency",
	"_destination_concurrency_failed_cohort_limit",
	"_destination_concurrency_negative_feedback",
	"_destination_concurrency_positive_feedback",
	"_time_limit", "_recipient_limit", "_extra_recipient_limit",
	"_recipient_refill_limit", "_recipient_refill_delay",
	"_delivery_slot_cost", "_delivery_slot_loan", "_delivery_slot_discount",
	"_minimum_delivery_slots", "_transport_rate_delay",
}

// Table types postcote reads, and those Postfix has that it does not.
var (
	tableTypes = map[string]bool{
		"hash": true, "texthash": true, "regexp": true, "pcre": true, "inline": true,
		"static": true, "ldap": true, "mysql": true, "pgsql": true, "sqlite": true,
		"proxy": true, "unix": true,
	}
	tableTypesNotYet = map[string]bool{
		"btree": true, "lmdb": true, "cdb": true, "dbm": true, "sdbm": true, "cidr": true,
		"tcp": true, "socketmap": true, "memcache": true, "pipemap": true, "unionmap": true,
		"environ": true, "fail": true, "randmap": true, "nis": true, "nisplus": true,
		"netinfo": true, "internal": true,
	}
	// fileTables name a file: the table itself or the text source that
	// postmap indexes.
	fileTables = map[string]bool{
		"hash": true, "texthash": true, "regexp": true, "pcre": true, "ldap": true,
		"mysql": true, "pgsql": true, "sqlite": true, "btree": true, "lmdb": true,
		"cdb": true, "dbm": true, "sdbm": true, "cidr": true, "memcache": true,
	}
)

func diag(pos config.Pos, sev config.Severity, format string, args ...any) config.Diagnostic {
	return config.Diagnostic{Pos: pos, Severity: sev, Message: fmt.Sprintf(format, args...)}
}

// label names a parameter for messages, with its service in a view.
func label(m *Main, name string) string {
	if m.service != "" && m.Overridden(name) {
		return fmt.Sprintf("%s (-o of service %s)", name, m.service)
	}
	return name
}

// param checks one explicitly set parameter as m sees it.
func (ck *checker) param(m *Main, name string) []config.Diagnostic {
	pos := m.Pos(name)
	what := label(m, name)
	var ds []config.Diagnostic
	info, known := Lookup(name)
	if !known {
		if ck.refs[name] {
			// A user-defined parameter used as $name elsewhere.
			return ck.expansion(m, name, pos, what)
		}
		for _, suf := range transportSuffixes {
			if pre, ok := strings.CutSuffix(name, suf); ok && ck.services[pre] {
				if kind, done := transportSuffixesImpl[suf]; done {
					// The queue manager reads it (internal/server's
					// transportLimits); check its value's form.
					if msg := validate(&ParamInfo{Name: name, Kind: kind}, m.Get(name)); msg != "" {
						ds = append(ds, diag(pos, config.Error, "%s: %s", what, msg))
					}
					return append(ds, ck.expansion(m, name, pos, what)...)
				}
				return append(ds, diag(pos, config.Warning, "%s: per-transport setting is not yet supported by postcote; it has no effect", what))
			}
		}
		return append(ds, diag(pos, config.Warning, "unknown parameter %s; Postfix ignores it too (check the spelling, or see `postcote postconf -d` for known names)", what))
	}
	switch info.Status {
	case NotYet:
		ds = append(ds, diag(pos, config.Warning, "%s is not yet supported by postcote; the value is checked but has no effect", what))
	case Ignored:
		ds = append(ds, diag(pos, config.Info, "%s is accepted and ignored by postcote: %s", what, info.Doc))
	}
	exp := ck.expansion(m, name, pos, what)
	ds = append(ds, exp...)
	for _, d := range exp {
		if d.Severity == config.Error {
			return ds
		}
	}
	v := strings.TrimSpace(m.Get(name))
	if bad := validate(info, v); bad != "" {
		ds = append(ds, diag(pos, config.Error, "%s = %s: %s", what, truncate(v), bad))
		return ds
	}
	if info.Status == Ignored {
		return ds
	}
	if info.Name == "inet_interfaces" {
		for _, el := range SplitList(v) {
			if host, problem := normalizeInterface(el); problem != "" && host != "" {
				ds = append(ds, diag(pos, config.Warning, "%s: %s; postcote listens on %s", what, problem, host))
			}
		}
	}
	return append(ds, ck.files(m, info, v, pos, what)...)
}

// rawParams are the parameters Postfix's daemons read unexpanded
// (their CONFIG_RAW_TABLE): their $names are filled in per message or per
// recipient ($rbl_code, $user, $home, ...), so an unknown name there is
// not a mistake.
var rawParams = map[string]bool{
	"default_rbl_reply": true, "smtpd_reject_footer": true,
	"forward_path": true, "mailbox_command": true, "luser_relay": true,
	"command_expansion_filter": true, "execution_directory_expansion_filter": true,
	"command_execution_directory": true,
}

// expansion reports the problems met while expanding name.
func (ck *checker) expansion(m *Main, name string, pos config.Pos, what string) []config.Diagnostic {
	var ds []config.Diagnostic
	_, probs := m.expandParam(name)
	seen := map[string]bool{}
	for _, p := range probs {
		if seen[p.msg] || (!p.fatal && rawParams[name]) {
			continue
		}
		seen[p.msg] = true
		if p.fatal {
			ds = append(ds, diag(pos, config.Error, "%s: %s", what, p.msg))
		} else {
			ds = append(ds, diag(pos, config.Warning, "%s: %s (define it or fix the name)", what, p.msg))
		}
	}
	return ds
}

// validate checks a value against its kind and enum; it returns what is
// wrong and how to fix it, or "".
func validate(info *ParamInfo, v string) string {
	switch info.Kind {
	case KindBool:
		if _, ok := parseBool(v); !ok {
			return "bad boolean; use yes or no"
		}
	case KindInt:
		if _, err := strconv.Atoi(v); err != nil {
			return "bad number; use a decimal integer"
		}
	case KindSize:
		if _, bad := parseSize(v); bad != "" {
			return "bad size; " + bad
		}
	case KindTime:
		if _, bad := parseDuration(v, info.Unit); bad != "" {
			return "bad time; " + bad
		}
	}
	if len(info.Enum) > 0 {
		ok := false
		for _, e := range info.Enum {
			if strings.EqualFold(v, e) {
				ok = true
			}
		}
		if !ok {
			return fmt.Sprintf("bad value; use one of %s", strings.Join(nonEmpty(info.Enum), ", "))
		}
	}
	switch info.Name {
	case "relayhost":
		if bad := checkNexthop(v); bad != "" {
			return bad
		}
	case "smtpd_sasl_path":
		if rest, ok := strings.CutPrefix(v, "inet:"); ok {
			if _, _, problem := splitInetService(rest); problem != "" || !strings.Contains(rest, ":") {
				return "write inet:host:port, like inet:dovecot.example.com:12345"
			}
		}
	}
	if info.Name == "inet_interfaces" {
		for _, el := range SplitList(v) {
			if host, problem := normalizeInterface(el); problem != "" && host == "" {
				return fmt.Sprintf("%q: %s", el, problem)
			}
		}
	}
	if info.Name == "inet_protocols" {
		for _, p := range SplitList(v) {
			if p != "all" && p != "ipv4" && p != "ipv6" {
				return fmt.Sprintf("bad protocol %q; use all, ipv4 or ipv6", p)
			}
		}
	}
	return ""
}

func nonEmpty(ss []string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// files checks that the files a value names can be read.
func (ck *checker) files(m *Main, info *ParamInfo, v string, pos config.Pos, what string) []config.Diagnostic {
	var ds []config.Diagnostic
	switch info.Kind {
	case KindFile, KindDir:
		if v != "" {
			if err := m.readable(v, info.Kind == KindDir); err != nil {
				ds = append(ds, diag(pos, config.Error, "%s: cannot read %s: %v; fix the path or the file's permissions", what, v, err))
			}
		}
	case KindTables:
		for _, el := range SplitList(v) {
			ds = append(ds, ck.table(m, el, pos, what)...)
		}
	case KindRestrictions:
		ds = append(ds, ck.restrictions(m, v, pos, what)...)
	}
	if info.FileList {
		for _, el := range SplitList(v) {
			if strings.HasPrefix(el, "/") {
				if err := m.readable(el, false); err != nil {
					ds = append(ds, diag(pos, config.Error, "%s: cannot read list file %s: %v; create it or remove it from the list", what, el, err))
				}
			}
		}
	}
	if info.FileValue && strings.HasPrefix(v, "/") {
		if _, err := m.firstLine(v); err != nil {
			ds = append(ds, diag(pos, config.Error, "%s: cannot read %s: %v; put the domain name in that file or set %s to a domain", what, v, err, info.Name))
		}
	}
	return ds
}

// table checks one "type:name" element of a table list.
func (ck *checker) table(m *Main, el string, pos config.Pos, what string) []config.Diagnostic {
	t, ok := ParseTable(el)
	if !ok {
		return []config.Diagnostic{diag(pos, config.Error, "%s: %q is not a lookup table; write type:name, like hash:/etc/postfix/virtual", what, truncate(el))}
	}
	switch {
	case t.Type == "proxy":
		return ck.table(m, t.Name, pos, what)
	case t.Type == "inline":
		if !strings.HasPrefix(t.Name, "{") || !strings.HasSuffix(t.Name, "}") {
			return []config.Diagnostic{diag(pos, config.Error, "%s: %s: write inline:{ key=value, ... }", what, truncate(el))}
		}
		return nil
	case tableTypesNotYet[t.Type]:
		return []config.Diagnostic{diag(pos, config.Warning, "%s: table type %s: is not yet supported by postcote; lookups in %s will fail", what, t.Type, truncate(el))}
	case !tableTypes[t.Type]:
		return []config.Diagnostic{diag(pos, config.Error, "%s: unknown lookup table type %q in %s", what, t.Type, truncate(el))}
	case fileTables[t.Type] && filepath.IsAbs(t.Name):
		if err := m.readable(t.Name, false); err != nil {
			return []config.Diagnostic{diag(pos, config.Error, "%s: cannot read %s (table %s): %v; create the file or fix the path", what, t.Name, truncate(el), err)}
		}
	}
	return nil
}

// restrictions checks an smtpd restriction list: known names, tables.
func (ck *checker) restrictions(m *Main, v string, pos config.Pos, what string) []config.Diagnostic {
	var ds []config.Diagnostic
	toks := SplitList(v)
	for i := 0; i < len(toks); i++ {
		tok := toks[i]
		if _, isTable := ParseTable(tok); isTable {
			// A bare table is a check_*_access shorthand in Postfix.
			ds = append(ds, ck.table(m, tok, pos, what)...)
			continue
		}
		r, known := restrictionTable[tok]
		if !known {
			if ck.refs[tok] || m.IsSet(tok) {
				continue // a restriction class
			}
			ds = append(ds, diag(pos, config.Error, "%s: unknown restriction %q; see postconf(5) for the list", what, tok))
			continue
		}
		if !r.impl {
			ds = append(ds, diag(pos, config.Warning, "%s: restriction %s is not yet supported by postcote; it is skipped", what, tok))
		}
		for a := 0; a < r.args; a++ {
			if i+1 >= len(toks) {
				ds = append(ds, diag(pos, config.Error, "%s: %s needs an argument", what, tok))
				break
			}
			i++
			if r.tables {
				ds = append(ds, ck.table(m, toks[i], pos, what)...)
			}
		}
	}
	return ds
}

// global checks combinations of parameters. In a service view only
// problems that the service's overrides take part in are reported.
func (ck *checker) global(m, base *Main) []config.Diagnostic {
	var ds []config.Diagnostic
	involved := func(names ...string) bool {
		if m == base {
			return true
		}
		for _, n := range names {
			if m.Overridden(n) {
				return true
			}
		}
		return false
	}
	where := func(names ...string) config.Pos {
		for _, n := range names {
			if m.IsSet(n) {
				return m.Pos(n)
			}
		}
		return config.Pos{File: m.path}
	}
	svc := ""
	if m.service != "" {
		svc = " in service " + m.service
	}
	if auth, err := m.Bool("smtpd_sasl_auth_enable"); err == nil && auth &&
		!strings.EqualFold(strings.TrimSpace(m.Get("smtpd_sasl_type")), "dovecot") &&
		involved("smtpd_sasl_auth_enable", "smtpd_sasl_type") {
		ds = append(ds, diag(where("smtpd_sasl_type", "smtpd_sasl_auth_enable"), config.Error,
			"smtpd_sasl_auth_enable = yes%s needs smtpd_sasl_type = dovecot (postcote speaks the Dovecot auth protocol; Cyrus SASL is not supported)", svc))
	}
	level := m.SMTPDTLSLevel()
	wrapper, _ := m.Bool("smtpd_tls_wrappermode")
	tlsNames := []string{"smtpd_tls_security_level", "smtpd_tls_wrappermode", "smtpd_use_tls", "smtpd_enforce_tls", "smtpd_tls_cert_file"}
	if (level == "encrypt" || level == "may" || wrapper) && strings.TrimSpace(m.Get("smtpd_tls_cert_file")) == "" && involved(tlsNames...) {
		sev := config.Warning
		if level == "encrypt" || wrapper {
			sev = config.Error
		}
		ds = append(ds, diag(where(tlsNames...), sev,
			"TLS is turned on%s but smtpd_tls_cert_file is empty; set smtpd_tls_cert_file and smtpd_tls_key_file", svc))
	}
	return ds
}

// readable reports why path (resolved under the root) cannot be read.
func (m *Main) readable(path string, dir bool) error {
	p := m.resolvePath(path)
	fi, err := os.Stat(p)
	if err != nil {
		return unwrapPathError(err)
	}
	if dir {
		if !fi.IsDir() {
			return fmt.Errorf("not a directory")
		}
		f, err := os.Open(p)
		if err != nil {
			return unwrapPathError(err)
		}
		return f.Close()
	}
	if fi.IsDir() {
		return fmt.Errorf("is a directory")
	}
	f, err := os.Open(p)
	if err != nil {
		return unwrapPathError(err)
	}
	return f.Close()
}

// unwrapPathError drops the path from an *os.PathError, which the
// message names already.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// checkNexthop checks a relayhost value: "", "host", "host:port",
// "[host]" or "[host]:port" (the brackets turn off MX lookups), or a
// list of them (Postfix 3.5).
func checkNexthop(v string) string {
	for _, h := range SplitList(v) {
		host, port := h, ""
		if strings.HasPrefix(h, "[") {
			end := strings.Index(h, "]")
			if end < 0 {
				return fmt.Sprintf("%q: missing ']'; write [host] or [host]:port", h)
			}
			host, port = h[1:end], h[end+1:]
			if port != "" && !strings.HasPrefix(port, ":") {
				return fmt.Sprintf("%q: write [host]:port", h)
			}
			port = strings.TrimPrefix(port, ":")
		} else if i := strings.LastIndexByte(h, ':'); i >= 0 {
			host, port = h[:i], h[i+1:]
		}
		if host == "" {
			return fmt.Sprintf("%q: missing host name", h)
		}
		if port != "" {
			if _, ok := PortNumber(port); !ok {
				return fmt.Sprintf("%q: unknown port %q; use a number", h, port)
			}
		}
	}
	return ""
}
