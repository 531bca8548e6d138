package postfixconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"postcote/internal/config"
)

// Config is the MTA side of a configuration folder: main.cf and
// master.cf. Either may be absent; then the role they configure is off
// and HasMain / HasMaster say so.
type Config struct {
	Dir string
	// Main is the parsed main.cf, or, when it is absent, a Main that
	// answers every parameter with its default.
	Main    *Main
	HasMain bool
	// Master is the parsed master.cf, nil when it is absent.
	Master    *Master
	HasMaster bool
}

// Load reads DIR/main.cf and DIR/master.cf. dir may also be the path of
// one of those files; the other is looked up beside it. A missing file
// is not an error (see HasMain, HasMaster); a missing directory, an
// unreadable file or a syntax error is.
func Load(dir string, opts ...Option) (*Config, error) {
	if fi, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("postfix configuration %s: %w", dir, err)
	} else if !fi.IsDir() {
		dir = filepath.Dir(dir)
	}
	c := &Config{Dir: dir}
	mainPath := filepath.Join(dir, "main.cf")
	m, err := ParseMain(mainPath, opts...)
	switch {
	case err == nil:
		c.Main, c.HasMain = m, true
	case errors.Is(err, fs.ErrNotExist):
		c.Main = NewMain(opts...)
		c.Main.path = mainPath
	default:
		return nil, err
	}
	ms, err := ParseMaster(filepath.Join(dir, "master.cf"))
	switch {
	case err == nil:
		c.Master, c.HasMaster = ms, true
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, err
	}
	return c, nil
}

// Service returns the view of main.cf that the master.cf service sees
// (its -o overrides applied).
func (c *Config) Service(s *Service) *Main { return c.Main.ForService(s) }

// Check inspects main.cf and master.cf the way `postfix check` and
// postconf's warnings do, and more: unknown parameters (warning, as in
// Postfix), bad values of typed parameters (error), unreadable
// certificate, table and list files (error), undefined $names
// (warning), expansion loops (error), parameters postcote does not
// implement yet (warning) or ignores by design (info), and for
// master.cf bad ports, duplicate services and bad -o overrides.
func (c *Config) Check() []config.Diagnostic {
	var ds []config.Diagnostic
	refs := c.referenced()
	services := map[string]bool{}
	if c.Master != nil {
		for _, s := range c.Master.Services {
			services[s.Name] = true
		}
	}
	ck := &checker{refs: refs, services: services}
	if c.HasMain {
		ds = append(ds, c.Main.notes...)
		for _, name := range c.Main.order {
			ds = append(ds, ck.param(c.Main, name)...)
		}
		ds = append(ds, ck.global(c.Main, c.Main)...)
	}
	if c.Master != nil {
		ds = append(ds, c.checkMaster(ck)...)
		if c.HasMain {
			ds = append(ds, c.checkTransports()...)
		}
	}
	config.SortDiagnostics(ds)
	return ds
}

// Check inspects a main.cf alone (see Config.Check).
func (m *Main) Check() []config.Diagnostic {
	c := &Config{Main: m, HasMain: true}
	return c.Check()
}

// referenced collects every parameter name that appears as $name in
// main.cf or in a master.cf override: such names are user-defined
// parameters, not typos.
func (c *Config) referenced() map[string]bool {
	refs := map[string]bool{}
	for _, p := range c.Main.params {
		for _, r := range references(p.Value) {
			refs[r] = true
		}
	}
	if c.Master != nil {
		for _, s := range c.Master.Services {
			for _, o := range s.Overrides {
				for _, r := range references(o.Value) {
					refs[r] = true
				}
			}
			for _, a := range s.Args {
				for _, r := range references(a) {
					refs[r] = true
				}
			}
		}
	}
	// smtpd_restriction_classes names user-defined restriction lists.
	for _, r := range SplitList(c.Main.params["smtpd_restriction_classes"].Value) {
		refs[r] = true
	}
	return refs
}

func (c *Config) checkMaster(ck *checker) []config.Diagnostic {
	var ds []config.Diagnostic
	seen := map[string]config.Pos{}
	used := c.usedTransports()
	for _, s := range c.Master.Services {
		key := s.Name + "/" + s.Type
		if prev, dup := seen[key]; dup {
			ds = append(ds, config.Diagnostic{Pos: s.Pos, Severity: config.Error,
				Message: fmt.Sprintf("duplicate service %s %s (first at line %d); remove or rename one", s.Name, s.Type, prev.Line)})
		} else {
			seen[key] = s.Pos
		}
		if s.PortErr != "" {
			ds = append(ds, config.Diagnostic{Pos: s.Pos, Severity: config.Error, Message: s.PortErr})
		}
		ds = append(ds, checkCommand(s, used)...)
		if len(s.Overrides) == 0 {
			continue
		}
		view := c.Main.ForService(s)
		for _, o := range s.Overrides {
			ds = append(ds, ck.param(view, o.Name)...)
		}
		ds = append(ds, ck.global(view, c.Main)...)
	}
	return ds
}

// internalDaemons are Postfix daemons whose job postcote does inside
// its own process; their master.cf lines are accepted as they are.
var internalDaemons = map[string]bool{
	"smtpd": true, "pickup": true, "cleanup": true, "qmgr": true, "oqmgr": true,
	"tlsmgr": true, "trivial-rewrite": true, "bounce": true, "error": true,
	"discard": true, "verify": true, "flush": true, "proxymap": true, "smtp": true,
	"lmtp": true, "local": true, "virtual": true, "showq": true, "anvil": true,
	"scache": true, "postlog": true, "postlogd": true, "tlsproxy": true, "dnsblog": true,
}

func checkCommand(s *Service, used map[string]bool) []config.Diagnostic {
	switch {
	case s.Type == TypeInet && s.Command != "smtpd":
		return []config.Diagnostic{{Pos: s.Pos, Severity: config.Warning,
			Message: fmt.Sprintf("service %s: inet service with command %q is not yet supported by postcote (only smtpd); it will not listen", s.Name, s.Command)}}
	case !internalDaemons[s.Command] && used[s.Name]:
		return []config.Diagnostic{{Pos: s.Pos, Severity: config.Warning,
			Message: fmt.Sprintf("service %s: command %q is not yet supported by postcote; mail routed to this transport will be deferred", s.Name, s.Command)}}
	case !internalDaemons[s.Command]:
		return []config.Diagnostic{{Pos: s.Pos, Severity: config.Info,
			Message: fmt.Sprintf("service %s: command %q is not supported by postcote; no transport setting uses it", s.Name, s.Command)}}
	}
	return nil
}

// usedTransports returns the transport names that main.cf's transport
// settings name (the part before ":" of "lmtp:unix:...").
func (c *Config) usedTransports() map[string]bool {
	used := map[string]bool{}
	for _, p := range []string{"default_transport", "local_transport", "virtual_transport", "relay_transport", "mailbox_transport", "content_filter"} {
		v := strings.TrimSpace(c.Main.Get(p))
		if v == "" {
			continue
		}
		name, _, _ := strings.Cut(v, ":")
		used[name] = true
	}
	if len(c.Main.Tables("transport_maps")) > 0 {
		// Any service may be named by a transport table entry.
		for _, s := range c.Master.Services {
			used[s.Name] = true
		}
	}
	return used
}

// WriteNonDefault prints the explicitly set parameters as `postconf -n`
// does: "name = value", sorted by name, values as written (unexpanded).
func (m *Main) WriteNonDefault(w io.Writer) error {
	for _, n := range m.Names() {
		if _, err := fmt.Fprintf(w, "%s = %s\n", n, m.params[n].Value); err != nil {
			return err
		}
	}
	return nil
}

// WriteDefaults prints every known parameter with its default, as
// `postconf -d` does; with docs, a "# description (status)" line
// precedes each.
func (m *Main) WriteDefaults(w io.Writer, docs bool) error {
	for _, p := range Known() {
		if docs {
			if _, err := fmt.Fprintf(w, "# %s (%s)\n", p.Doc, p.Status); err != nil {
				return err
			}
		}
		if _, err := fmt.Fprintf(w, "%s = %s\n", p.Name, p.defaultFor(m, nil)); err != nil {
			return err
		}
	}
	return nil
}

// WriteEffective prints the named parameters (all explicitly set ones
// when names is empty) with $name expansion done, like `postconf -x`.
func (m *Main) WriteEffective(w io.Writer, names ...string) error {
	if len(names) == 0 {
		names = m.Names()
	} else {
		names = append([]string(nil), names...)
		sort.Strings(names)
	}
	for _, n := range names {
		if _, err := fmt.Fprintf(w, "%s = %s\n", n, strings.TrimSpace(m.Get(n))); err != nil {
			return err
		}
	}
	return nil
}

// checkTransports reports transport settings that name no master.cf
// service: Postfix defers such mail with "unknown mail transport".
func (c *Config) checkTransports() []config.Diagnostic {
	var ds []config.Diagnostic
	for _, p := range []string{"default_transport", "local_transport", "virtual_transport", "relay_transport", "mailbox_transport"} {
		v := strings.TrimSpace(c.Main.Get(p))
		if v == "" {
			continue
		}
		name, _, _ := strings.Cut(v, ":")
		found := false
		for _, s := range c.Master.Services {
			if s.Name == name && s.Type != TypeInet {
				found = true
			}
		}
		if !found {
			pos := c.Main.Pos(p)
			if pos.IsZero() {
				pos = config.Pos{File: c.Main.path}
			}
			ds = append(ds, config.Diagnostic{Pos: pos, Severity: config.Error,
				Message: fmt.Sprintf("%s = %s: transport %q is not a service in %s; add it to master.cf or fix the name", p, truncate(v), name, c.Master.Path)})
		}
	}
	return ds
}
