package doveconf

import (
	"strconv"
	"strings"
	"time"

	"postcote/internal/config"
)

// Setting is one "key = value" line.
type Setting struct {
	Key string
	// Value is the effective value: unquoted, $variables expanded, and
	// for "key = <path" the content of the file.
	Value string
	// File is the path of a "key = <path" value ("" otherwise);
	// WriteNonDefault prints "<path" instead of the content.
	File string
	// Raw is the value as written when it had $variables ("" otherwise).
	Raw string
	// Quoted is true when the value was written in quotes.
	Quoted bool
	Pos    config.Pos
}

// Section is a "type name { ... }" block, or the top level of the
// configuration (Type == "").
type Section struct {
	Type string // service, inet_listener, passdb, namespace, protocol, ...
	Name string // "" for unnamed sections such as passdb { }
	Pos  config.Pos

	Settings []Setting
	Sections []*Section
	Parent   *Section `json:"-"`
}

// Filter section types: their settings are global settings that apply
// only to matching connections.
var filterTypes = map[string]bool{"protocol": true, "local": true, "remote": true, "local_name": true}

// IsFilter reports whether s is a protocol/local/remote/local_name filter.
func (s *Section) IsFilter() bool { return filterTypes[s.Type] }

// child returns the subsection typ/name, creating it. Named sections
// of the same type are merged, as in Dovecot ("service imap-login"
// written twice is one service); unnamed ones are separate (each
// "passdb {" is another passdb).
func (s *Section) child(typ, name string, pos config.Pos) *Section {
	if name != "" {
		for _, c := range s.Sections {
			if c.Type == typ && c.Name == name {
				return c
			}
		}
	}
	c := &Section{Type: typ, Name: name, Pos: pos, Parent: s}
	s.Sections = append(s.Sections, c)
	return c
}

// label names the section for messages: "service imap-login".
func (s *Section) label() string {
	switch {
	case s.Type == "":
		return "top level"
	case s.Name == "":
		return s.Type
	}
	return s.Type + " " + s.Name
}

// Label names the section as written: `service imap-login`, `passdb`.
func (s *Section) Label() string { return s.label() }

// Path returns the labels from the top down to s, for messages:
// "service auth / unix_listener /var/spool/postfix/private/auth".
func (s *Section) Path() string {
	var parts []string
	for c := s; c != nil && c.Type != ""; c = c.Parent {
		parts = append([]string{c.label()}, parts...)
	}
	return strings.Join(parts, " / ")
}

// Setting returns the last assignment of key in this section (not its
// parents).
func (s *Section) Setting(key string) (Setting, bool) {
	for i := len(s.Settings) - 1; i >= 0; i-- {
		if s.Settings[i].Key == key {
			return s.Settings[i], true
		}
	}
	return Setting{}, false
}

// Get returns the value of key set in this section.
func (s *Section) Get(key string) (string, bool) {
	st, ok := s.Setting(key)
	return st.Value, ok
}

// PosOf returns where key was set in this section, or a zero Pos.
func (s *Section) PosOf(key string) config.Pos {
	st, _ := s.Setting(key)
	return st.Pos
}

// GetDefault returns the value of key set in this section, else the
// Dovecot default for this section type (filters and the top level use
// the global defaults), else "".
func (s *Section) GetDefault(key string) string {
	if v, ok := s.Get(key); ok {
		return v
	}
	return s.defaultOf(key)
}

// defaultOf returns the Dovecot default of key in this section: the
// built-in listener defaults of Dovecot's stock services first
// (service imap-login { inet_listener imaps { port = 993, ssl = yes }
// } without any setting), then the registry.
func (s *Section) defaultOf(key string) string {
	if s.Type == "inet_listener" && s.Parent != nil && s.Parent.Type == "service" {
		for _, l := range BuiltinListeners(s.Parent.Name) {
			if l.Name != s.Name {
				continue
			}
			switch key {
			case "port":
				return strconv.Itoa(l.Port)
			case "ssl":
				if l.SSL {
					return "yes"
				}
				return "no"
			}
		}
	}
	if info, ok := LookupSetting(s.scope(), key); ok {
		return info.Default
	}
	return ""
}

// BuiltinListener is an inet listener that a Dovecot service has by
// default, without any configuration.
type BuiltinListener struct {
	Name string
	Port int
	SSL  bool // TLS from the first byte
}

// BuiltinListeners returns the inet listeners Dovecot 2.3 gives a stock
// service (imap-login, pop3-login, submission-login,
// managesieve-login); a configuration that never mentions the service
// still has them, and "port = 0" in a listener of that name turns it
// off.
func BuiltinListeners(service string) []BuiltinListener {
	switch service {
	case "imap-login":
		return []BuiltinListener{{"imap", 143, false}, {"imaps", 993, true}}
	case "pop3-login":
		return []BuiltinListener{{"pop3", 110, false}, {"pop3s", 995, true}}
	case "submission-login":
		return []BuiltinListener{{"submission", 587, false}}
	case "managesieve-login":
		return []BuiltinListener{{"sieve", 4190, false}}
	}
	return nil
}

// scope is the registry scope of the section's settings.
func (s *Section) scope() string {
	if s.IsFilter() {
		return ""
	}
	return s.Type
}

// lookupVar finds the current value of name for "$name" expansion: the
// last earlier assignment in this section or an enclosing one, else a
// known default.
func (s *Section) lookupVar(name string) (string, bool) {
	for c := s; c != nil; c = c.Parent {
		if v, ok := c.Get(name); ok {
			return v, true
		}
	}
	for c := s; c != nil; c = c.Parent {
		if info, ok := LookupSetting(c.scope(), name); ok {
			return info.Default, true
		}
	}
	return "", false
}

// SectionsOf returns the direct subsections of the given type (the
// Sections field holds them all).
func (s *Section) SectionsOf(typ string) []*Section {
	var out []*Section
	for _, c := range s.Sections {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// Section returns the direct subsection typ/name, or nil.
func (s *Section) Section(typ, name string) *Section {
	for _, c := range s.Sections {
		if c.Type == typ && c.Name == name {
			return c
		}
	}
	return nil
}

// EffectiveFor returns the top-level settings as a service of the
// given protocol ("imap", "pop3", "lmtp", "lda", "sieve", ...) sees
// them: global settings, then those of every "protocol NAME { }" filter
// whose name list includes the protocol (or excludes it with "!name"),
// later ones winning. Sections inside matching filters (passdb, userdb,
// namespace, ...) are added to the global ones. The result is a new
// Section; s is unchanged.
func (s *Section) EffectiveFor(protocol string) *Section {
	eff := &Section{Type: s.Type, Name: s.Name, Pos: s.Pos, Parent: s.Parent}
	eff.Settings = append(eff.Settings, s.Settings...)
	for _, c := range s.Sections {
		if c.Type != "protocol" {
			eff.Sections = append(eff.Sections, c)
		}
	}
	for _, c := range s.SectionsOf("protocol") {
		if !protocolMatches(c.Name, protocol) {
			continue
		}
		eff.Settings = append(eff.Settings, c.Settings...)
		eff.Sections = append(eff.Sections, c.Sections...)
	}
	return eff
}

// protocolMatches reports whether a protocol filter name ("imap",
// "imap pop3", "!lmtp") applies to protocol.
func protocolMatches(filter, protocol string) bool {
	words := strings.Fields(filter)
	negOnly := len(words) > 0
	for _, w := range words {
		if n, ok := strings.CutPrefix(w, "!"); ok {
			if n == protocol {
				return false
			}
			continue
		}
		negOnly = false
		if w == protocol {
			return true
		}
	}
	return negOnly
}

// ProtocolList returns the "protocols" setting split into names, each
// once: Debian's protocols.d files append with "$protocols imap", which
// may repeat a name of the default list.
func (c *Config) ProtocolList() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Fields(c.GetDefault("protocols")) {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// Forwarders: a Config answers for its top level.

// Setting returns the last top-level assignment of key.
func (c *Config) Setting(key string) (Setting, bool) { return c.Root.Setting(key) }

// Get returns the value of a top-level setting as set.
func (c *Config) Get(key string) (string, bool) { return c.Root.Get(key) }

// GetDefault returns a top-level setting, else its Dovecot default.
func (c *Config) GetDefault(key string) string { return c.Root.GetDefault(key) }

// PosOf returns where a top-level setting was set.
func (c *Config) PosOf(key string) config.Pos { return c.Root.PosOf(key) }

// Bool returns a top-level boolean setting.
func (c *Config) Bool(key string) (bool, error) { return c.Root.Bool(key) }

// Int returns a top-level integer setting.
func (c *Config) Int(key string) (int, error) { return c.Root.Int(key) }

// Size returns a top-level size setting in bytes.
func (c *Config) Size(key string) (int64, error) { return c.Root.Size(key) }

// Duration returns a top-level time setting.
func (c *Config) Duration(key string) (time.Duration, error) { return c.Root.Duration(key) }

// Section returns the top-level section typ/name, or nil.
func (c *Config) Section(typ, name string) *Section { return c.Root.Section(typ, name) }

// SectionsOf returns the top-level sections of a type.
func (c *Config) SectionsOf(typ string) []*Section { return c.Root.SectionsOf(typ) }

// EffectiveFor returns the top level as a protocol sees it (see
// Section.EffectiveFor).
func (c *Config) EffectiveFor(protocol string) *Section { return c.Root.EffectiveFor(protocol) }
