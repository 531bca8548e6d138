package lookup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"postcote/internal/testenv"

	_ "modernc.org/sqlite"
)

// group000 is what guide 000 says `postmap -q group@lego.dk` prints.
var group000 = []string{"noah@lego.dk", "johan@lego.dk", "magnus@lego.dk"}

// sqlInjectionKeys must never match a row nor break a query.
var sqlInjectionKeys = []string{
	"x' OR '1'='1", "group@lego.dk' -- ", "group@lego.dk'#", `\' OR 1=1 -- `, `group@lego.dk\`,
	"%s", "%", "_roup@lego.dk", "'; DROP TABLE postfix_aliases; --", `"group@lego.dk"`, "group@lego.dk\x00",
	"*", "(", ")",
}

// checkGuide000 runs guide 000's lookups and the injection keys against
// a table, then checks the table still has its rows.
func checkGuide000(t *testing.T, tb Table) {
	t.Helper()
	cases := map[string][]string{
		"group@lego.dk":     group000,
		"GROUP@Lego.DK":     group000,
		"johan.bak@lego.dk": {"johan@lego.dk"},
		"nobody@lego.dk":    nil,
	}
	for _, k := range sqlInjectionKeys {
		cases[k] = nil
	}
	for key, want := range cases {
		got, err := tb.Lookup(context.Background(), key)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%q) = %q, %v; want %q", key, got, err, want)
		}
	}
	if got := lookupOne(t, tb, "group@lego.dk"); len(got) != 3 {
		t.Errorf("rows gone after the injection keys: %q", got)
	}
}

func TestMySQLGuide000(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB")
	}
	m := testenv.StartMariaDB(t)
	m.CreateDatabase("postfix", "postfix_user", "Passw0rd")
	schema, err := os.ReadFile(filepath.Join("testdata", "g000", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	m.Exec(string(schema))
	p := guideMap(t, "g000/virtual_alias_maps", "hosts = 127.0.0.1", fmt.Sprintf("hosts = inet:127.0.0.1:%d", m.Port))
	tb, err := Open("mysql:"+p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	checkGuide000(t, tb)

	t.Run("postmap -q", func(t *testing.T) {
		out, stderr, code := runCmd(t, postcoteBin(t), "", "postmap", "-q", "group@lego.dk", "mysql:"+p)
		if want := strings.Join(group000, ",") + "\n"; out != want || code != 0 {
			t.Errorf("got %q exit %d (%s), want %q", out, code, stderr, want)
		}
	})

	t.Run("server down is a lookup problem", func(t *testing.T) {
		m.Stop()
		defer m.Start()
		if _, err := tb.Lookup(context.Background(), "group@lego.dk"); !errors.Is(err, ErrLookup) {
			t.Errorf("err = %v, want ErrLookup", err)
		}
	})
}

func TestPgSQLGuide000(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL")
	}
	pg := testenv.StartPostgres(t)
	pg.CreateDatabase("postfix", "postfix_user", "Passw0rd")
	pg.Exec("postfix", `CREATE TABLE postfix_aliases (id SERIAL PRIMARY KEY, alias VARCHAR(255) NOT NULL,
		destination VARCHAR(255) NOT NULL, active BOOLEAN DEFAULT true)`,
		`INSERT INTO postfix_aliases (alias, destination) VALUES ('johan.bak@lego.dk', 'johan@lego.dk'),
		('group@lego.dk', 'noah@lego.dk'), ('group@lego.dk', 'johan@lego.dk'), ('group@lego.dk', 'magnus@lego.dk')`,
		`GRANT SELECT ON postfix_aliases TO postfix_user`)
	conf := fmt.Sprintf("hosts = inet:127.0.0.1:%d\nuser = postfix_user\npassword = Passw0rd\ndbname = postfix\n"+
		"query = SELECT destination FROM postfix_aliases WHERE alias='%%s' AND active ORDER BY id\n", pg.Port)
	p := filepath.Join(t.TempDir(), "pg.cf")
	os.WriteFile(p, []byte(conf), 0o600)
	tb, err := Open("pgsql:"+p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Close()
	checkGuide000(t, tb)
}

// sqliteDB makes a database with guide 000's table.
func sqliteDB(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "aliases.sqlite")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{
		`CREATE TABLE postfix_aliases (id INTEGER PRIMARY KEY, alias TEXT NOT NULL, destination TEXT NOT NULL, active INTEGER DEFAULT 1, extra TEXT)`,
		`INSERT INTO postfix_aliases (alias, destination, active, extra) VALUES
			('johan.bak@lego.dk', 'johan@lego.dk', 1, NULL), ('group@lego.dk', 'noah@lego.dk', 1, NULL),
			('group@lego.dk', 'johan@lego.dk', 1, NULL), ('group@lego.dk', 'magnus@lego.dk', 1, NULL),
			('old@lego.dk', 'gone@lego.dk', 0, NULL), ('two@lego.dk', 'a@lego.dk', 1, 'b@lego.dk')`,
	} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

func TestSQLite(t *testing.T) {
	path := sqliteDB(t)
	open := func(conf string) (Table, error) {
		p := filepath.Join(t.TempDir(), "t.cf")
		os.WriteFile(p, []byte("dbpath = "+path+"\n"+conf), 0o600)
		return Open("sqlite:"+p, Options{})
	}
	tb, err := open("query = SELECT destination FROM postfix_aliases WHERE alias='%s' AND active=1 ORDER BY id\n")
	if err != nil {
		t.Fatal(err)
	}
	checkGuide000(t, tb)

	tests := []struct {
		conf, key string
		want      []string
		err       bool
	}{
		// Several columns: each non-NULL one is a result.
		{"query = SELECT destination, extra FROM postfix_aliases WHERE alias='%s'\n", "two@lego.dk", []string{"a@lego.dk", "b@lego.dk"}, false},
		{"query = SELECT destination, extra FROM postfix_aliases WHERE alias='%s'\n", "johan.bak@lego.dk", []string{"johan@lego.dk"}, false},
		{"query = SELECT destination FROM postfix_aliases WHERE alias='%u@%d'\nresult_format = smtp:[%d]\n", "johan.bak@lego.dk", []string{"smtp:[lego.dk]"}, false},
		{"query = SELECT destination FROM postfix_aliases WHERE alias='%s'\nexpansion_limit = 2\n", "group@lego.dk", nil, true},
		{"query = SELECT destination FROM postfix_aliases WHERE alias='%s'\ndomain = example.com\n", "group@lego.dk", nil, false},
		{"query = SELECT destination FROM postfix_aliases WHERE alias='%u@lego.dk' AND '%d' = 'lego.dk'\n", "johan.bak", nil, false},
		// The form before Postfix 2.2.
		{"select_field = destination\ntable = postfix_aliases\nwhere_field = alias\nadditional_conditions = AND active = 0\n", "old@lego.dk", []string{"gone@lego.dk"}, false},
		{"query = SELECT nosuchcolumn FROM postfix_aliases WHERE alias='%s'\n", "x", nil, true},
	}
	for i, tc := range tests {
		tb, err := open(tc.conf)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		got, err := tb.Lookup(context.Background(), tc.key)
		if tc.err != (err != nil) || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("case %d: %q, %v; want %q (error %v)", i, got, err, tc.want, tc.err)
		}
		if err != nil && !errors.Is(err, ErrLookup) {
			t.Errorf("case %d: %v does not wrap ErrLookup", i, err)
		}
		tb.Close()
	}
	for _, conf := range []string{"query = SELECT 1 WHERE x = '%z'\n", "table = t\n", "query = SELECT \"%s\" FROM t\n"} {
		if tb, err := open(conf); err == nil {
			tb.Close()
			t.Errorf("accepted %q", strings.TrimSpace(conf))
		}
	}
}
