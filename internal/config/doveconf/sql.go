package doveconf

import (
	"strings"

	"postcote/internal/config"
)

// SQLConf is a dovecot-sql.conf.ext file: the database driver, how to
// connect, and the queries of the sql passdb and userdb. Queries may
// span lines with a trailing "\", as in Dovecot's example file.
// Defaults are Dovecot 2.3's.
type SQLConf struct {
	Path string
	// Driver is mysql, pgsql, sqlite or cassandra.
	Driver string
	// Connect is the driver's connect string: "host=... dbname=...
	// user=... password=..." for mysql and pgsql, a file for sqlite.
	Connect           string
	DefaultPassScheme string
	PasswordQuery     string
	UserQuery         string
	IterateQuery      string
	UpdateQuery       string

	values *extValues
}

var sqlKeys = keySet("driver", "connect", "default_pass_scheme", "password_query", "user_query",
	"iterate_query", "update_query", "userdb_warning_disable")

// Pos returns where key was set, or the file's position when unset.
func (s *SQLConf) Pos(key string) config.Pos { return s.values.pos(key) }

// ParseSQLFile reads a dovecot-sql.conf.ext file. Options: WithRoot.
func ParseSQLFile(path string, opts ...Option) (*SQLConf, error) {
	data, err := readExt(path, opts)
	if err != nil {
		return nil, err
	}
	return ParseSQL(path, data)
}

// ParseSQL parses dovecot-sql.conf.ext text; name is used in errors.
// Unknown keys, a missing or unknown driver and a missing connect
// string are errors.
func ParseSQL(name string, data []byte) (*SQLConf, error) {
	ev, err := parseExt(name, data, sqlKeys)
	if err != nil {
		return nil, err
	}
	s := &SQLConf{
		Path:              name,
		Driver:            strings.TrimSpace(ev.str("driver", "")),
		Connect:           strings.TrimSpace(ev.str("connect", "")),
		DefaultPassScheme: ev.str("default_pass_scheme", "MD5"),
		PasswordQuery:     ev.str("password_query", "SELECT username, domain, password FROM users WHERE username = '%n' AND domain = '%d'"),
		UserQuery:         ev.str("user_query", "SELECT home, uid, gid FROM users WHERE username = '%n' AND domain = '%d'"),
		IterateQuery:      ev.str("iterate_query", "SELECT username AS user FROM users"),
		UpdateQuery:       ev.str("update_query", "UPDATE users SET password = '%w' WHERE username = '%n' AND domain = '%d'"),
		values:            ev,
	}
	switch s.Driver {
	case "mysql", "pgsql", "sqlite":
	case "cassandra":
		// Accepted by Dovecot; postcote's userdb reports it as unsupported.
	case "":
		return nil, config.Errorf(config.Pos{File: name}, "driver", "driver is not set; use driver = mysql, pgsql or sqlite")
	default:
		return nil, config.Errorf(ev.pos("driver"), "driver", "unknown driver %q: use mysql, pgsql or sqlite", truncate(s.Driver))
	}
	if s.Connect == "" {
		return nil, config.Errorf(ev.pos("connect"), "connect", "connect is not set; give the database connection, like connect = host=localhost dbname=mail user=dovecot password=secret")
	}
	return s, nil
}
