package lookup

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// inlineTable is inline:{ key=value, { key = text with spaces } }, a
// table written in main.cf itself (Postfix 3.0).
type inlineTable struct {
	opts    *Options
	entries map[string]string
}

func openInline(s Spec, o *Options, _ *Registry) (Table, error) {
	body, ok := braced(s.Name)
	if !ok {
		return nil, errors.New(`inline table must be written as inline:{ key=value, ... }`)
	}
	elems, err := splitBraced(body)
	if err != nil {
		return nil, err
	}
	t := &inlineTable{opts: o, entries: make(map[string]string, len(elems))}
	for _, el := range elems {
		if inner, ok := braced(el); ok {
			el = inner
		}
		k, v, ok := strings.Cut(el, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("expected key=value, found %q", el)
		}
		k = fold(o, k)
		if _, dup := t.entries[k]; dup {
			o.logf("warning: %s: duplicate key %q, first one kept", s, k)
			continue
		}
		t.entries[k] = v
	}
	return t, nil
}

func (t *inlineTable) Lookup(ctx context.Context, key string) ([]string, error) {
	if v, ok := t.entries[fold(t.opts, key)]; ok {
		return []string{v}, nil
	}
	return nil, nil
}

func (t *inlineTable) Entries() []Entry {
	out := make([]Entry, 0, len(t.entries))
	for k, v := range t.entries {
		out = append(out, Entry{Key: k, Value: v})
	}
	sortEntries(out)
	return out
}

func (t *inlineTable) Close() error { return nil }

// staticTable is static:value or static:{ value with spaces }: every
// key gives the value.
type staticTable struct{ value string }

func openStatic(s Spec, _ *Options, _ *Registry) (Table, error) {
	v := s.Name
	if inner, ok := braced(v); ok {
		v = strings.TrimSpace(inner)
	} else if strings.HasPrefix(v, "{") {
		return nil, errors.New("unbalanced \"{\" in static value")
	}
	return staticTable{v}, nil
}

func (t staticTable) Lookup(context.Context, string) ([]string, error) {
	return []string{t.value}, nil
}

func (staticTable) Close() error { return nil }

// braced returns the text inside "{ … }" when s is exactly that.
func braced(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return "", false
	}
	// The closing brace must match the opening one.
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 && i != len(s)-1 {
				return "", false
			}
		}
	}
	if depth != 0 {
		return "", false
	}
	return s[1 : len(s)-1], true
}

// splitBraced splits s on whitespace and commas, keeping "{ … }" groups
// (which may hold both) as one element, as Postfix's mystrtokq does.
func splitBraced(s string) ([]string, error) {
	var out []string
	i := 0
	for i < len(s) {
		for i < len(s) && (isSpace(s[i]) || s[i] == ',') {
			i++
		}
		if i >= len(s) {
			break
		}
		start, depth := i, 0
		for i < len(s) {
			c := s[i]
			if c == '{' {
				depth++
			} else if c == '}' {
				depth--
				if depth < 0 {
					return nil, errors.New("unbalanced \"}\"")
				}
			} else if depth == 0 && (isSpace(c) || c == ',') {
				break
			}
			i++
		}
		if depth != 0 {
			return nil, errors.New("unbalanced \"{\"")
		}
		out = append(out, s[start:i])
	}
	return out, nil
}

// proxyTable is proxy:TYPE:NAME. Postfix's proxymap shares one back-end
// connection among processes; postcote is one process and shares
// tables through a Registry, so proxy: is the inner table itself.
type proxyTable struct{ inner Table }

func openProxy(s Spec, o *Options, r *Registry) (Table, error) {
	inner, err := ParseSpec(s.Name)
	if err != nil {
		return nil, err
	}
	if inner.Type == "proxy" {
		return nil, errors.New("proxy: of a proxy: table")
	}
	var t Table
	if r != nil {
		t, err = r.openLocked(inner.String())
	} else {
		t, err = open(inner.String(), o, nil)
	}
	if err != nil {
		return nil, err
	}
	return &proxyTable{t}, nil
}

func (p *proxyTable) Lookup(ctx context.Context, key string) ([]string, error) {
	return p.inner.Lookup(ctx, key)
}

func (p *proxyTable) Close() error { return p.inner.Close() }
