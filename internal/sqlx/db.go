package sqlx

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// ErrUnavailable is wrapped by errors that mean the database could not
// be reached or did not answer in time: a temporary failure, worth a
// retry later.
var ErrUnavailable = errors.New("database unavailable")

// Error is a failed query or connection. Its text never holds the
// password.
type Error struct {
	Host      string // the server that failed; "" for SQLite
	Msg       string // the driver's message, scrubbed
	Temporary bool   // the server could not be reached or timed out
	cause     error  // context errors only; driver errors are not kept
}

func (e *Error) Error() string {
	if e.Host == "" {
		return e.Msg
	}
	return e.Host + ": " + e.Msg
}

// Is makes errors.Is(err, ErrUnavailable) true for temporary failures.
func (e *Error) Is(target error) bool { return target == ErrUnavailable && e.Temporary }

// Unwrap gives context.DeadlineExceeded or context.Canceled when those
// caused the failure.
func (e *Error) Unwrap() error { return e.cause }

// DB is a set of connection pools, one per configured host.
type DB struct {
	cfg   Config
	pools []pool

	mu   sync.Mutex
	good int // index of the host that answered last
}

type pool struct {
	name string
	db   *sql.DB
}

// Open prepares the pools. It does not dial: the first query does, so a
// database that is down at start-up only fails the lookups made while it
// is down.
func Open(cfg Config) (*DB, error) {
	d := &DB{cfg: cfg}
	switch cfg.Driver {
	case SQLite:
		if cfg.Path == "" {
			return nil, errors.New("sqlite: no database file")
		}
		path, err := filepath.Abs(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("sqlite %s: %w", cfg.Path, err)
		}
		// busy_timeout lets a lookup wait for a writer instead of failing
		// with SQLITE_BUSY; mode=rw does not create a missing file;
		// query_only: lookups never write.
		dsn := (&url.URL{Scheme: "file", OmitHost: true, Path: path,
			RawQuery: "mode=rw&_pragma=busy_timeout(5000)&_pragma=query_only(true)"}).String()
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("sqlite %s: %w", cfg.Path, err)
		}
		d.pools = []pool{{name: "", db: db}}
	case MySQL, PgSQL:
		hosts := cfg.Hosts
		if len(hosts) == 0 {
			// libmysqlclient's and libpq's default: the local server.
			hosts = []Host{{Name: "localhost"}}
			if cfg.Driver == PgSQL {
				hosts = []Host{{}}
			}
		}
		for _, h := range hosts {
			db, err := d.openHost(h)
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("%s %s: %s", cfg.Driver, h, d.scrub(err.Error()))
			}
			// As many idle connections as open ones: a burst of
			// logins must not open and close connections over and
			// over (each a fork and an authentication on PostgreSQL).
			db.SetMaxOpenConns(16)
			db.SetMaxIdleConns(16)
			db.SetConnMaxIdleTime(5 * time.Minute)
			d.pools = append(d.pools, pool{name: h.String(), db: db})
		}
	default:
		return nil, fmt.Errorf("unknown SQL driver %q", cfg.Driver)
	}
	return d, nil
}

// discardLogger silences go-sql-driver's own logging ("[mysql] ...
// unexpected EOF") on stderr; failures are reported through errors.
type discardLogger struct{}

func (discardLogger) Print(...any) {}

func (d *DB) openHost(h Host) (*sql.DB, error) {
	port := h.Port
	if port == 0 {
		port = d.cfg.Port
	}
	switch d.cfg.Driver {
	case MySQL:
		mc := mysql.NewConfig()
		mc.User, mc.Passwd, mc.DBName = d.cfg.User, d.cfg.Password, d.cfg.DBName
		sock := h.Socket
		if sock == "" && h.Name == "localhost" {
			// libmysqlclient reaches "localhost" through the unix
			// socket, not TCP; Debian's server puts it here.
			sock = defaultMySQLSocket()
		}
		if sock != "" {
			mc.Net, mc.Addr = "unix", sock
		} else {
			if port == 0 {
				port = 3306
			}
			mc.Net, mc.Addr = "tcp", net.JoinHostPort(h.Name, strconv.Itoa(port))
		}
		mc.Timeout = d.cfg.connectTimeout()
		mc.ReadTimeout, mc.WriteTimeout = d.cfg.queryTimeout(), d.cfg.queryTimeout()
		mc.InterpolateParams = true
		mc.AllowNativePasswords = true
		mc.Logger = discardLogger{}
		cs := d.cfg.CharacterSet
		if cs == "" {
			cs = "utf8mb4"
		}
		if err := mc.Apply(mysql.Charset(cs, "")); err != nil {
			return nil, err
		}
		tc, err := d.mysqlTLS(h)
		if err != nil {
			return nil, err
		}
		mc.TLS = tc
		conn, err := mysql.NewConnector(mc)
		if err != nil {
			return nil, err
		}
		return sql.OpenDB(conn), nil
	default: // PgSQL
		var b strings.Builder
		add := func(k, v string) {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(k + "='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'")
		}
		if h.Socket != "" {
			add("host", h.Socket)
		} else if h.Name != "" {
			add("host", h.Name)
		}
		if port != 0 {
			add("port", strconv.Itoa(port))
		}
		if d.cfg.User != "" {
			add("user", d.cfg.User)
		}
		if d.cfg.Password != "" {
			add("password", d.cfg.Password)
		}
		if d.cfg.DBName != "" {
			add("dbname", d.cfg.DBName)
		}
		add("connect_timeout", strconv.Itoa(int((d.cfg.connectTimeout()+time.Second-1)/time.Second)))
		for k, v := range d.cfg.PgParams {
			add(k, v)
		}
		if _, ok := d.cfg.PgParams["sslmode"]; !ok && h.Socket != "" {
			add("sslmode", "disable")
		}
		pc, err := pgx.ParseConfig(b.String())
		if err != nil {
			return nil, err
		}
		return stdlib.OpenDB(*pc), nil
	}
}

// mysqlSockets are where MariaDB and MySQL packages put the server's
// socket.
var mysqlSockets = [...]string{"/run/mysqld/mysqld.sock", "/var/run/mysqld/mysqld.sock", "/var/lib/mysql/mysql.sock", "/tmp/mysql.sock"}

func defaultMySQLSocket() string {
	for _, p := range mysqlSockets {
		if st, err := os.Stat(p); err == nil && st.Mode()&os.ModeSocket != 0 {
			return p
		}
	}
	return ""
}

// mysqlTLS builds the TLS settings of the ssl_* keys, or nil for none.
func (d *DB) mysqlTLS(h Host) (*tls.Config, error) {
	c := d.cfg
	if c.SSLCA == "" && c.SSLCAPath == "" && c.SSLCert == "" && c.SSLKey == "" && c.SSLCipher == "" {
		return nil, nil
	}
	name := h.Name
	if h.Socket != "" {
		name = "localhost" // as libmysqlclient checks a socket connection
	}
	tc := &tls.Config{ServerName: name, MinVersion: tls.VersionTLS12}
	if c.SSLCA != "" || c.SSLCAPath != "" {
		roots := x509.NewCertPool()
		var files []string
		if c.SSLCA != "" {
			files = append(files, c.SSLCA)
		}
		if c.SSLCAPath != "" {
			ents, err := os.ReadDir(c.SSLCAPath)
			if err != nil {
				return nil, fmt.Errorf("ssl_ca_path: %w", err)
			}
			for _, e := range ents {
				if !e.IsDir() {
					files = append(files, filepath.Join(c.SSLCAPath, e.Name()))
				}
			}
		}
		for _, f := range files {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("ssl_ca: %w", err)
			}
			if !roots.AppendCertsFromPEM(pem) && f == c.SSLCA {
				return nil, fmt.Errorf("ssl_ca %s: no PEM certificate", f)
			}
		}
		tc.RootCAs = roots
	}
	if c.SSLCert != "" || c.SSLKey != "" {
		cert, err := tls.LoadX509KeyPair(c.SSLCert, c.SSLKey)
		if err != nil {
			return nil, fmt.Errorf("ssl_cert/ssl_key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if !c.SSLVerifyServerCert {
		// The chain is still checked against the CA when one is given;
		// only the host name is not (Dovecot's
		// ssl_verify_server_cert=no).
		roots := tc.RootCAs
		tc.InsecureSkipVerify = true
		if roots != nil {
			tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
				return verifyChain(raw, roots)
			}
		}
	}
	return tc, nil
}

func verifyChain(raw [][]byte, roots *x509.CertPool) error {
	if len(raw) == 0 {
		return errors.New("server sent no certificate")
	}
	certs := make([]*x509.Certificate, len(raw))
	for i, r := range raw {
		c, err := x509.ParseCertificate(r)
		if err != nil {
			return err
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
	return err
}

// Close closes every pool.
func (d *DB) Close() error {
	var first error
	for _, p := range d.pools {
		if err := p.db.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Config returns the configuration the DB was opened with.
func (d *DB) Config() Config { return d.cfg }

// Row is one result row: column names (as the query's AS clauses name
// them) and values, nil for SQL NULL.
type Row struct {
	Columns []string
	Values  []*string
}

// Get returns the value of the named column (case-insensitive).
func (r Row) Get(col string) (string, bool) {
	for i, c := range r.Columns {
		if strings.EqualFold(c, col) && r.Values[i] != nil {
			return *r.Values[i], true
		}
	}
	return "", false
}

// Query runs st and returns at most limit rows (limit <= 0: all), and
// whether there were more. It retries on the next host, or once more on
// a single host, when the failure was temporary.
func (d *DB) Query(ctx context.Context, st Stmt, limit int) (rows []Row, more bool, err error) {
	err = d.Each(ctx, st, func(r Row) error {
		if limit > 0 && len(rows) >= limit {
			more = true
			return errStop
		}
		rows = append(rows, r)
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return rows, more, err
}

var errStop = errors.New("stop")

// Each runs st and calls fn for every row. An error from fn stops the
// query and is returned as is.
func (d *DB) Each(ctx context.Context, st Stmt, fn func(Row) error) error {
	d.mu.Lock()
	first := d.good
	d.mu.Unlock()
	attempts := len(d.pools)
	if attempts == 1 {
		attempts = 2 // one retry: a connection the server closed while idle
	}
	var lastErr error
	for a := 0; a < attempts; a++ {
		i := (first + a) % len(d.pools)
		delivered := false
		err := d.run(ctx, d.pools[i], st, func(r Row) error {
			delivered = true
			return fn(r)
		})
		if err == nil {
			if i != first {
				d.mu.Lock()
				d.good = i
				d.mu.Unlock()
			}
			return nil
		}
		lastErr = err
		var se *Error
		if !errors.As(err, &se) || !se.Temporary || delivered || ctx.Err() != nil {
			return err
		}
	}
	return lastErr
}

func (d *DB) run(ctx context.Context, p pool, st Stmt, fn func(Row) error) error {
	qctx, cancel := context.WithTimeout(ctx, d.cfg.queryTimeout())
	defer cancel()
	rows, err := p.db.QueryContext(qctx, st.SQL, st.Args...)
	if err != nil {
		return d.wrap(p.name, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return d.wrap(p.name, err)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return d.wrap(p.name, err)
		}
		r := Row{Columns: cols, Values: make([]*string, len(cols))}
		for i, v := range vals {
			if v.Valid {
				s := v.String
				r.Values[i] = &s
			}
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return d.wrap(p.name, err)
	}
	return nil
}

// wrap turns a driver error into an *Error with the password scrubbed.
func (d *DB) wrap(host string, err error) error {
	e := &Error{Host: host, Msg: d.scrub(err.Error()), Temporary: IsTemporary(err)}
	if errors.Is(err, context.DeadlineExceeded) {
		e.cause = context.DeadlineExceeded
		e.Msg = "query timed out: " + e.Msg
	} else if errors.Is(err, context.Canceled) {
		e.cause = context.Canceled
	}
	return e
}

// scrub removes the password from a message.
func (d *DB) scrub(msg string) string {
	if d.cfg.Password == "" {
		return msg
	}
	return strings.ReplaceAll(msg, d.cfg.Password, "<hidden>")
}

// IsTemporary reports whether a driver error means the server could not
// be reached, dropped the connection, was shutting down, or did not
// answer in time.
func IsTemporary(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ENOENT) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		// Class 08 connection exception, 53 insufficient resources,
		// 57P01-57P05 shutdown and cannot-connect-now.
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "53") || strings.HasPrefix(pe.Code, "57P")
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	if pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return true
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		switch me.Number {
		case 1040, 1053, 1205, 1213, 1927, 2002, 2003, 2006, 2013:
			// too many connections, server shutdown, lock wait timeout,
			// deadlock, connection killed, client-side connection losses.
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "connection refused") || strings.Contains(msg, "broken pipe") ||
		strings.Contains(msg, "connection reset") || strings.Contains(msg, "bad connection") ||
		strings.Contains(msg, "SQLITE_BUSY") || strings.Contains(msg, "database is locked")
}
