package doveconf

import (
	"postcote/internal/config"
	"sort"
	"strconv"
)

// Kind says how a setting's value is read.
type Kind int

// Kinds of setting values.
const (
	KindString Kind = iota
	KindBool        // yes or no
	KindUint        // non-negative integer
	KindSize        // bytes with optional unit (256M)
	KindTime        // number with unit (30 secs)
	KindMode        // octal file mode (0660)
	KindEnum        // one of SettingInfo.Enum
	KindList        // space-separated words (protocols, mail_plugins)
	KindFile        // usually "<path": the file's content
)

var kindNames = [...]string{"string", "boolean", "integer", "size", "time", "mode", "enum", "list", "file"}

// String names the kind.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Status says how far postcote honours a setting (shared by both dialects).
type Status = config.Status

// Statuses of a known setting.
const (
	Implemented = config.Implemented
	NotYet      = config.NotYet
	Ignored     = config.Ignored
)

// SettingInfo documents one known setting.
type SettingInfo struct {
	// Scope is the section type the setting belongs to: "" for global
	// settings (also valid inside protocol/local/remote filters),
	// "service", "inet_listener", "unix_listener", "fifo_listener",
	// "passdb", "userdb", "namespace" or "mailbox".
	Scope   string
	Name    string
	Default string
	Kind    Kind
	Status  Status
	Doc     string
	Enum    []string // KindEnum: allowed values
}

// sectionRule says where a section type may appear and whether it
// needs a name.
type sectionRule struct {
	parents   []string // "" is the top level; filters count as top level
	needsName bool
	freeForm  bool // any key is accepted (plugin, dict)
	notYet    bool // postcote does not act on the section yet
}

var sectionRules = map[string]sectionRule{
	"service":       {parents: []string{""}, needsName: true},
	"inet_listener": {parents: []string{"service"}},
	"unix_listener": {parents: []string{"service"}, needsName: true},
	"fifo_listener": {parents: []string{"service"}, needsName: true},
	"passdb":        {parents: []string{""}},
	"userdb":        {parents: []string{""}},
	"namespace":     {parents: []string{""}, needsName: true},
	"mailbox":       {parents: []string{"namespace"}, needsName: true},
	"protocol":      {parents: []string{""}, needsName: true},
	"local":         {parents: []string{""}, needsName: true},
	"remote":        {parents: []string{""}, needsName: true},
	"local_name":    {parents: []string{""}, needsName: true},
	"plugin":        {parents: []string{""}, freeForm: true},
	"dict":          {parents: []string{""}, freeForm: true},
	// Statistics (Dovecot 2.3 stats): accepted, not acted upon.
	"metric":         {parents: []string{""}, needsName: true, freeForm: true, notYet: true},
	"event_exporter": {parents: []string{""}, needsName: true, freeForm: true, notYet: true},
}

// settingsMap is built by init and never changed afterwards.
var settingsMap map[string]*SettingInfo

func init() {
	m := make(map[string]*SettingInfo, len(settingTable))
	for i := range settingTable {
		s := &settingTable[i]
		k := s.Scope + "/" + s.Name
		if _, dup := m[k]; dup {
			panic("doveconf: duplicate registry entry " + k) // programming error in the table
		}
		m[k] = s
	}
	settingsMap = m
}

// LookupSetting returns the registry entry of a setting in a scope (a
// section type, "" for global).
func LookupSetting(scope, name string) (*SettingInfo, bool) {
	s, ok := settingsMap[scope+"/"+name]
	return s, ok
}

// KnownSettings returns every known setting, sorted by scope and name.
func KnownSettings() []*SettingInfo {
	out := make([]*SettingInfo, 0, len(settingsMap))
	for _, s := range settingsMap {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Scope != out[j].Scope {
			return out[i].Scope < out[j].Scope
		}
		return out[i].Name < out[j].Name
	})
	return out
}
