package userdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"postcote/internal/sasl"
	"postcote/internal/sqlx"
	"postcote/internal/testenv"
)

// sqlUser is one row of guide 002's dovecotDB.users table, with the
// columns the extended queries read.
type sqlUser struct {
	name, password string
	uid, gid       int
	home, mail     string
}

var sqlUsers = []sqlUser{
	{"han", "han-secret", 5000, 5000, "/var/mail/han", "maildir:~/Maildir"},
	{"leia@example.com", "l3ia pass", 5001, 5000, "/var/mail/example.com/leia", "maildir:~/Maildir"},
	{"o'brien", "obrien-pw", 5002, 5000, "/var/mail/obrien", ""},
	{`back\slash`, "bs-pw", 5003, 5000, "/var/mail/bs", ""},
}

// guideSQLConf is guide 002's dovecot-sql.conf.ext with the connect
// string pointed at the test server (the guide's ssl_ca is left out: the
// test servers speak plain TCP on loopback). The guide prints
// password_query over two lines; here it is continued with "\".
const guideSQLConf = `driver = %s
connect = %s
default_pass_scheme = SHA512-CRYPT
user_query = SELECT username FROM users WHERE username='%%u';
password_query = SELECT username AS user, password FROM users WHERE \
  username='%%u';
iterate_query = SELECT username FROM users;
`

// fullSQLConf reads every column, with userdb_ prefetch fields.
const fullSQLConf = `driver = %s
connect = %s
default_pass_scheme = SHA512-CRYPT
password_query = \
  SELECT username AS user, password, \
    home AS userdb_home, uid AS userdb_uid, gid AS userdb_gid \
  FROM users \
  WHERE username = '%%u' AND active = 1
user_query = SELECT home, uid, gid, mail FROM users WHERE username = '%%u'
iterate_query = SELECT username AS user FROM users WHERE active = 1
`

const usersTable = `CREATE TABLE users (
  username VARCHAR(128) NOT NULL PRIMARY KEY,
  password VARCHAR(255),
  home VARCHAR(255) NOT NULL,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL,
  mail VARCHAR(255),
  active INTEGER NOT NULL DEFAULT 1
)`

// userInserts returns INSERT statements for sqlUsers with SHA512-CRYPT
// hashes stored without the {SCHEME} prefix, as in the guide (its
// default_pass_scheme names the scheme). quote quotes a string constant
// for the dialect.
func userInserts(t testing.TB, quote func(string) string) []string {
	t.Helper()
	var out []string
	for _, u := range sqlUsers {
		h, err := Generate("SHA512-CRYPT", u.password)
		if err != nil {
			t.Fatal(err)
		}
		_, data := SplitScheme(h)
		mail := "NULL"
		if u.mail != "" {
			mail = quote(u.mail)
		}
		out = append(out, fmt.Sprintf("INSERT INTO users (username, password, home, uid, gid, mail) VALUES (%s, %s, %s, %d, %d, %s)",
			quote(u.name), quote(data), quote(u.home), u.uid, u.gid, mail))
	}
	// A disabled user, a user without a password, a user with nopassword.
	out = append(out, "INSERT INTO users (username, password, home, uid, gid, active) VALUES ('disabled', NULL, '/x', 1, 1, 0)",
		"INSERT INTO users (username, password, home, uid, gid) VALUES ('nopw', NULL, '/var/mail/nopw', 5009, 5000)")
	return out
}

func quoteStd(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func quoteMySQL(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// sqlBackend is a database loaded with the users table.
type sqlBackend struct {
	driver  string
	connect string
	caFile  string // MariaDB: the CA of the server's TLS certificate
	stop    func() // nil: cannot be stopped (SQLite)
	start   func()
	// noBackslash switches MariaDB to sql_mode NO_BACKSLASH_ESCAPES for
	// new connections; nil for other servers.
	noBackslash func()
	// exec runs statements as the administrator in the database.
	exec func(t testing.TB, stmts ...string)
}

func startMariaDBBackend(t testing.TB) sqlBackend {
	m := testenv.StartMariaDB(t)
	m.CreateDatabase("dovecotDB", "dovecot", "dovecot-pw'\\")
	m.Exec("USE dovecotDB; " + usersTable)
	m.Exec(append([]string{"USE dovecotDB"}, userInserts(t, quoteMySQL)...)...)
	return sqlBackend{
		driver:  "mysql",
		connect: fmt.Sprintf(`host=127.0.0.1 port=%d dbname=dovecotDB user=dovecot password='dovecot-pw\'\\'`, m.Port),
		stop:    m.Stop, start: m.Start,
		caFile: m.CAFile,
		exec: func(t testing.TB, stmts ...string) {
			m.Exec(append([]string{"USE dovecotDB"}, stmts...)...)
		},
		noBackslash: func() { m.Exec("SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',NO_BACKSLASH_ESCAPES')") },
	}
}

func startPostgresBackend(t testing.TB) sqlBackend {
	p := testenv.StartPostgres(t)
	p.CreateDatabase("dovecotDB", "dovecot", "dovecot-pw'\\")
	p.Exec("dovecotDB", usersTable, "ALTER TABLE users OWNER TO dovecot")
	p.Exec("dovecotDB", userInserts(t, quoteStd)...)
	return sqlBackend{
		driver:  "pgsql",
		connect: fmt.Sprintf(`host=127.0.0.1 port=%d dbname=dovecotDB user=dovecot password='dovecot-pw\'\\' sslmode=disable`, p.Port),
		stop:    p.Stop, start: p.Start,
		exec: func(t testing.TB, stmts ...string) { p.Exec("dovecotDB", stmts...) },
	}
}

func startSQLiteBackend(t *testing.T) sqlBackend {
	path := filepath.Join(t.TempDir(), "dovecot.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range append([]string{usersTable}, userInserts(t, quoteStd)...) {
		if _, err := db.Exec(s); err != nil {
			t.Fatalf("%v\nin %s", err, s)
		}
	}
	return sqlBackend{driver: "sqlite", connect: path}
}

func writeSQLConf(t testing.TB, format string, b sqlBackend) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dovecot-sql.conf.ext")
	if err := os.WriteFile(p, []byte(fmt.Sprintf(format, b.driver, b.connect)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// sqlBackends starts the backends this run can test: SQLite always,
// MariaDB and PostgreSQL unless -short.
func sqlBackends(t *testing.T) map[string]func(*testing.T) sqlBackend {
	m := map[string]func(*testing.T) sqlBackend{"sqlite": startSQLiteBackend}
	if !testing.Short() {
		m["mariadb"] = func(t *testing.T) sqlBackend { return startMariaDBBackend(t) }
		m["postgres"] = func(t *testing.T) sqlBackend { return startPostgresBackend(t) }
	}
	return m
}

func TestSQLDrivers(t *testing.T) {
	for name, start := range sqlBackends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := start(t)
			guide := writeSQLConf(t, guideSQLConf, b)
			full := writeSQLConf(t, fullSQLConf, b)
			t.Run("guide", func(t *testing.T) { testSQLGuide(t, guide) })
			t.Run("full", func(t *testing.T) { testSQLFull(t, full) })
			t.Run("injection", func(t *testing.T) { testSQLInjection(t, guide) })
			if b.caFile != "" {
				t.Run("tls", func(t *testing.T) { testSQLTLS(t, b) })
			}
			if b.noBackslash != nil {
				b.noBackslash()
				t.Run("injection-no-backslash-escapes", func(t *testing.T) {
					testSQLInjection(t, guide)
					testSQLGuide(t, guide)
				})
			}
			if b.stop != nil {
				t.Run("down", func(t *testing.T) { testSQLDown(t, guide, b) })
			}
		})
	}
}

func newSQLPair(t *testing.T, conf string) (PassDB, UserDB) {
	t.Helper()
	p, err := NewPassDB("sql", conf, Options{})
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUserDB("sql", conf, "", "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.(*sqlPassDB).Close()
		u.(*sqlUserDB).Close()
	})
	return p, u
}

func testSQLGuide(t *testing.T, conf string) {
	p, u := newSQLPair(t, conf)
	ctx := context.Background()
	for _, usr := range sqlUsers {
		res, err := p.Verify(ctx, Request{User: usr.name}, usr.password)
		if err != nil || res.Status != PassOK {
			t.Errorf("%q right password: %v %v", usr.name, res.Status, err)
		}
		if got := res.Fields.Value("user"); got != usr.name {
			t.Errorf("%q: user field %q", usr.name, got)
		}
		res, err = p.Verify(ctx, Request{User: usr.name}, usr.password+"x")
		if err != nil || res.Status != PassMismatch {
			t.Errorf("%q wrong password: %v %v", usr.name, res.Status, err)
		}
		f, found, err := u.Lookup(ctx, Request{User: usr.name})
		if err != nil || !found || f.Value("username") != usr.name {
			t.Errorf("%q lookup: %v %v %v", usr.name, f, found, err)
		}
	}
	res, err := p.Verify(ctx, Request{User: "nobody"}, "x")
	if err != nil || res.Status != PassUnknownUser {
		t.Errorf("unknown user: %v %v", res.Status, err)
	}
	// NULL password without nopassword: a mismatch, even for "".
	res, err = p.Verify(ctx, Request{User: "nopw"}, "")
	if err != nil || res.Status != PassMismatch {
		t.Errorf("NULL password: %v %v", res.Status, err)
	}
	var users []string
	if err := u.Iterate(ctx, func(s string) error { users = append(users, s); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Strings(users)
	want := []string{`back\slash`, "disabled", "han", "leia@example.com", "nopw", "o'brien"}
	if strings.Join(users, ",") != strings.Join(want, ",") {
		t.Errorf("iterate: %q, want %q", users, want)
	}
	// Guide 002's userdb: override_fields give uid, gid and home.
	ut, err := NewUserDB("sql", conf, "", "uid=vmail gid=vmail home=/var/mail/%n/", Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, found, err := ut.Lookup(ctx, Request{User: "leia@example.com"})
	if err != nil || !found || f.Value("home") != "/var/mail/leia/" || f.Value("uid") != "vmail" {
		t.Errorf("override_fields: %v %v %v", f, found, err)
	}
}

func testSQLFull(t *testing.T, conf string) {
	p, u := newSQLPair(t, conf)
	ctx := context.Background()
	for _, usr := range sqlUsers {
		res, err := p.Verify(ctx, Request{User: usr.name}, usr.password)
		if err != nil || res.Status != PassOK {
			t.Fatalf("%q: %v %v", usr.name, res.Status, err)
		}
		want := Fields{{"home", usr.home}, {"uid", fmt.Sprint(usr.uid)}, {"gid", fmt.Sprint(usr.gid)}}
		if res.UserdbFields.String() != want.String() {
			t.Errorf("%q prefetch: %v, want %v", usr.name, res.UserdbFields, want)
		}
		f, found, err := u.Lookup(ctx, Request{User: usr.name})
		if err != nil || !found {
			t.Fatalf("%q lookup: %v %v", usr.name, found, err)
		}
		if usr.mail != "" {
			want = append(want, Field{"mail", usr.mail})
		}
		if f.String() != want.String() {
			t.Errorf("%q lookup: %v, want %v (NULL columns left out)", usr.name, f, want)
		}
	}
	res, err := p.Verify(ctx, Request{User: "disabled"}, "")
	if err != nil || res.Status != PassUnknownUser {
		t.Errorf("inactive user: %v %v", res.Status, err)
	}
	if _, found, err := u.Lookup(ctx, Request{User: "ghost"}); found || err != nil {
		t.Errorf("unknown user lookup: %v %v", found, err)
	}
}

// testSQLInjection logs in with names built to widen or break the
// query. None may authenticate, with han's password or the one the
// injected UNION supplies, and none may be an error (which would be a
// temporary failure, and a sign the text reached the SQL parser).
func testSQLInjection(t *testing.T, conf string) {
	p, u := newSQLPair(t, conf)
	ctx := context.Background()
	forged, _ := Generate("SHA512-CRYPT", "forged")
	_, forged = SplitScheme(forged)
	names := []string{
		"'", `\`, "%", "*", "(", ")", "\x00", "han\x00", "han\x00' OR '1'='1",
		"' OR '1'='1", "han' OR '1'='1", "han'--", "han' -- ", "han'#", `han\`, `han\'`, `han\' OR 1=1 -- `,
		"x' OR username LIKE '%", "%' OR '%'='", "han%", "h_n", "*)(uid=*", "han)(|(uid=*",
		"' UNION SELECT 'han' AS user, '" + forged + "' AS password -- ",
		`\' UNION SELECT 'han', '` + forged + `' -- `,
		"han'; DROP TABLE users; --", "o''brien", `back\\slash`, "\xff\xfe", "han\u00a0",
	}
	for _, name := range names {
		for _, pw := range []string{"han-secret", "forged", ""} {
			res, err := p.Verify(ctx, Request{User: name}, pw)
			if err != nil {
				t.Errorf("%q: error %v", name, err)
				continue
			}
			if res.Status == PassOK {
				t.Errorf("%q with %q logged in as %q", name, pw, res.Fields.Value("user"))
			}
		}
		if f, found, err := u.Lookup(ctx, Request{User: name}); found || err != nil {
			t.Errorf("%q lookup: %v %v %v", name, f, found, err)
		}
	}
	// The table is intact and the quoted names still work.
	if res, err := p.Verify(ctx, Request{User: "o'brien"}, "obrien-pw"); err != nil || res.Status != PassOK {
		t.Errorf("o'brien after injections: %v %v", res.Status, err)
	}
}

// testSQLDown stops the server: logins fail with a temporary error (not
// a wrong password), and work again once it is back.
func testSQLDown(t *testing.T, conf string, b sqlBackend) {
	p, u := newSQLPair(t, conf)
	ctx := context.Background()
	if res, err := p.Verify(ctx, Request{User: "han"}, "han-secret"); err != nil || res.Status != PassOK {
		t.Fatalf("before: %v %v", res.Status, err)
	}
	b.stop()
	start := time.Now()
	_, err := p.Verify(ctx, Request{User: "han"}, "han-secret")
	if !errors.Is(err, sasl.ErrTempFail) || !errors.Is(err, sqlx.ErrUnavailable) {
		t.Errorf("server down: %v, want a temporary failure", err)
	}
	if err != nil && strings.Contains(err.Error(), "dovecot-pw") {
		t.Errorf("password in error: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("failure took %v", d)
	}
	if _, _, err := u.Lookup(ctx, Request{User: "han"}); !errors.Is(err, sasl.ErrTempFail) {
		t.Errorf("lookup with server down: %v", err)
	}
	c := NewChecker([]PassDB{p}, []UserDB{u}, DefaultCheckerOptions())
	if _, err := c.Authenticate(ctx, sasl.Request{User: "han", Password: "han-secret", Service: "imap"}); !errors.Is(err, sasl.ErrTempFail) || errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("checker with server down: %v", err)
	}
	b.start()
	if res, err := p.Verify(ctx, Request{User: "han"}, "han-secret"); err != nil || res.Status != PassOK {
		t.Errorf("after restart: %v %v", res.Status, err)
	}
	if _, found, err := u.Lookup(ctx, Request{User: "han"}); !found || err != nil {
		t.Errorf("lookup after restart: %v %v", found, err)
	}
}

// testSQLTLS logs in over TLS with guide 002's ssl_ca, the server's name
// checked against its certificate; a CA that did not sign it fails.
func testSQLTLS(t *testing.T, b sqlBackend) {
	ctx := context.Background()
	tb := b
	tb.connect = b.connect + " ssl_ca=" + b.caFile
	p, _ := newSQLPair(t, writeSQLConf(t, guideSQLConf, tb))
	if res, err := p.Verify(ctx, Request{User: "han"}, "han-secret"); err != nil || res.Status != PassOK {
		t.Errorf("TLS with ssl_ca: %v %v", res.Status, err)
	}
	other := testenv.NewTestCA(t, "some other CA")
	tb.connect = b.connect + " ssl_ca=" + other.WriteCert(t, t.TempDir())
	p, _ = newSQLPair(t, writeSQLConf(t, guideSQLConf, tb))
	if _, err := p.Verify(ctx, Request{User: "han"}, "han-secret"); !errors.Is(err, sasl.ErrTempFail) {
		t.Errorf("TLS with the wrong CA: %v, want a failure", err)
	}
}

// TestSQLResultFields checks how password_query columns become fields,
// on SQLite (the rules do not depend on the server).
func TestSQLResultFields(t *testing.T) {
	b := startSQLiteBackend(t)
	ctx := context.Background()
	conf := func(pq, iq string) string {
		return writeSQLConf(t, "driver = %s\nconnect = %s\ndefault_pass_scheme = PLAIN\npassword_query = "+pq+"\niterate_query = "+iq+"\n", b)
	}
	tests := []struct {
		name, query, user, password string
		status                      PassStatus
		fields                      string
		wantErr                     bool
	}{
		{"noscheme", "SELECT '{MD5}x' AS password_noscheme FROM users WHERE username = '%%u'", "han", "{MD5}x", PassOK, "", false},
		{"prefix wins", "SELECT '{PLAIN}p' AS password FROM users WHERE username = '%%u'", "han", "p", PassOK, "", false},
		{"nopassword", "SELECT NULL AS password, 'Y' AS nopassword FROM users WHERE username = '%%u'", "han", "anything", PassOK, "nopassword=Y", false},
		{"nopassword with password", "SELECT 'p' AS password, 'Y' AS nopassword FROM users WHERE username = '%%u'", "han", "q", PassMismatch, "nopassword=Y", false},
		{"username keeps domain", "SELECT 'p' AS password, 'LEIA' AS username FROM users WHERE username = '%%u'", "leia@example.com", "p", PassOK, "user=LEIA@example.com", false},
		{"domain replaced", "SELECT 'p' AS password, 'example.org' AS domain FROM users WHERE username = '%%u'", "leia@example.com", "p", PassOK, "user=leia@example.org", false},
		{"extra fields, NULL left out", "SELECT 'p' AS password, 'y' AS nologin, NULL AS reason, '10.0.0.0/8' AS allow_nets FROM users WHERE username = '%%u'", "han", "p", PassOK, "nologin=y allow_nets=10.0.0.0/8", false},
		{"no password column", "SELECT username FROM users WHERE username = '%%u'", "han", "p", 0, "", true},
		{"multiple matches", "SELECT 'p' AS password FROM users", "han", "p", 0, "", true},
		{"SQL error", "SELECT password FROM no_such_table WHERE username = '%%u'", "han", "p", 0, "", true},
	}
	for _, tt := range tests {
		p, err := NewPassDB("sql", conf(tt.query, "SELECT username FROM users"), Options{})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		res, err := p.Verify(ctx, Request{User: tt.user}, tt.password)
		p.(*sqlPassDB).Close()
		if tt.wantErr {
			if !errors.Is(err, sasl.ErrTempFail) {
				t.Errorf("%s: %v %v, want a temporary failure", tt.name, res.Status, err)
			}
			continue
		}
		if err != nil || res.Status != tt.status || res.Fields.String() != tt.fields {
			t.Errorf("%s: %v %q %v, want %v %q", tt.name, res.Status, res.Fields.String(), err, tt.status, tt.fields)
		}
	}
	// iterate_query: username + domain, and a missing user column.
	u, err := NewUserDB("sql", conf("SELECT password FROM users WHERE username = '%%u'", "SELECT 'a' AS username, 'b.c' AS domain"), "", "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := u.Iterate(ctx, func(s string) error { got = append(got, s); return nil }); err != nil || fmt.Sprint(got) != "[a@b.c]" {
		t.Errorf("iterate username+domain: %v %v", got, err)
	}
	stop := errors.New("enough")
	if err := u.Iterate(ctx, func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("iterate callback error: %v", err)
	}
	u, err = NewUserDB("sql", conf("SELECT password FROM users WHERE username = '%%u'", "SELECT 1 AS x"), "", "", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Iterate(ctx, func(string) error { return nil }); err == nil || !strings.Contains(err.Error(), "'user'") {
		t.Errorf("iterate without user column: %v", err)
	}
	// Configuration errors show at start-up.
	for _, bad := range []string{"SELECT 'x FROM users", `SELECT "%%u" FROM t`} {
		p := writeSQLConf(t, "driver = %s\nconnect = %s\npassword_query = "+bad+"\n", b)
		if _, err := NewPassDB("sql", p, Options{}); err == nil {
			t.Errorf("password_query %q accepted", bad)
		}
	}
	if _, err := NewPassDB("sql", "", Options{}); err == nil {
		t.Error("empty args accepted")
	}
}
