package sqlx

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// vars expands %u, %n, %d and %% for these tests, like userdb.Expand.
func vars(user string) Expander {
	name, domain, _ := strings.Cut(user, "@")
	return func(text string, esc func(string) string) string {
		var b strings.Builder
		for i := 0; i < len(text); i++ {
			if text[i] == '%' && i+1 < len(text) {
				v, ok := map[byte]string{'u': user, 'n': name, 'd': domain}[text[i+1]]
				if ok {
					b.WriteString(esc(v))
					i++
					continue
				}
				if text[i+1] == '%' {
					b.WriteByte('%')
					i++
					continue
				}
			}
			b.WriteByte(text[i])
		}
		return b.String()
	}
}

func TestBuild(t *testing.T) {
	tests := []struct {
		driver   Driver
		template string
		user     string
		sql      string
		args     []string
	}{
		{MySQL, "SELECT password FROM users WHERE username = '%u'", "a'b", "SELECT password FROM users WHERE username = ?", []string{"a'b"}},
		{PgSQL, "SELECT password FROM users WHERE username = '%n' AND domain = '%d'", "x@y.z", "SELECT password FROM users WHERE username = $1 AND domain = $2", []string{"x", "y.z"}},
		{SQLite, "SELECT 1 FROM users WHERE u = '%n@%d'", "x@y", "SELECT 1 FROM users WHERE u = ?", []string{"x@y"}},
		// Unquoted variables are parameters too.
		{MySQL, "SELECT 1 FROM t WHERE u = %u", "1 OR 1=1", "SELECT 1 FROM t WHERE u = ?", []string{"1 OR 1=1"}},
		// Literals without variables stay; %% becomes %.
		{MySQL, "SELECT 1 FROM t WHERE u LIKE 'a%%' AND v = '%u'", "q", "SELECT 1 FROM t WHERE u LIKE 'a%' AND v = ?", []string{"q"}},
		// MySQL double-quoted strings and backslash escapes in the template.
		{MySQL, `SELECT 1 FROM t WHERE u = "%u" AND v = 'it\'s %u'`, "q", "SELECT 1 FROM t WHERE u = ? AND v = ?", []string{"q", "it's q"}},
		// PostgreSQL: "..." is an identifier, E'' takes backslashes, $$ quoting.
		{PgSQL, `SELECT "user" FROM t WHERE u = E'\'%u' OR v = $$%u$$`, "q", `SELECT "user" FROM t WHERE u = $1 OR v = $2`, []string{"'q", "q"}},
		// Standard strings: a backslash is a plain character.
		{PgSQL, `SELECT 1 FROM t WHERE u = 'a\' OR v = '%u'`, "q", `SELECT 1 FROM t WHERE u = 'a\' OR v = $1`, []string{"q"}},
		// Comments keep their text and are not expanded.
		{SQLite, "SELECT 1 -- '%u\nFROM t /* %u */ WHERE u = '%u'", "q", "SELECT 1 -- '%u\nFROM t /* %u */ WHERE u = ?", []string{"q"}},
		{MySQL, "SELECT 1 # it's\nFROM t WHERE u='%u'", "q", "SELECT 1 # it's\nFROM t WHERE u=?", []string{"q"}},
		// MySQL needs a space after "--" for a comment.
		{MySQL, "SELECT 1--1 FROM t WHERE u='%u'", "q", "SELECT 1--1 FROM t WHERE u=?", []string{"q"}},
		{SQLite, "SELECT [user], `x` FROM t WHERE u='%u'", "q", "SELECT [user], `x` FROM t WHERE u=?", []string{"q"}},
	}
	for _, tt := range tests {
		st, err := Build(tt.driver, tt.template, vars(tt.user))
		if err != nil {
			t.Errorf("%s %q: %v", tt.driver, tt.template, err)
			continue
		}
		var args []string
		for _, a := range st.Args {
			args = append(args, a.(string))
		}
		if st.SQL != tt.sql || fmt.Sprint(args) != fmt.Sprint(tt.args) {
			t.Errorf("%s %q:\n got %q %q\nwant %q %q", tt.driver, tt.template, st.SQL, args, tt.sql, tt.args)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		driver   Driver
		template string
		user     string
		want     string
	}{
		{MySQL, "SELECT 1 FROM t WHERE u = '%u", "q", "unterminated string"},
		{PgSQL, `SELECT 1 FROM "t WHERE u = '%u'`, "q", "unterminated quoted identifier"},
		{PgSQL, `SELECT 1 FROM "%u"`, "q", "quoted identifier"},
		{SQLite, "SELECT 1 /* x", "q", "unterminated /*"},
		{PgSQL, "SELECT $a$ x", "q", "dollar-quoted"},
		{MySQL, "SELECT 1 FROM t WHERE u = '%u'", "a\x00b", ErrInvalidValue.Error()},
		{MySQL, "SELECT 1 FROM t WHERE u = %u", "\xff", ErrInvalidValue.Error()},
		{MySQL, "SELECT '\x00'", "q", "NUL"},
	}
	for _, tt := range tests {
		_, err := Build(tt.driver, tt.template, vars(tt.user))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %q: %v, want %q", tt.driver, tt.template, err, tt.want)
		}
	}
	if _, err := Build(MySQL, "SELECT '%u'", vars("\x00")); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("NUL value: %v", err)
	}
}
