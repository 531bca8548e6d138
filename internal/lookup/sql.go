package lookup

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"postcote/internal/sqlx"
)

// sqlTable is mysql:FILE, pgsql:FILE or sqlite:FILE, configured as
// mysql_table(5), pgsql_table(5) and sqlite_table(5) describe, through
// internal/sqlx. The query keeps Postfix's template syntax (the %s in
// '%s' included), but sqlx binds every expanded value as a parameter
// instead of pasting it escaped, so no key can change the query.
type sqlTable struct {
	spec     string
	opts     *Options
	driver   sqlx.Driver
	db       *sqlx.DB
	query    string
	format   string
	expLimit int
	domains  domainFilter
}

func openSQL(s Spec, o *Options, _ *Registry) (Table, error) {
	cf, err := readCfFile(s.Name)
	if err != nil {
		return nil, err
	}
	driver, err := sqlx.ParseDriver(s.Type)
	if err != nil {
		return nil, err
	}
	t := &sqlTable{spec: s.String(), opts: o, driver: driver}
	t.query = cf.get("query", "")
	if t.query == "" {
		// The form before Postfix 2.2: select_field, table, where_field
		// and additional_conditions.
		sel, tbl, where := cf.get("select_field", ""), cf.get("table", ""), cf.get("where_field", "")
		if sel == "" || tbl == "" || where == "" {
			return nil, fmt.Errorf("%s: query is not set (nor select_field, table and where_field)", s.Name)
		}
		t.query = fmt.Sprintf("SELECT %s FROM %s WHERE %s = '%%s' %s", sel, tbl, where, cf.get("additional_conditions", ""))
	}
	t.format = cf.get("result_format", "%s")
	for name, tmpl := range map[string]string{"query": t.query, "result_format": t.format} {
		if err := checkTemplate(tmpl); err != nil {
			return nil, fmt.Errorf("%s: %w", cf.pos(name), err)
		}
	}
	if t.expLimit, err = cf.int("expansion_limit", 0); err != nil {
		return nil, err
	}
	if t.domains, err = newDomainFilter(cf.list("domain", "")); err != nil {
		return nil, fmt.Errorf("%s: %w", cf.pos("domain"), err)
	}
	// Check the template once with a harmless key, so a query sqlx
	// cannot bind (a variable inside a quoted identifier) fails at
	// open, not at the first lookup.
	if _, err := t.build("check@example.com"); err != nil && !errors.Is(err, errSuppressed) {
		return nil, fmt.Errorf("%s: %w", cf.pos("query"), err)
	}
	cfg, err := sqlx.FromPostfix(driver, cf.params)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	if t.db, err = sqlx.Open(cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name, err)
	}
	return t, nil
}

// build expands the query for key with every value bound.
func (t *sqlTable) build(key string) (sqlx.Stmt, error) {
	var expErr error
	st, err := sqlx.Build(t.driver, t.query, func(text string, escape func(string) string) string {
		out, err := expandTemplate(text, key, "", false, escape)
		if err != nil {
			if expErr == nil {
				expErr = err
			}
			return text
		}
		return out
	})
	if expErr != nil {
		return sqlx.Stmt{}, expErr
	}
	return st, err
}

func (t *sqlTable) Lookup(ctx context.Context, key string) ([]string, error) {
	if !utf8.ValidString(key) {
		return nil, nil
	}
	key = fold(t.opts, key)
	if key == "" || !t.domains.allows(key) {
		return nil, nil
	}
	st, err := t.build(key)
	if errors.Is(err, errSuppressed) || errors.Is(err, sqlx.ErrInvalidValue) {
		return nil, nil
	}
	if err != nil {
		return nil, lookupError(t.spec, err)
	}
	rc := &resultCollector{format: t.format, limit: t.expLimit, key: key}
	err = t.db.Each(ctx, st, func(r sqlx.Row) error {
		// Every non-NULL column of every row is one result, in order.
		for _, v := range r.Values {
			if v == nil {
				continue
			}
			if err := rc.add(*v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, lookupError(t.spec, err)
	}
	if len(rc.out) == 0 {
		return nil, nil
	}
	return rc.out, nil
}

func (t *sqlTable) Close() error { return t.db.Close() }

// joinResults is how Postfix shows several results: joined by commas.
func joinResults(v []string) string { return strings.Join(v, ",") }
