package sqlx

import (
	"strings"
	"testing"
)

// FuzzBuild checks that no user name ever reaches the SQL text: the
// built SQL is the same for every value, and every value comes back as
// a parameter.
func FuzzBuild(f *testing.F) {
	f.Add("SELECT password FROM users WHERE username = '%u'", "han")
	f.Add(`SELECT 1 FROM t WHERE u = "%n" AND d = E'\'%d' -- '%u`, "a'b@c\\d")
	f.Add("SELECT $q$%u$q$, [x], `y` FROM t /* %u */ WHERE u = %u", "' OR 1=1 --")
	f.Fuzz(func(t *testing.T, template, user string) {
		for _, d := range []Driver{MySQL, PgSQL, SQLite} {
			st, err := Build(d, template, vars(user))
			if err != nil {
				continue
			}
			st2, err := Build(d, template, vars("other"))
			if err != nil {
				if err == ErrInvalidValue {
					continue
				}
				t.Fatalf("%s: %q builds with %q but not with other: %v", d, template, user, err)
			}
			if st.SQL != st2.SQL || len(st.Args) != len(st2.Args) {
				t.Fatalf("%s: SQL depends on the value: %q vs %q", d, st.SQL, st2.SQL)
			}
			if strings.Contains(st.SQL, "\x00") {
				t.Fatalf("%s: marker left in %q", d, st.SQL)
			}
		}
	})
}

// FuzzParseConnect checks that connect strings never panic and that the
// password never shows in String.
func FuzzParseConnect(f *testing.F) {
	f.Add("host=db1 host=/sock port=3306 user=u password='p w\\'' dbname=d ssl_ca=/ca")
	f.Add("host=x sslmode=require password=secret")
	f.Fuzz(func(t *testing.T, s string) {
		for _, d := range []Driver{MySQL, PgSQL, SQLite} {
			c, err := ParseConnect(d, s)
			if err != nil {
				continue
			}
			noPW := c
			noPW.Password = ""
			if c.String() != noPW.String() {
				t.Fatalf("String depends on the password: %q", c.String())
			}
		}
	})
}
