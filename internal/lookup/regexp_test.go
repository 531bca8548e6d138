package lookup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeTable(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRegexpGuide004(t *testing.T) {
	src := copyGuide(t, "g004/canonical.regexp")
	for _, typ := range []string{"regexp", "pcre"} {
		tb, err := Open(typ+":"+src, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct{ key, want string }{
			{"root@host.example.com", "root+host@example.com"},
			{"cron@web1.example.com", "cron+web1@example.com"},
			{"root@example.com", ""},
			{"root@a.b.example.org", ""},
		}
		for _, tc := range tests {
			got := lookupOne(t, tb, tc.key)
			if tc.want == "" && got != nil || tc.want != "" && !reflect.DeepEqual(got, []string{tc.want}) {
				t.Errorf("%s: Lookup(%q) = %q, want %q", typ, tc.key, got, tc.want)
			}
		}
	}
}

func TestPatternTables(t *testing.T) {
	tests := []struct {
		name, typ, table string
		cases            map[string]string // key -> result ("" absent)
	}{
		{"regexp case-insensitive by default", "regexp", "/^User@/ found\n",
			map[string]string{"USER@x": "found", "user@x": "found", "xuser@": ""}},
		{"regexp i flag toggles", "regexp", "/^User@/i found\n",
			map[string]string{"USER@x": "", "User@x": "found"}},
		{"pcre case-sensitive by default", "pcre", "/^User@/ found\n/^other/i other\n",
			map[string]string{"USER@x": "", "User@x": "found", "OTHER": "other"}},
		{"negation", "regexp", "!/@example\\.com$/ REJECT not ours\n",
			map[string]string{"a@example.com": "", "a@evil.test": "REJECT not ours"}},
		{"if endif nesting", "regexp", "if /@example\\.com$/\nif !/^admin@/\n/^(.*)@/ user $1\nendif\n/^admin@/ the admin\nendif\n/./ other\n",
			map[string]string{"bob@example.com": "user bob", "admin@example.com": "the admin", "x@y": "other"}},
		{"first match wins", "regexp", "/a/ first\n/a/ second\n",
			map[string]string{"a": "first"}},
		{"substitutions", "regexp", "/^(a)(b)?(c)$/ [$1][${2}][$3][$$]\n",
			map[string]string{"ac": "[a][][c][$]", "abc": "[a][b][c][$]"}},
		{"other delimiter and escaped delimiter", "regexp", "|^a/b\\|c$| slash\n",
			map[string]string{"a/b|c": "slash"}},
		{"continuation and comments", "pcre", "# comment\n/^x$/\n  continued result\n\n",
			map[string]string{"x": "continued result"}},
		{"leftmost longest", "regexp", "/(a|ab)(c|bcd)/ $1-$2\n",
			map[string]string{"abcd": "a-bcd"}},
		{"pcre backreference via regexp2", "pcre", "/^(\\w+)@\\1\\.example$/ same\n",
			map[string]string{"bob@bob.example": "same", "bob@ann.example": ""}},
		{"pcre lookahead", "pcre", "/^(?!admin)(\\w+)@/ $1\n",
			map[string]string{"admin@x": "", "bob@x": "bob"}},
		{"pcre x flag", "pcre", "/^ a  b $ # comment/x ab\n",
			map[string]string{"ab": "ab", "a b": ""}},
		{"pcre anchored", "pcre", "/b/A starts-with-b\n",
			map[string]string{"ab": "", "bc": "starts-with-b"}},
		{"empty result", "regexp", "/^x$/\n",
			map[string]string{"x": ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTable(t, "t."+tc.typ, tc.table)
			tb, err := Open(tc.typ+":"+p, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range tc.cases {
				got := lookupOne(t, tb, key)
				switch {
				case tc.name == "empty result":
					if !reflect.DeepEqual(got, []string{""}) {
						t.Errorf("Lookup(%q) = %q, want one empty result", key, got)
					}
				case want == "" && got != nil, want != "" && !reflect.DeepEqual(got, []string{want}):
					t.Errorf("Lookup(%q) = %q, want %q", key, got, want)
				}
			}
		})
	}
}

func TestPatternErrors(t *testing.T) {
	tests := []struct{ name, typ, table, want string }{
		{"bad regexp", "regexp", "# c\n/ok/ x\n/(/ y\n", ":3: bad pattern"},
		{"unknown flag", "regexp", "/a/q x\n", ":1: unknown regexp flag"},
		{"unclosed", "pcre", "/abc x\n", ":1: missing closing delimiter"},
		{"endif without if", "regexp", "endif\n", ":1: endif without matching if"},
		{"if without endif", "regexp", "/a/ b\nif /x/\n", ":2: if without matching endif"},
		{"group out of range", "regexp", "/(a)/ $2\n", ":1: out of range replacement index $2"},
		{"non-numeric", "pcre", "/(a)/ ${x}\n", ":1: non-numeric replacement"},
		{"substitution in negation", "regexp", "!/(a)/ $1\n", ":1: $number substitution"},
		{"no delimiter", "regexp", "abc def\n", ":1: pattern must start with a delimiter"},
		{"text after if", "regexp", "if /a/ b\nendif\n", ":1: extra text after if"},
		{"basic syntax", "regexp", "/a/x b\n", ":1: basic regular expressions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTable(t, "t", tc.table)
			_, err := Open(tc.typ+":"+p, Options{})
			if err == nil || !strings.Contains(err.Error(), p+tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, p+tc.want)
			}
		})
	}
}

// TestPCREBacktrackBounded: a pattern with catastrophic backtracking
// fails the lookup (temporary error) instead of hanging it.
func TestPCREBacktrackBounded(t *testing.T) {
	p := writeTable(t, "t", "/^(a|aa)+\\1$/ x\n")
	tb, err := Open("pcre:"+p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tb.Lookup(context.Background(), strings.Repeat("a", 60)+"b")
	if !errors.Is(err, ErrLookup) {
		t.Errorf("err = %v, want a lookup problem", err)
	}
}
