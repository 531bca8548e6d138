package lookup

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"postcote/internal/ldapx"
)

// FuzzParseSource: the postmap text format never panics, and every
// entry it yields survives an index round trip.
func FuzzParseSource(f *testing.F) {
	f.Add("admin@mail.example.jp info@mail.example.jp\n# c\n  cont\n\"q k\" v\n")
	f.Add("k\n\n\"unterminated v\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		es, err := ParseSource(strings.NewReader(in), FormatMap, true, nil)
		if err != nil {
			return
		}
		ix, err := decodeIndex(encodeIndex(FormatMap, true, sourceStamp{}, es))
		if err != nil {
			t.Fatalf("round trip: %v", err)
		}
		for _, e := range es {
			if ix.entries[e.Key] != e.Value {
				t.Fatalf("round trip lost %q", e.Key)
			}
		}
	})
}

// FuzzParseAliases: the aliases(5) parser never panics and never
// yields an empty name or value.
func FuzzParseAliases(f *testing.F) {
	f.Add("postmaster: root\nroot: a@b,\n  c@d\n\"x y\": |cmd\nlist: :include:/f\n")
	f.Add(":\n\"\n\"a\"b: c\n")
	f.Fuzz(func(t *testing.T, in string) {
		es, err := ParseSource(strings.NewReader(in), FormatAliases, true, nil)
		if err != nil {
			return
		}
		for _, e := range es {
			if e.Key == "" || e.Value == "" {
				t.Fatalf("empty name or value: %+v", e)
			}
		}
	})
}

// FuzzParsePatterns: regexp and pcre files never panic at parse or
// lookup.
func FuzzParsePatterns(f *testing.F) {
	f.Add("/^([^@]*)@([a-zA-Z0-9]*)\\.(example\\.com)/ ${1}+${2}@${3}\n", "root@host.example.com")
	f.Add("if !/x/i\n/(a)(b)?/ $1$2$$\nendif\n", "ab")
	f.Add("|a\\|b|A ok\n/(\\w)\\1/ dup\n", "aa")
	f.Fuzz(func(t *testing.T, in, key string) {
		for _, d := range []string{"regexp", "pcre"} {
			rules, err := parsePatterns(strings.NewReader(in), "fuzz", d)
			if err != nil {
				continue
			}
			tb := &patternTable{spec: d + ":fuzz", rules: rules}
			_, _ = tb.Lookup(context.Background(), key)
		}
	})
}

// FuzzDecodeIndex: corrupt index bytes give an error, never a panic or
// a huge allocation.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex(FormatMap, true, sourceStamp{Size: 3, MTime: 4}, []Entry{{Key: "a", Value: "b"}}))
	f.Add([]byte("PCDB"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ix, err := decodeIndex(data)
		if err == nil && !bytes.Equal(encodeIndex(ix.format, ix.folded, ix.source, mapEntries(ix.entries)), data) {
			t.Fatal("a valid index does not re-encode to itself")
		}
	})
}

// FuzzInline: inline:{…} and static: specs never panic.
func FuzzInline(f *testing.F) {
	f.Add("{ a=b, { c = d e } }")
	f.Add("{{}}}")
	f.Fuzz(func(t *testing.T, name string) {
		for _, typ := range []string{"inline", "static"} {
			if tb, err := Open(typ+":"+name, Options{}); err == nil {
				_, _ = tb.Lookup(context.Background(), "a")
			}
		}
	})
}

func mapEntries(m map[string]string) []Entry {
	out := make([]Entry, 0, len(m))
	for k, v := range m {
		out = append(out, Entry{Key: k, Value: v})
	}
	return out
}

// FuzzExpandFilter: whatever the key, the expanded LDAP filter keeps
// the template's structure (RFC 4515 escaping leaves no "(", ")", "*"
// or "\" of the key unescaped), and table definition files never panic
// the parser.
func FuzzExpandFilter(f *testing.F) {
	f.Add("(|(mailacceptinggeneralid=%s)(maildrop=%u@%d))", "a*)(uid=*@x.org")
	f.Add("mailacceptinggeneralid=*@%s", `\2a(`)
	f.Fuzz(func(t *testing.T, tmpl, key string) {
		if checkTemplate(tmpl) != nil {
			return
		}
		got, err := expandTemplate(tmpl, key, "", false, ldapx.EscapeFilter)
		if err != nil {
			return
		}
		plain, _ := expandTemplate(tmpl, key, "", false, func(string) string { return "" })
		for _, c := range "()*" {
			if strings.Count(got, string(c)) != strings.Count(plain, string(c)) {
				t.Fatalf("key %q changed the filter %q: %q", key, tmpl, got)
			}
		}
		_, _ = readCfFileFrom(strings.NewReader(tmpl+"\n"+key), "fuzz")
	})
}
