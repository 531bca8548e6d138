package rewrite

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Table is a Postfix lookup table as internal/lookup provides it: the
// values stored under key, none (and a nil error) when the key is absent.
// A non-nil error means the table could not answer; callers turn it into
// a temporary failure, never into "not found".
type Table interface {
	Lookup(ctx context.Context, key string) ([]string, error)
}

// Opener opens a table named "type:name" (internal/lookup's Open).
type Opener func(spec string) (Table, error)

// ErrTableType is wrapped by openers for table types this build cannot
// open yet, so that configuration errors say which type is missing.
var ErrTableType = errors.New("table type not supported yet")

// Maps is a table list such as virtual_alias_maps: the tables are
// searched in order and the first that has the key answers.
type Maps []Table

// Lookup implements Table over the list.
func (m Maps) Lookup(ctx context.Context, key string) ([]string, error) {
	for _, t := range m {
		vals, err := t.Lookup(ctx, key)
		if err != nil {
			return nil, err
		}
		if len(vals) > 0 {
			return vals, nil
		}
	}
	return nil, nil
}

// OpenMaps opens every "type:name" element of a table-list parameter;
// elements are as SplitList gives them. param names the parameter in
// errors.
func OpenMaps(open Opener, param string, specs []string) (Maps, error) {
	var m Maps
	for _, s := range specs {
		if !strings.Contains(s, ":") {
			return nil, fmt.Errorf("%s: %q is not a type:name lookup table", param, s)
		}
		if open == nil {
			typ, _, _ := strings.Cut(s, ":")
			return nil, fmt.Errorf("%s: %s: %w: %s", param, s, ErrTableType, typ)
		}
		t, err := open(s)
		if err != nil {
			return nil, fmt.Errorf("%s: open %s: %w", param, s, err)
		}
		m = append(m, t)
	}
	return m, nil
}

// splitResults flattens table results: each value may hold several
// addresses separated by commas (and whitespace), as Postfix's
// virtual(5) and aliases(5) allow. Quoted strings keep their commas.
func splitResults(vals []string) []string {
	var out []string
	for _, v := range vals {
		start, quoted := 0, false
		for i := 0; i <= len(v); i++ {
			if i < len(v) {
				switch c := v[i]; {
				case c == '"':
					quoted = !quoted
					continue
				case c == '\\' && quoted:
					i++
					continue
				case c != ',' || quoted:
					continue
				}
			}
			if s := strings.TrimSpace(v[start:min(i, len(v))]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	return out
}
