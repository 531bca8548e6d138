package userdb

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"postcote/internal/config/doveconf"
	"postcote/internal/sasl"
	"postcote/internal/sqlx"
)

// The sql passdb and userdb (Dovecot's passdb-sql.c and userdb-sql.c,
// https://doc.dovecot.org/2.3/configuration_manual/authentication/sql/).
// args is the path of a dovecot-sql.conf.ext file: driver (mysql, pgsql,
// sqlite), connect, default_pass_scheme, password_query, user_query and
// iterate_query. Queries go through sqlx.Build, so every %variable is
// a bound parameter, never SQL text.
//
// password_query must return one row with a "password" (or
// "password_noscheme") column; its other columns are passdb extra fields
// ("user" renames the user, "username"/"domain" replace one part of it,
// "nopassword", "nologin", "reason", "allow_nets", ...) and "userdb_*"
// columns are prefetched userdb fields. No row is an unknown user;
// several rows are an error, as in Dovecot. NULL columns are left out.
//
// user_query returns the userdb fields (home, uid, gid, mail, quota_rule,
// ...) from its first row. iterate_query returns a "user" column, or
// "username" and optionally "domain".
//
// A query that fails (server down, timeout, SQL error) is an error
// wrapping sasl.ErrTempFail, and sqlx.ErrUnavailable when the server
// could not be reached: never a wrong password or unknown user.

// sqlDB is the connection and queries of one dovecot-sql.conf.ext.
type sqlDB struct {
	conf   *doveconf.SQLConf
	driver sqlx.Driver
	db     *sqlx.DB
	scheme string
	opts   Options
	limits Limits
}

func newSQLDB(kind, args string, opts Options) (*sqlDB, error) {
	path := strings.TrimSpace(args)
	if path == "" {
		return nil, fmt.Errorf("%s sql: args must be the dovecot-sql.conf.ext file", kind)
	}
	conf, err := doveconf.ParseSQLFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s sql: %w", kind, err)
	}
	if conf.Driver == "cassandra" {
		return nil, fmt.Errorf("%s sql %s: driver cassandra: %w", kind, path, ErrNotSupported)
	}
	drv, err := sqlx.ParseDriver(conf.Driver)
	if err != nil {
		return nil, fmt.Errorf("%s sql %s: %w", kind, path, err)
	}
	cfg, err := sqlx.ParseConnect(drv, conf.Connect)
	if err != nil {
		return nil, fmt.Errorf("%s sql %s: %w", kind, path, err)
	}
	if drv == sqlx.SQLite && !strings.HasPrefix(cfg.Path, "/") {
		return nil, fmt.Errorf("%s sql %s: connect must be the absolute path of the SQLite file", kind, path)
	}
	scheme := conf.DefaultPassScheme
	if scheme == "" {
		scheme = "MD5"
	}
	if _, _, _, err := lookupScheme(scheme); err != nil {
		return nil, fmt.Errorf("%s sql %s: default_pass_scheme: %w", kind, path, err)
	}
	// Catch quoting mistakes in the queries at start-up.
	for _, q := range []struct{ name, text string }{
		{"password_query", conf.PasswordQuery}, {"user_query", conf.UserQuery}, {"iterate_query", conf.IterateQuery},
	} {
		if _, err := sqlx.Build(drv, q.text, expander(Vars{User: "x@y"})); err != nil && !errors.Is(err, sqlx.ErrInvalidValue) {
			return nil, fmt.Errorf("%s sql %s: %s: %w", kind, path, q.name, err)
		}
	}
	db, err := sqlx.Open(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s sql %s: %w", kind, path, err)
	}
	return &sqlDB{conf: conf, driver: drv, db: db, scheme: scheme, opts: opts, limits: opts.limits()}, nil
}

// expander expands Dovecot %variables with v, passing each value to the
// escape function sqlx gives.
func expander(v Vars) sqlx.Expander {
	return func(text string, escape func(string) string) string {
		vv := v
		vv.Escape = escape
		return Expand(text, vv)
	}
}

// query runs a query template for req. found is false when the user's
// name cannot be a key (NUL, invalid UTF-8).
func (s *sqlDB) query(ctx context.Context, name, template string, req Request, limit int) (rows []sqlx.Row, more, valid bool, err error) {
	st, err := sqlx.Build(s.driver, template, expander(req.Vars()))
	if errors.Is(err, sqlx.ErrInvalidValue) {
		s.opts.verbosef("sql(%s,%s): %s: user name cannot match (NUL or invalid UTF-8)", logUser(req.User), req.RemoteIP, name)
		return nil, false, false, nil
	}
	if err != nil {
		return nil, false, false, fmt.Errorf("%s: %w", name, err)
	}
	rows, more, err = s.db.Query(ctx, st, limit)
	if err != nil {
		return nil, false, false, fmt.Errorf("%s failed: %w: %w", name, sasl.ErrTempFail, err)
	}
	return rows, more, true, nil
}

// Close closes the connection pools.
func (s *sqlDB) Close() error { return s.db.Close() }

// sqlPassDB is the passdb side.
type sqlPassDB struct{ s *sqlDB }

func newSQLPassDB(args string, opts Options) (*sqlPassDB, error) {
	s, err := newSQLDB("passdb", args, opts)
	if err != nil {
		return nil, err
	}
	return &sqlPassDB{s: s}, nil
}

// DriverName implements Named.
func (p *sqlPassDB) DriverName() string { return "sql" }

// Close closes the connection pools.
func (p *sqlPassDB) Close() error { return p.s.Close() }

// LookupCredentials runs password_query and returns the stored password.
func (p *sqlPassDB) LookupCredentials(ctx context.Context, req Request) (string, string, PassResult, error) {
	s := p.s
	rows, more, valid, err := s.query(ctx, "password_query", s.conf.PasswordQuery, req, 1)
	if err != nil {
		return "", "", PassResult{}, fmt.Errorf("passdb sql: %w", err)
	}
	if !valid || len(rows) == 0 {
		return "", "", PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	}
	if more {
		return "", "", PassResult{}, fmt.Errorf("passdb sql: %w: password_query returned multiple matches", sasl.ErrTempFail)
	}
	row := rows[0]
	var res PassResult
	res.Status = PassOK
	stored, hasPassword := "", false
	for i, col := range row.Columns {
		v := row.Values[i]
		if col == "" || v == nil {
			if col == "password" || col == "password_noscheme" {
				hasPassword = true // the column is there, NULL
			}
			continue
		}
		switch {
		case col == "password":
			stored, hasPassword = *v, true
		case col == "password_noscheme":
			// Dovecot: the value is in default_pass_scheme even if it
			// starts with "{".
			stored, hasPassword = "{"+s.scheme+"}"+*v, true
		case col == "user":
			res.Fields.Set("user", *v)
		case col == "username":
			u := *v
			if !strings.Contains(u, "@") {
				if _, d := splitUser(currentUser(req, res)); d != "" {
					u += "@" + d
				}
			}
			res.Fields.Set("user", u)
		case col == "domain":
			n, _ := splitUser(currentUser(req, res))
			res.Fields.Set("user", n+"@"+*v)
		case strings.HasPrefix(col, "userdb_"):
			if k := strings.TrimPrefix(col, "userdb_"); k != "" {
				res.UserdbFields.Set(k, *v)
			}
		default:
			res.Fields.Set(col, *v)
		}
	}
	if !hasPassword {
		return "", "", PassResult{}, fmt.Errorf("passdb sql: %w: password_query must return a field named 'password'", sasl.ErrTempFail)
	}
	if stored == "" && !res.Fields.Has("nopassword") {
		// Dovecot's auth_request_password_missing: a mismatch, not an
		// open door.
		s.opts.logf("Info: sql(%s,%s): Empty password returned without nopassword", logUser(req.User), req.RemoteIP)
		return "", "", PassResult{Status: PassMismatch, Reason: "empty password returned without nopassword"}, nil
	}
	return stored, s.scheme, res, nil
}

func currentUser(req Request, res PassResult) string {
	if u := res.Fields.Value("user"); u != "" {
		return u
	}
	return req.User
}

// Verify checks password against password_query's result.
func (p *sqlPassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	stored, scheme, res, err := p.LookupCredentials(ctx, req)
	if err != nil || res.Status != PassOK {
		return res, err
	}
	return verifyStored(p.s.opts, p.s.limits, "sql", req, password, stored, scheme, res), nil
}

// sqlUserDB is the userdb side.
type sqlUserDB struct{ s *sqlDB }

func newSQLUserDB(args string, opts Options) (*sqlUserDB, error) {
	s, err := newSQLDB("userdb", args, opts)
	if err != nil {
		return nil, err
	}
	return &sqlUserDB{s: s}, nil
}

// DriverName implements Named.
func (u *sqlUserDB) DriverName() string { return "sql" }

// Close closes the connection pools.
func (u *sqlUserDB) Close() error { return u.s.Close() }

// Lookup runs user_query; the first row's non-NULL columns are the
// user's fields.
func (u *sqlUserDB) Lookup(ctx context.Context, req Request) (Fields, bool, error) {
	rows, _, valid, err := u.s.query(ctx, "user_query", u.s.conf.UserQuery, req, 1)
	if err != nil {
		return nil, false, fmt.Errorf("userdb sql: %w", err)
	}
	if !valid || len(rows) == 0 {
		return nil, false, nil
	}
	var f Fields
	row := rows[0]
	for i, col := range row.Columns {
		if col == "" || row.Values[i] == nil {
			continue
		}
		f.Set(strings.TrimPrefix(col, "userdb_"), *row.Values[i])
	}
	return f, true, nil
}

// Iterate runs iterate_query and passes each row's user on.
func (u *sqlUserDB) Iterate(ctx context.Context, fn func(string) error) error {
	st, err := sqlx.Build(u.s.driver, u.s.conf.IterateQuery, expander(Vars{}))
	if err != nil {
		return fmt.Errorf("userdb sql: iterate_query: %w", err)
	}
	var fnErr error
	err = u.s.db.Each(ctx, st, func(r sqlx.Row) error {
		name, ok := r.Get("user")
		if !ok {
			n, okN := r.Get("username")
			if !okN {
				return errNoUserColumn
			}
			name = n
			if d, ok := r.Get("domain"); ok && d != "" {
				name += "@" + d
			}
		}
		if err := fn(name); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	switch {
	case err == nil:
		return nil
	case fnErr != nil && errors.Is(err, fnErr):
		return err
	case errors.Is(err, errNoUserColumn):
		return fmt.Errorf("userdb sql: %w", err)
	}
	return fmt.Errorf("userdb sql: iterate_query failed: %w: %w", sasl.ErrTempFail, err)
}

var errNoUserColumn = errors.New("iterate_query did not return a 'user' or 'username' field")
