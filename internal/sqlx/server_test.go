package sqlx_test

import (
	"context"
	"database/sql"
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
			t.Parallel()
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
			// Failover: a first host that refuses connections is skipped.
			dead := testenv.FreePorts(t, 1)[0]
			real := cfg.Hosts[0]
			real.Port = cfg.Port
			cfg.Hosts = []sqlx.Host{{Name: "127.0.0.1", Port: dead}, real}
			db2, err := sqlx.Open(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			for i := 0; i < 3; i++ {
				if got, _, err := db2.Query(ctx, st, 0); err != nil || len(got) != 1 {
					t.Fatalf("failover: %v %v", got, err)
				}
			}
		})
	}
}

func TestSQLite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	if _, err := sqlx.Open(sqlx.Config{Driver: sqlx.SQLite}); err == nil {
		t.Fatal("sqlite without a file accepted")
	}
	// The file must exist: postcote only reads it.
	db, err := sqlx.Open(sqlx.Config{Driver: sqlx.SQLite, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	st, _ := sqlx.Build(sqlx.SQLite, "SELECT 1", plainExpand(""))
	if _, _, err := db.Query(context.Background(), st, 0); err == nil {
		t.Fatal("missing database file: no error")
	}
	db.Close()
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT); INSERT INTO t VALUES ('a''b', 'one'), ('c', NULL), ('d', 'x'), ('e', 'y')"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err = sqlx.Open(sqlx.Config{Driver: sqlx.SQLite, Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	st, _ = sqlx.Build(sqlx.SQLite, "SELECT v FROM t WHERE k = '%u'", plainExpand("a'b"))
	rows, more, err := db.Query(ctx, st, 0)
	if err != nil || len(rows) != 1 || more {
		t.Fatalf("%v %v %v", rows, more, err)
	}
	if v, ok := rows[0].Get("V"); !ok || v != "one" {
		t.Errorf("Get: %q %v", v, ok)
	}
	st, _ = sqlx.Build(sqlx.SQLite, "SELECT v FROM t WHERE k = '%u'", plainExpand("c"))
	rows, _, err = db.Query(ctx, st, 0)
	if err != nil || len(rows) != 1 || rows[0].Values[0] != nil {
		t.Fatalf("NULL: %v %v", rows, err)
	}
	if _, ok := rows[0].Get("v"); ok {
		t.Error("NULL column reported as set")
	}
	st, _ = sqlx.Build(sqlx.SQLite, "SELECT k FROM t ORDER BY k", plainExpand(""))
	rows, more, err = db.Query(ctx, st, 2)
	if err != nil || len(rows) != 2 || !more {
		t.Fatalf("limit: %v %v %v", rows, more, err)
	}
	// The database is opened read-only.
	st, _ = sqlx.Build(sqlx.SQLite, "DELETE FROM t", plainExpand(""))
	if _, _, err := db.Query(ctx, st, 0); err == nil {
		t.Error("DELETE through a lookup pool succeeded")
	} else if errors.Is(err, sqlx.ErrUnavailable) {
		t.Errorf("a refused write is not a temporary failure: %v", err)
	}
}
