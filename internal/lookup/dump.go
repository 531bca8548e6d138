package lookup

import (
	"errors"
	"sort"
)

// Dumper is a table whose contents can be listed (postmap -s): file,
// inline and unix tables. Query tables (regexp, LDAP, SQL) cannot.
type Dumper interface {
	Entries() []Entry
}

// Dump lists t's entries sorted by key, or says that its type cannot be
// listed, as postmap -s does for such tables.
func Dump(t Table) ([]Entry, error) {
	if s, ok := t.(shared); ok {
		t = s.Table
	}
	if p, ok := t.(*proxyTable); ok {
		return Dump(p.inner)
	}
	d, ok := t.(Dumper)
	if !ok {
		return nil, errors.New("this table type does not support sequential access (only hash, texthash, inline and unix tables can be listed)")
	}
	return d.Entries(), nil
}

func sortEntries(es []Entry) {
	sort.Slice(es, func(i, j int) bool { return es[i].Key < es[j].Key })
}
