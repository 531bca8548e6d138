package sqlx

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Driver names a database dialect, spelled as Dovecot's "driver =" and
// Postfix's table types spell them.
type Driver string

// The supported drivers.
const (
	MySQL  Driver = "mysql"  // MariaDB and MySQL, through github.com/go-sql-driver/mysql
	PgSQL  Driver = "pgsql"  // PostgreSQL, through github.com/jackc/pgx/v5/stdlib
	SQLite Driver = "sqlite" // SQLite 3 files, through modernc.org/sqlite (no cgo)
)

// ParseDriver checks a driver name.
func ParseDriver(s string) (Driver, error) {
	switch d := Driver(strings.ToLower(strings.TrimSpace(s))); d {
	case MySQL, PgSQL, SQLite:
		return d, nil
	case "postgres", "postgresql":
		return PgSQL, nil
	case "sqlite3":
		return SQLite, nil
	}
	return "", fmt.Errorf("unknown SQL driver %q: use mysql, pgsql or sqlite", s)
}

// Host is one server of a Config: a TCP address, or a unix socket (for
// PostgreSQL, the directory holding the socket).
type Host struct {
	Name   string // host name or IP; empty for a socket
	Port   int    // 0: the Config's port, else the driver's default
	Socket string // unix socket path (MySQL) or socket directory (PostgreSQL)
}

func (h Host) String() string {
	if h.Socket != "" {
		return "unix:" + h.Socket
	}
	if h.Port == 0 {
		return h.Name
	}
	return net.JoinHostPort(h.Name, strconv.Itoa(h.Port))
}

// Config says how to reach a database. Build it with ParseConnect or
// FromPostfix, or fill it in directly.
type Config struct {
	Driver Driver
	// Hosts are tried in order; a host that fails is skipped until it
	// answers again. Empty means localhost.
	Hosts    []Host
	Port     int // default port for hosts without one; 0 = 3306 or 5432
	User     string
	Password string
	DBName   string
	// Path is the database file for SQLite.
	Path string

	// TLS. For MySQL ssl_ca, ssl_ca_path, ssl_cert, ssl_key, ssl_cipher
	// and ssl_verify_server_cert; TLS is used when any of them is set.
	SSLCA, SSLCAPath, SSLCert, SSLKey, SSLCipher string
	// SSLVerifyServerCert checks the server's name against its
	// certificate. Dovecot 2.3 leaves it off unless asked; postcote turns
	// it on whenever a CA is given, unless ssl_verify_server_cert=no.
	SSLVerifyServerCert bool
	// CharacterSet is the MySQL connection character set (utf8mb4).
	CharacterSet string

	// PgParams are the other libpq keywords of a pgsql connect string
	// (sslmode, sslrootcert, application_name, ...), passed to pgx.
	PgParams map[string]string

	ConnectTimeout time.Duration // dialing one server; default 5 s
	QueryTimeout   time.Duration // one query, from send to last row; default 30 s
}

// Default timeouts.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultQueryTimeout   = 30 * time.Second
)

// String describes the configuration for logs, without the password.
func (c Config) String() string {
	if c.Driver == SQLite {
		return "sqlite:" + c.Path
	}
	var hs []string
	for _, h := range c.Hosts {
		hs = append(hs, h.String())
	}
	return fmt.Sprintf("%s:host=%s dbname=%s user=%s", c.Driver, strings.Join(hs, ","), c.DBName, c.User)
}

func (c Config) connectTimeout() time.Duration {
	if c.ConnectTimeout > 0 {
		return c.ConnectTimeout
	}
	return DefaultConnectTimeout
}

func (c Config) queryTimeout() time.Duration {
	if c.QueryTimeout > 0 {
		return c.QueryTimeout
	}
	return DefaultQueryTimeout
}

// splitConnect cuts "key=value key='quoted value'" into pairs, as libpq
// reads a conninfo string: values may be single-quoted, and inside quotes
// \' and \\ stand for ' and \.
func splitConnect(s string) ([][2]string, error) {
	var out [][2]string
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return out, nil
		}
		j := i
		for j < len(s) && s[j] != '=' && !isSpace(s[j]) {
			j++
		}
		key := s[i:j]
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		if j >= len(s) || s[j] != '=' {
			return nil, fmt.Errorf("connect string: %q is not key=value", truncate(key))
		}
		j++
		for j < len(s) && isSpace(s[j]) {
			j++
		}
		var val strings.Builder
		if j < len(s) && s[j] == '\'' {
			j++
			closed := false
			for j < len(s) {
				c := s[j]
				if c == '\\' && j+1 < len(s) {
					val.WriteByte(s[j+1])
					j += 2
					continue
				}
				if c == '\'' {
					closed = true
					j++
					break
				}
				val.WriteByte(c)
				j++
			}
			if !closed {
				return nil, fmt.Errorf("connect string: unterminated quote in value of %s", key)
			}
		} else {
			for j < len(s) && !isSpace(s[j]) {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				val.WriteByte(s[j])
				j++
			}
		}
		if key == "" {
			return nil, errors.New("connect string: empty key")
		}
		out = append(out, [2]string{strings.ToLower(key), val.String()})
		i = j
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// ParseConnect reads a Dovecot connect string for driver.
//
// As with libmysqlclient, mysql's host=localhost means the server's unix
// socket (/run/mysqld/mysqld.sock and the other usual places) when one
// exists, else TCP to localhost; no host at all means localhost. For
// pgsql, no host means pgx's (libpq's) default: PGHOST, else the socket
// in /var/run/postgresql or /tmp, else localhost.
//
// mysql (Dovecot's driver-mysql): host (repeatable; a value starting with
// "/" is a unix socket), port, user, password, dbname, connect_timeout,
// read_timeout, write_timeout (seconds), ssl_ca, ssl_ca_path, ssl_cert,
// ssl_key, ssl_cipher, ssl_verify_server_cert (yes/no), character_set,
// client_flags (accepted, ignored). option_file and option_group need
// libmysqlclient and are refused.
//
// pgsql: a libpq conninfo string; host may repeat (Dovecot's pool gives
// each host its own connections), host values starting with "/" are
// socket directories, and the other libpq keywords pass through.
//
// sqlite: the whole string is the database file's path.
func ParseConnect(driver Driver, s string) (Config, error) {
	c := Config{Driver: driver}
	s = strings.TrimSpace(s)
	if driver == SQLite {
		if s == "" {
			return c, errors.New("sqlite: connect must be the database file")
		}
		c.Path = s
		return c, nil
	}
	if driver != MySQL && driver != PgSQL {
		return c, fmt.Errorf("unknown SQL driver %q", driver)
	}
	pairs, err := splitConnect(s)
	if err != nil {
		return c, err
	}
	verifySet := false
	for _, kv := range pairs {
		key, val := kv[0], kv[1]
		switch key {
		case "host":
			c.Hosts = append(c.Hosts, parseDovecotHost(val))
			continue
		case "port":
			p, err := strconv.Atoi(val)
			if err != nil || p <= 0 || p > 65535 {
				return c, fmt.Errorf("connect string: invalid port %q", truncate(val))
			}
			c.Port = p
			continue
		case "user":
			c.User = val
			continue
		case "password":
			c.Password = val
			continue
		case "dbname":
			c.DBName = val
			continue
		case "connect_timeout":
			d, err := seconds(val)
			if err != nil {
				return c, fmt.Errorf("connect string: connect_timeout: %w", err)
			}
			c.ConnectTimeout = d
			continue
		}
		if driver == PgSQL {
			if key == "hostaddr" {
				c.Hosts = append(c.Hosts, Host{Name: val})
				continue
			}
			if !libpqKeys[key] {
				return c, fmt.Errorf("connect string: unknown pgsql setting %q", truncate(key))
			}
			if c.PgParams == nil {
				c.PgParams = map[string]string{}
			}
			c.PgParams[key] = val
			continue
		}
		switch key {
		case "read_timeout", "write_timeout":
			d, err := seconds(val)
			if err != nil {
				return c, fmt.Errorf("connect string: %s: %w", key, err)
			}
			if d > c.QueryTimeout {
				c.QueryTimeout = d
			}
		case "ssl_ca":
			c.SSLCA = val
		case "ssl_ca_path", "ssl_ca_dir":
			c.SSLCAPath = val
		case "ssl_cert":
			c.SSLCert = val
		case "ssl_key":
			c.SSLKey = val
		case "ssl_cipher":
			c.SSLCipher = val
		case "ssl_verify_server_cert":
			b, err := parseBool(val)
			if err != nil {
				return c, fmt.Errorf("connect string: ssl_verify_server_cert: %w", err)
			}
			c.SSLVerifyServerCert, verifySet = b, true
		case "character_set":
			c.CharacterSet = val
		case "client_flags":
			if _, err := strconv.Atoi(val); err != nil {
				return c, fmt.Errorf("connect string: client_flags: %q is not a number", truncate(val))
			}
		case "option_file", "option_group":
			return c, fmt.Errorf("connect string: %s needs libmysqlclient; give host, user, password and dbname instead", key)
		default:
			return c, fmt.Errorf("connect string: unknown mysql setting %q", truncate(key))
		}
	}
	if !verifySet && (c.SSLCA != "" || c.SSLCAPath != "") {
		c.SSLVerifyServerCert = true
	}
	return c, nil
}

// parseDovecotHost reads a host= value: a socket path, "name" or
// "name:port" is not Dovecot syntax (port= is), so only the path case is
// special.
func parseDovecotHost(v string) Host {
	if strings.HasPrefix(v, "/") {
		return Host{Socket: v}
	}
	return Host{Name: v}
}

func seconds(v string) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 86400 {
		return 0, fmt.Errorf("%q is not a number of seconds", truncate(v))
	}
	return time.Duration(n) * time.Second, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "y", "true", "1", "on":
		return true, nil
	case "no", "n", "false", "0", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes or no", truncate(v))
}

// libpqKeys are the conninfo keywords of libpq 15 that may appear in a
// pgsql connect string besides host, port, user, password, dbname and
// connect_timeout.
var libpqKeys = map[string]bool{
	"sslmode": true, "sslrootcert": true, "sslcert": true, "sslkey": true, "sslpassword": true,
	"sslcrl": true, "sslsni": true, "application_name": true, "fallback_application_name": true,
	"options": true, "target_session_attrs": true, "keepalives": true, "keepalives_idle": true,
	"keepalives_interval": true, "keepalives_count": true, "tcp_user_timeout": true,
	"client_encoding": true, "passfile": true, "service": true, "channel_binding": true,
	"gssencmode": true, "krbsrvname": true, "requirepeer": true, "ssl_min_protocol_version": true,
	"ssl_max_protocol_version": true, "load_balance_hosts": true,
}

// FromPostfix builds a Config from the parameters of a Postfix
// mysql_table(5), pgsql_table(5) or sqlite_table(5) file. hosts lists
// servers separated by spaces or commas: "unix:/path", "inet:host:port",
// "host:port" or "host". For sqlite, dbname is the file. Parameters that
// are not about the connection (query, result_format, ...) are ignored:
// the caller reads them.
func FromPostfix(driver Driver, params map[string]string) (Config, error) {
	c := Config{Driver: driver}
	if driver == SQLite {
		c.Path = strings.TrimSpace(params["dbpath"])
		if c.Path == "" {
			c.Path = strings.TrimSpace(params["dbname"])
		}
		if c.Path == "" {
			return c, errors.New("sqlite table: dbpath is not set")
		}
		return c, nil
	}
	if driver != MySQL && driver != PgSQL {
		return c, fmt.Errorf("unknown SQL driver %q", driver)
	}
	for _, h := range strings.FieldsFunc(params["hosts"], func(r rune) bool { return r == ' ' || r == ',' || r == '\t' }) {
		host, err := parsePostfixHost(h)
		if err != nil {
			return c, err
		}
		c.Hosts = append(c.Hosts, host)
	}
	c.User, c.Password, c.DBName = params["user"], params["password"], params["dbname"]
	if driver == MySQL {
		c.SSLCA, c.SSLCAPath = params["tls_cafile"], params["tls_capath"]
		c.SSLCert, c.SSLKey, c.SSLCipher = params["tls_cert_file"], params["tls_key_file"], params["tls_ciphers"]
		if v, ok := params["tls_verify_cert"]; ok {
			b, err := parseBool(v)
			if err != nil {
				return c, fmt.Errorf("tls_verify_cert: %w", err)
			}
			c.SSLVerifyServerCert = b
		}
		if params["option_file"] != "" || params["option_group"] != "" {
			return c, errors.New("option_file and option_group need libmysqlclient; give hosts, user, password and dbname instead")
		}
	}
	return c, nil
}

func parsePostfixHost(h string) (Host, error) {
	switch {
	case strings.HasPrefix(h, "unix:"):
		p := strings.TrimPrefix(h, "unix:")
		if p == "" {
			return Host{}, fmt.Errorf("hosts: %q has no path", truncate(h))
		}
		return Host{Socket: p}, nil
	case strings.HasPrefix(h, "inet:"):
		h = strings.TrimPrefix(h, "inet:")
	case strings.HasPrefix(h, "/"):
		return Host{Socket: h}, nil
	}
	name, port, err := net.SplitHostPort(h)
	if err != nil {
		if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") && strings.Count(h, ":") == 1 {
			return Host{}, fmt.Errorf("hosts: %q: %v", truncate(h), err)
		}
		return Host{Name: strings.Trim(h, "[]")}, nil
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return Host{}, fmt.Errorf("hosts: %q: invalid port", truncate(h))
	}
	return Host{Name: name, Port: p}, nil
}
