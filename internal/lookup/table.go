package lookup

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
)

// Table is one Postfix lookup table. Lookup returns the values stored
// for key, nil (and no error) when the key is absent, and an error
// wrapping ErrLookup when the back end cannot answer: Postfix's "table
// lookup problem", on which the MTA defers instead of rejecting.
type Table interface {
	Lookup(ctx context.Context, key string) ([]string, error)
	// Close releases files and connections. A table from a Registry is
	// closed by the Registry, and its own Close does nothing.
	Close() error
}

// ErrLookup is wrapped by every error of Lookup: the table could not
// answer, which is not the same as "not found".
var ErrLookup = errors.New("table lookup problem")

// Error is a lookup failure of one table.
type Error struct {
	Table string // "type:name"
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: %v: %v", e.Table, ErrLookup, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrLookup) true for every Error.
func (e *Error) Is(target error) bool { return target == ErrLookup }

// lookupError wraps err for table spec, or returns nil.
func lookupError(spec string, err error) error {
	if err == nil {
		return nil
	}
	var le *Error
	if errors.As(err, &le) {
		return err
	}
	return &Error{Table: spec, Err: err}
}

// Options are what opening a table may need beyond its "type:name".
type Options struct {
	// Logf receives warnings (duplicate keys, an index that could not
	// be written); nil discards them.
	Logf func(format string, args ...any)
	// PasswdFile and GroupFile replace /etc/passwd and /etc/group for
	// unix: tables (tests).
	PasswdFile, GroupFile string
	// NoFold keeps the case of keys (postmap -f). By default keys of
	// fixed-string tables are folded to lower case, as Postfix does.
	NoFold bool
}

func (o *Options) logf(format string, args ...any) {
	if o != nil && o.Logf != nil {
		o.Logf(format, args...)
	}
}

// Spec is a parsed "type:name".
type Spec struct {
	Type string
	Name string
}

func (s Spec) String() string { return s.Type + ":" + s.Name }

// ParseSpec splits "type:name" as Postfix's dict_open does: the type is
// what comes before the first ":". A spec without a type is an error
// (callers that default to hash, like postmap, add it themselves).
func ParseSpec(spec string) (Spec, error) {
	typ, name, ok := strings.Cut(spec, ":")
	if !ok || typ == "" {
		return Spec{}, fmt.Errorf("table %q: want type:name", spec)
	}
	for i := 0; i < len(typ); i++ {
		c := typ[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return Spec{}, fmt.Errorf("table %q: bad type %q", spec, typ)
		}
	}
	if name == "" {
		return Spec{}, fmt.Errorf("table %q: empty name", spec)
	}
	return Spec{Type: strings.ToLower(typ), Name: name}, nil
}

// Types lists the table types Open knows.
func Types() []string {
	return []string{"hash", "texthash", "regexp", "pcre", "inline", "static", "proxy", "unix", "ldap", "mysql", "pgsql", "sqlite"}
}

// opener builds the table for one spec; r opens inner tables (proxy:).
type opener func(s Spec, o *Options, r *Registry) (Table, error)

func openers() map[string]opener {
	return map[string]opener{
		"hash":     openHash,
		"texthash": openTexthash,
		"regexp":   openRegexp,
		"pcre":     openPCRE,
		"inline":   openInline,
		"static":   openStatic,
		"proxy":    openProxy,
		"unix":     openUnix,
		"ldap":     openLDAP,
		"mysql":    openSQL,
		"pgsql":    openSQL,
		"sqlite":   openSQL,
	}
}

// Open opens one table by its "type:name" spec. The caller closes it.
// Use a Registry to share tables among the parameters that name them.
func Open(spec string, opts Options) (Table, error) {
	return open(spec, &opts, nil)
}

func open(spec string, o *Options, r *Registry) (Table, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	op, ok := openers()[s.Type]
	if !ok {
		return nil, fmt.Errorf("table %s: unsupported dictionary type %q (postcote has: %s)", spec, s.Type, strings.Join(Types(), ", "))
	}
	t, err := op(s, o, r)
	if err != nil {
		return nil, fmt.Errorf("open table %s: %w", s, err)
	}
	return t, nil
}

// Registry opens tables once per "type:name" and shares them, as
// Postfix's dict_open does for a process: several parameters naming
// the same table get the same instance (one file parse, one LDAP or SQL
// connection pool). It is safe for concurrent use.
type Registry struct {
	opts   Options
	mu     sync.Mutex
	tables map[string]Table
	closed bool
}

// NewRegistry returns an empty registry opening tables with opts.
func NewRegistry(opts Options) *Registry {
	return &Registry{opts: opts, tables: make(map[string]Table)}
}

// Open returns the shared table for spec, opening it the first time.
// Its Close does nothing; Registry.Close closes it.
func (r *Registry) Open(spec string) (Table, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	if s.Type == "hash" || s.Type == "texthash" || s.Type == "regexp" || s.Type == "pcre" || s.Type == "ldap" ||
		s.Type == "mysql" || s.Type == "pgsql" || s.Type == "sqlite" {
		if abs, err := filepath.Abs(s.Name); err == nil {
			s.Name = abs
		}
	}
	key := s.String()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, fmt.Errorf("table %s: registry closed", spec)
	}
	if t, ok := r.tables[key]; ok {
		return shared{t}, nil
	}
	t, err := open(key, &r.opts, r)
	if err != nil {
		return nil, err
	}
	r.tables[key] = t
	return shared{t}, nil
}

// openLocked is Open for proxy: tables, called with r.mu held.
func (r *Registry) openLocked(spec string) (Table, error) {
	s, err := ParseSpec(spec)
	if err != nil {
		return nil, err
	}
	key := s.String()
	if t, ok := r.tables[key]; ok {
		return shared{t}, nil
	}
	t, err := open(key, &r.opts, r)
	if err != nil {
		return nil, err
	}
	r.tables[key] = t
	return shared{t}, nil
}

// Close closes every table the registry opened.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	var errs []error
	for k, t := range r.tables {
		if err := t.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close %s: %w", k, err))
		}
		delete(r.tables, k)
	}
	return errors.Join(errs...)
}

// shared is a registry's table handed out: Close is the registry's job.
type shared struct{ Table }

func (shared) Close() error { return nil }

// fold returns key in lower case unless o asks to keep it (Postfix's
// DICT_FLAG_FOLD_FIX, set for every fixed-string table).
func fold(o *Options, key string) string {
	if o != nil && o.NoFold {
		return key
	}
	return strings.ToLower(key)
}
