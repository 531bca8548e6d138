package sqlx_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/sqlx"
	"postcote/internal/testenv"
)

// plainExpand expands %u as the only variable, for these tests.
func plainExpand(user string) sqlx.Expander {
	return func(text string, esc func(string) string) string {
		var b strings.Builder
		for i := 0; i < len(text); i++ {
			if text[i] == '%' && i+1 < len(text) {
				switch text[i+1] {
				case 'u':
					b.WriteString(esc(user))
					i++
					continue
				case '%':
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

// servers starts each real database once for the test and returns a
// Config for a database holding table t(k, v).
func servers(t *testing.T) map[string]func(t *testing.T) (sqlx.Config, func(), func()) {
	return map[string]func(t *testing.T) (sqlx.Config, func(), func()){
		"mariadb": func(t *testing.T) (sqlx.Config, func(), func()) {
			m := testenv.StartMariaDB(t)
			m.CreateDatabase("kv", "kvuser", "s3cr'et\\pw")
			m.Exec("CREATE TABLE kv.t (k VARCHAR(100) PRIMARY KEY, v VARCHAR(100))")
			cfg, err := sqlx.ParseConnect(sqlx.MySQL, fmt.Sprintf(`host=127.0.0.1 port=%d dbname=kv user=kvuser password='s3cr\'et\\pw'`, m.Port))
			if err != nil {
				t.Fatal(err)
			}
			return cfg, m.Stop, m.Start
		},
		"postgres": func(t *testing.T) (sqlx.Config, func(), func()) {
			p := testenv.StartPostgres(t)
			p.CreateDatabase("kv", "kvuser", "s3cr'et\\pw")
			p.Exec("kv", "CREATE TABLE t (k VARCHAR(100) PRIMARY KEY, v VARCHAR(100))", "ALTER TABLE t OWNER TO kvuser")
			cfg, err := sqlx.ParseConnect(sqlx.PgSQL, fmt.Sprintf(`host=127.0.0.1 port=%d dbname=kv user=kvuser password='s3cr\'et\\pw' sslmode=disable`, p.Port))
			if err != nil {
				t.Fatal(err)
			}
			return cfg, p.Stop, p.Start
		},
	}
}

func TestRealServers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB and PostgreSQL")
	}
	for name, start := range servers(t) {
		t.Run(name, func(t *testing.T) {
			cfg, stop, restart := start(t)
			cfg.QueryTimeout = 5 * time.Second
			cfg.ConnectTimeout = 2 * time.Second
			db, err := sqlx.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx := context.Background()
			rows := []string{"a", "b'c", `d\e`, "%", "_x", "tab\there"}
			for _, k := range rows {
				st, err := sqlx.Build(cfg.Driver, "INSERT INTO t (k, v) VALUES ('%u', 'val-%u')", plainExpand(k))
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := db.Query(ctx, st, 0); err != nil {
					t.Fatalf("insert %q: %v", k, err)
				}
			}
			for _, k := range rows {
				st, _ := sqlx.Build(cfg.Driver, "SELECT v AS value FROM t WHERE k = '%u'", plainExpand(k))
				got, _, err := db.Query(ctx, st, 0)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != 1 {
					t.Fatalf("%q: %d rows", k, len(got))
				}
				if v, _ := got[0].Get("value"); v != "val-"+k {
					t.Errorf("%q: value %q", k, v)
				}
			}
			stop()
			st, _ := sqlx.Build(cfg.Driver, "SELECT v FROM t WHERE k = '%u'", plainExpand("a"))
			_, _, err = db.Query(ctx, st, 0)
			if !errors.Is(err, sqlx.ErrUnavailable) {
				t.Fatalf("server down: got %v, want ErrUnavailable", err)
			}
			if strings.Contains(err.Error(), "s3cr") {
				t.Fatalf("password in error: %v", err)
			}
			restart()
			got, _, err := db.Query(ctx, st, 0)
			if err != nil || len(got) != 1 {
				t.Fatalf("after restart: %v %v", got, err)
			}
		})
	}
}

func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	_ = path
}
