package lookup

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseSourceMap(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		fold  bool
		want  []Entry
		warns int
	}{
		{"guide 003 virtual", "admin@mail.example.jp info@mail.example.jp\npostmaster@mail.example.jp\tinfo@mail.example.jp\n", true,
			[]Entry{{"admin@mail.example.jp", "info@mail.example.jp", 1}, {"postmaster@mail.example.jp", "info@mail.example.jp", 2}}, 0},
		{"comments and blank lines", "# c\n\n   \n  # indented comment\nk v\n", true, []Entry{{"k", "v", 5}}, 0},
		{"continuation", "k a,\n  b,\n\tc\nk2 d\n", true, []Entry{{"k", "a,  b,\tc", 1}, {"k2", "d", 4}}, 0},
		{"comment between continuations", "k a\n# note\n  b\n", true, []Entry{{"k", "a  b", 1}}, 0},
		{"fold", "User@Example.COM Value\n", true, []Entry{{"user@example.com", "Value", 1}}, 0},
		{"no fold", "User@Example.COM Value\n", false, []Entry{{"User@Example.COM", "Value", 1}}, 0},
		{"quoted key", "\"a key\\\" \\\\x\" the value\n", true, []Entry{{`a key" \x`, "the value", 1}}, 0},
		{"missing value", "lonely\nk v\n", true, []Entry{{"k", "v", 2}}, 1},
		{"duplicate keeps first", "k one\nK two\n", true, []Entry{{"k", "one", 1}}, 1},
		{"crlf", "k v\r\n", true, []Entry{{"k", "v", 1}}, 0},
		{"alias-like warns", "root: admin\n", true, []Entry{{"root:", "admin", 1}}, 1},
		{"unbalanced quote", "\"abc v\n", true, nil, 1},
		{"no final newline", "k v", true, []Entry{{"k", "v", 1}}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			warns := 0
			got, err := ParseSource(strings.NewReader(tc.in), FormatMap, tc.fold, func(int, string) { warns++ })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if warns != tc.warns {
				t.Errorf("%d warnings, want %d", warns, tc.warns)
			}
		})
	}
}

func TestParseSourceAliases(t *testing.T) {
	in := `# /etc/aliases
mailer-daemon: postmaster
postmaster: root
Root: admin@example.com,
	ops@example.com
list: :include:/etc/mail/list.txt
pipe: "|/usr/bin/procmail -a x", /var/log/mail.archive
"odd name": someone
bad line without colon
: nameless
empty:
`
	warns := 0
	got, err := ParseSource(strings.NewReader(in), FormatAliases, true, func(int, string) { warns++ })
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{"mailer-daemon", "postmaster", 2},
		{"postmaster", "root", 3},
		{"root", "admin@example.com,\tops@example.com", 4},
		{"list", ":include:/etc/mail/list.txt", 6},
		{"pipe", `"|/usr/bin/procmail -a x", /var/log/mail.archive`, 7},
		{"odd name", "someone", 8},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got\n%+v\nwant\n%+v", got, want)
	}
	if warns != 3 {
		t.Errorf("%d warnings, want 3", warns)
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a, b,c", []string{"a", "b", "c"}},
		{"admin@example.com,\tops@example.com", []string{"admin@example.com", "ops@example.com"}},
		{`"|cmd a,b", /file`, []string{`"|cmd a,b"`, "/file"}},
		{" , ,", nil},
		{`"a\",b", c`, []string{`"a\",b"`, "c"}},
	}
	for _, tc := range tests {
		if got := SplitList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SplitList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLogicalLineLimit(t *testing.T) {
	long := "k " + strings.Repeat("x", maxLogicalLine+10) + "\n"
	if _, err := ParseSource(strings.NewReader(long), FormatMap, true, nil); err == nil {
		t.Fatal("a line past the limit was accepted")
	}
	cont := "k v\n" + strings.Repeat(" "+strings.Repeat("y", 1000)+"\n", maxLogicalLine/1000+2)
	if _, err := ParseSource(strings.NewReader(cont), FormatMap, true, nil); err == nil {
		t.Fatal("continuations past the limit were accepted")
	}
}
