package doveconf

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"postcote/internal/config"
)

// Known passdb/userdb drivers: those postcote implements and those
// Dovecot has that it does not (yet).
var (
	driversImpl   = map[string]bool{"passwd-file": true, "ldap": true, "sql": true, "static": true, "passwd": true, "pam": true, "shadow": true}
	driversNotYet = map[string]bool{"checkpassword": true, "bsdauth": true, "imap": true, "oauth2": true, "lua": true, "dict": true, "vpopmail": true}
)

// Services postcote runs (or accepts as internal), and Dovecot services
// it does not provide.
var (
	servicesKnown = map[string]bool{
		"imap": true, "imap-login": true, "pop3": true, "pop3-login": true, "lmtp": true,
		"auth": true, "auth-worker": true, "managesieve": true, "managesieve-login": true,
		"replicator": true, "aggregator": true, "doveadm": true, "config": true, "log": true,
		"anvil": true, "stats": true, "dict": true, "dict-async": true, "indexer": true,
		"indexer-worker": true, "imap-hibernate": true, "dns-client": true, "tcpwrap": true,
	}
	servicesNotYet = map[string]bool{
		"submission": true, "submission-login": true, "quota-status": true, "director": true,
		"imap-urlauth": true, "imap-urlauth-login": true, "imap-urlauth-worker": true,
		"ipc": true, "old-stats": true, "quota-warning": true,
	}
	protocolsImpl   = map[string]bool{"imap": true, "pop3": true, "lmtp": true, "sieve": true, "none": true}
	protocolsNotYet = map[string]bool{"submission": true}
	specialUse      = map[string]bool{`\All`: true, `\Archive`: true, `\Drafts`: true, `\Flagged`: true, `\Junk`: true, `\Sent`: true, `\Trash`: true, `\Important`: true}
	mechanismsImpl  = map[string]bool{"plain": true, "login": true, "scram-sha-256": true, "scram-sha-1": true}
)

func diag(pos config.Pos, sev config.Severity, format string, args ...any) config.Diagnostic {
	return config.Diagnostic{Pos: pos, Severity: sev, Message: fmt.Sprintf(format, args...)}
}

// Check inspects the configuration the way Dovecot does when it starts,
// and more: unknown settings and section types (errors, as Dovecot
// refuses them), bad values (errors), missing or unreadable files named
// by passdb/userdb args (errors) and the LDAP and SQL *.conf.ext files
// they name (parsed and checked), settings postcote does not implement
// yet (warnings) or ignores by design (info).
func (c *Config) Check() []config.Diagnostic {
	ds := append([]config.Diagnostic(nil), c.notes...)
	ds = append(ds, c.checkSection(c.Root)...)
	ds = append(ds, c.checkGlobal()...)
	config.SortDiagnostics(ds)
	return ds
}

func (c *Config) checkSection(s *Section) []config.Diagnostic {
	var ds []config.Diagnostic
	rule, known := sectionRules[s.Type]
	if s.Type != "" {
		parent := s.Parent.Type
		if s.Parent.IsFilter() {
			parent = ""
		}
		switch {
		case !known:
			return append(ds, diag(s.Pos, config.Error, "unknown section type %q; Dovecot refuses it too", s.Type))
		case !contains(rule.parents, parent) && !(s.IsFilter() && parent == ""):
			where := "the top level"
			if parent != "" {
				where = s.Parent.label()
			}
			ds = append(ds, diag(s.Pos, config.Error, "section %s is not allowed inside %s", s.label(), where))
		case rule.needsName && s.Name == "":
			ds = append(ds, diag(s.Pos, config.Error, "section %s needs a name, like %s NAME {", s.Type, s.Type))
		}
	}
	if rule.notYet {
		ds = append(ds, diag(s.Pos, config.Warning, "section %s is not yet supported by postcote; it has no effect", s.label()))
	}
	if !rule.freeForm {
		for _, st := range s.Settings {
			ds = append(ds, c.checkSetting(s, st)...)
		}
	}
	switch s.Type {
	case "passdb", "userdb":
		ds = append(ds, c.checkDB(s)...)
	case "service":
		if servicesNotYet[s.Name] && hasSettings(s) {
			ds = append(ds, diag(s.Pos, config.Warning, "service %s is not yet supported by postcote; its settings have no effect", s.Name))
		} else if !servicesKnown[s.Name] && s.Name != "" {
			ds = append(ds, diag(s.Pos, config.Warning, "unknown service %s; postcote does not run it", s.Name))
		}
	case "inet_listener":
		if st, ok := s.Setting("port"); ok {
			if n, ok := parseUint(st.Value); ok && n > 65535 {
				ds = append(ds, diag(st.Pos, config.Error, "port %d of %s is out of range; use 1 to 65535, or 0 to turn the listener off", n, s.Path()))
			}
		}
	case "mailbox":
		if st, ok := s.Setting("special_use"); ok {
			for _, f := range strings.Fields(st.Value) {
				if !specialUse[f] {
					ds = append(ds, diag(st.Pos, config.Error, "special_use of %s: unknown flag %q; use \\All \\Archive \\Drafts \\Flagged \\Junk \\Sent \\Trash or \\Important (RFC 6154)", s.Path(), f))
				}
			}
		}
	}
	for _, sub := range s.Sections {
		ds = append(ds, c.checkSection(sub)...)
	}
	return ds
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// checkSetting checks one setting line of section s.
func (c *Config) checkSetting(s *Section, st Setting) []config.Diagnostic {
	where := ""
	if s.Type != "" {
		where = " in " + s.Path()
	}
	info, ok := LookupSetting(s.scope(), st.Key)
	if !ok {
		hint := ""
		if s.scope() != "" {
			if _, global := LookupSetting("", st.Key); global {
				hint = "; it is a global setting, move it out of the section"
			}
		}
		return []config.Diagnostic{diag(st.Pos, config.Error, "unknown setting %s%s%s", st.Key, where, hint)}
	}
	var ds []config.Diagnostic
	switch info.Status {
	case NotYet:
		ds = append(ds, diag(st.Pos, config.Warning, "%s%s is not yet supported by postcote; the value is checked but has no effect", st.Key, where))
	case Ignored:
		ds = append(ds, diag(st.Pos, config.Info, "%s%s is accepted and ignored by postcote: %s", st.Key, where, info.Doc))
	}
	if bad := validate(info, st); bad != "" {
		ds = append(ds, diag(st.Pos, config.Error, "%s%s = %s: %s", st.Key, where, truncate(strings.TrimSpace(st.Value)), bad))
	}
	return ds
}

// validate returns what is wrong with a value, or "".
func validate(info *SettingInfo, st Setting) string {
	v := strings.TrimSpace(st.Value)
	switch info.Kind {
	case KindBool:
		if _, ok := parseBool(v); !ok {
			return "bad boolean; use yes or no"
		}
	case KindUint:
		if _, ok := parseUint(v); !ok {
			return "bad number; use a non-negative integer"
		}
	case KindSize:
		if _, bad := parseSize(v); bad != "" {
			return "bad size; " + bad
		}
	case KindTime:
		if _, bad := parseDuration(v); bad != "" {
			return "bad time; " + bad
		}
	case KindMode:
		if _, ok := parseMode(v); !ok {
			return "bad mode; use an octal mode like 0660"
		}
	case KindEnum:
		for _, e := range info.Enum {
			if strings.EqualFold(v, e) {
				return ""
			}
		}
		return "bad value; use one of " + strings.Join(info.Enum, ", ")
	case KindFile:
		if st.File == "" && v != "" && !strings.Contains(v, "-----BEGIN") {
			return fmt.Sprintf("not a certificate or key; write %s = <%s to read the file", info.Name, v)
		}
	}
	return ""
}

// checkDB checks a passdb or userdb section and the files it names.
func (c *Config) checkDB(s *Section) []config.Diagnostic {
	drv, ok := s.Setting("driver")
	if !ok || strings.TrimSpace(drv.Value) == "" {
		return []config.Diagnostic{diag(s.Pos, config.Error, "%s has no driver; add driver = passwd-file, ldap, sql, static, passwd or pam", s.Type)}
	}
	driver := strings.TrimSpace(drv.Value)
	switch {
	case driversNotYet[driver]:
		return []config.Diagnostic{diag(drv.Pos, config.Warning, "%s driver %s is not yet supported by postcote; lookups in it fail", s.Type, driver)}
	case !driversImpl[driver]:
		return []config.Diagnostic{diag(drv.Pos, config.Error, "unknown %s driver %q", s.Type, driver)}
	}
	args, _ := s.Setting("args")
	argv := strings.Fields(args.Value)
	var file string
	switch driver {
	case "ldap", "sql":
		if len(argv) == 0 {
			return []config.Diagnostic{diag(s.Pos, config.Error, "%s driver %s needs args = the path of its dovecot-%s.conf.ext file", s.Type, driver, driver)}
		}
		file = argv[len(argv)-1]
	case "passwd-file":
		for _, a := range argv {
			if !strings.Contains(a, "=") {
				file = a
			}
		}
		if file == "" {
			return []config.Diagnostic{diag(s.Pos, config.Error, "%s driver passwd-file needs args = the path of the users file", s.Type)}
		}
	default:
		return nil
	}
	if strings.Contains(file, "%") {
		return nil // a per-user or per-domain file, named at lookup time
	}
	if !filepath.IsAbs(file) {
		file = filepath.Join(filepath.Dir(args.Pos.File), file)
	}
	if err := fileReadable(file, c.optList()); err != nil {
		return []config.Diagnostic{diag(args.Pos, config.Error, "%s args: cannot read %s: %v; create the file or fix the path", s.Type, file, err)}
	}
	var err error
	switch driver {
	case "ldap":
		var l *LDAPConf
		if l, err = ParseLDAPFile(file, c.optList()...); err == nil && l.TLSCACertFile != "" {
			if ferr := fileReadable(l.TLSCACertFile, c.optList()); ferr != nil {
				return []config.Diagnostic{diag(l.Pos("tls_ca_cert_file"), config.Error, "tls_ca_cert_file: cannot read %s: %v", l.TLSCACertFile, ferr)}
			}
		}
	case "sql":
		_, err = ParseSQLFile(file, c.optList()...)
	}
	if err != nil {
		var pe *config.PosError
		if errors.As(err, &pe) {
			return []config.Diagnostic{{Pos: pe.Pos, Severity: config.Error, Message: strings.TrimPrefix(pe.Error(), pe.Pos.String()+": ")}}
		}
		return []config.Diagnostic{diag(args.Pos, config.Error, "%v", err)}
	}
	return nil
}

func (c *Config) optList() []Option {
	return []Option{WithRoot(c.opts.root)}
}

// checkGlobal checks combinations of top-level settings.
func (c *Config) checkGlobal() []config.Diagnostic {
	var ds []config.Diagnostic
	at := func(key string) config.Pos {
		if p := c.PosOf(key); !p.IsZero() {
			return p
		}
		return config.Pos{File: c.Path}
	}
	for _, p := range c.ProtocolList() {
		switch {
		case protocolsImpl[p]:
		case protocolsNotYet[p]:
			ds = append(ds, diag(at("protocols"), config.Warning, "protocol %s is not yet supported by postcote", p))
		default:
			ds = append(ds, diag(at("protocols"), config.Error, "unknown protocol %q in protocols; use imap, pop3, lmtp or sieve", p))
		}
	}
	for _, m := range strings.Fields(c.GetDefault("auth_mechanisms")) {
		if !mechanismsImpl[strings.ToLower(m)] {
			ds = append(ds, diag(at("auth_mechanisms"), config.Warning, "auth mechanism %s is not yet supported by postcote; it is not offered", m))
		}
	}
	if st, ok := c.Setting("mail_location"); ok {
		ds = append(ds, checkLocation(st)...)
	}
	for _, ns := range c.SectionsOf("namespace") {
		if st, ok := ns.Setting("location"); ok {
			ds = append(ds, checkLocation(st)...)
		}
	}
	ssl := strings.ToLower(strings.TrimSpace(c.GetDefault("ssl")))
	if ssl == "yes" || ssl == "required" {
		cert := strings.TrimSpace(c.GetDefault("ssl_cert"))
		key := strings.TrimSpace(c.GetDefault("ssl_key"))
		switch {
		case cert == "":
			ds = append(ds, diag(at("ssl"), config.Error, "ssl = %s but ssl_cert is not set; set ssl_cert = </path/cert.pem and ssl_key = </path/key.pem, or ssl = no", ssl))
		case key == "":
			ds = append(ds, diag(at("ssl_cert"), config.Error, "ssl_cert is set but ssl_key is not; set ssl_key = </path/key.pem"))
		}
	}
	return ds
}

// Mailbox formats of mail_location: those postcote stores, and those
// Dovecot has that it does not.
var (
	formatsImpl   = map[string]bool{"maildir": true, "sdbox": true}
	formatsNotYet = map[string]bool{"mdbox": true, "mbox": true, "imapc": true, "pop3c": true, "obox": true, "dbox": true}
)

// checkLocation checks the format prefix of a mail location
// ("maildir:~/Maildir"). An empty location lets the format be found
// per user, as Dovecot does.
func checkLocation(st Setting) []config.Diagnostic {
	v := strings.TrimSpace(st.Value)
	if v == "" {
		return nil
	}
	format, _, ok := strings.Cut(v, ":")
	switch {
	case !ok:
		// Dovecot would detect the format from the path; postcote needs it.
		return []config.Diagnostic{diag(st.Pos, config.Warning, "%s = %s: no mailbox format; postcote does not detect formats yet, write maildir:PATH or sdbox:PATH", st.Key, truncate(v))}
	case formatsImpl[format]:
		return nil
	case formatsNotYet[format]:
		return []config.Diagnostic{diag(st.Pos, config.Warning, "%s: mailbox format %s is not yet supported by postcote; use maildir", st.Key, format)}
	}
	return []config.Diagnostic{diag(st.Pos, config.Error, "%s: unknown mailbox format %q; use maildir or sdbox", st.Key, format)}
}

// hasSettings reports whether s or a section inside it sets anything
// (the stock conf.d files hold service blocks with only comments).
func hasSettings(s *Section) bool {
	if len(s.Settings) > 0 {
		return true
	}
	for _, c := range s.Sections {
		if hasSettings(c) {
			return true
		}
	}
	return false
}
