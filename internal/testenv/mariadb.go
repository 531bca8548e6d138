package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// MariaDB for tests. StartMariaDB initialises a data directory with
// mariadb-install-db (root@localhost with an empty password, reachable
// only through the unix socket of the test), then runs
// "mariadbd --no-defaults" on 127.0.0.1 with a free port, as a child of
// the test in its own process group, stopped by pid in t.Cleanup. Each
// call gives a server of its own, so a test may Stop and Start it. The
// server also offers TLS with a certificate for 127.0.0.1 and localhost
// issued by a TestCA (CAFile), for ssl_ca tests.

// MariaDB is a running (or stopped) mariadbd.
type MariaDB struct {
	Host   string // "127.0.0.1"
	Port   int
	Socket string // unix socket; root logs in there without a password
	Dir    string // data directory
	CA     *TestCA
	CAFile string // PEM of the CA that signed the server's certificate

	t    testing.TB
	proc *childProc
	args []string
}

// mariadbBinaries finds mariadbd (in /usr/sbin) and mariadb-install-db.
func mariadbBinaries() (server, install string, err error) {
	server, err = findBinary([]string{"mariadbd", "mysqld"}, "/usr/sbin", "/usr/local/sbin", "/usr/libexec")
	if err != nil {
		return "", "", err
	}
	install, err = findBinary([]string{"mariadb-install-db", "mysql_install_db"}, "/usr/bin", "/usr/local/bin")
	return server, install, err
}

// findBinary looks for the first of names on PATH, then in dirs.
func findBinary(names []string, dirs ...string) (string, error) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, nil
		}
		for _, d := range dirs {
			p := filepath.Join(d, n)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
	}
	return "", fmt.Errorf("%s not found", strings.Join(names, " or "))
}

// skipOrFail skips a test whose server is not installed when not root,
// and fails it when root (scripts/install-test-deps.sh installs it).
func skipOrFail(t testing.TB, what, pkgs string, err error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("%s not installed (%v): install the Debian packages %s, or run make test as root", what, err, pkgs)
	}
	t.Fatalf("%s not installed (%v): run scripts/install-test-deps.sh", what, err)
}

// shortTempDir makes a directory with a short path (unix socket paths are
// limited to 107 bytes) removed at cleanup.
func shortTempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// StartMariaDB starts a MariaDB server for t.
func StartMariaDB(t testing.TB) *MariaDB {
	t.Helper()
	server, install, err := mariadbBinaries()
	if err != nil {
		skipOrFail(t, "MariaDB", "mariadb-server", err)
	}
	base := shortTempDir(t, "pcmy-")
	m := &MariaDB{
		Host: "127.0.0.1", Port: FreePorts(t, 1)[0],
		Socket: filepath.Join(base, "mysqld.sock"), Dir: filepath.Join(base, "data"), t: t,
	}
	var asRoot []string
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	initArgs := append([]string{"--no-defaults", "--datadir=" + m.Dir, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}, asRoot...)
	cmd := exec.CommandContext(ctx, install, initArgs...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.CA = NewTestCA(t, "postcote mariadb test CA")
	m.CAFile = m.CA.WriteCert(t, base)
	certPEM, keyPEM := m.CA.Issue(t, "127.0.0.1", "localhost")
	certFile, keyFile := filepath.Join(base, "server.pem"), filepath.Join(base, "server.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	// --no-defaults must come first.
	m.args = append([]string{"--no-defaults", "--ssl-ca=" + m.CAFile, "--ssl-cert=" + certFile, "--ssl-key=" + keyFile, "--datadir=" + m.Dir, "--socket=" + m.Socket,
		fmt.Sprintf("--port=%d", m.Port), "--bind-address=127.0.0.1", "--skip-name-resolve",
		"--pid-file=" + filepath.Join(base, "mysqld.pid"), "--log-error=" + filepath.Join(base, "error.log"),
		"--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-log-file-size=8M",
		"--innodb-flush-log-at-trx-commit=0", "--max-connections=200"}, asRoot...)
	m.proc = &childProc{name: "mariadbd", bin: server, args: m.args, logFile: filepath.Join(base, "error.log")}
	t.Cleanup(m.Stop)
	m.Start()
	return m
}

// Start starts the server (again, after Stop) on the same port and data,
// and waits until it answers queries.
func (m *MariaDB) Start() {
	m.t.Helper()
	if err := m.proc.start(nil); err != nil {
		m.t.Fatalf("mariadbd: %v\n%s", err, m.proc.Log())
	}
	if err := m.proc.waitReady(30*time.Second, m.Port, func(ctx context.Context) error {
		db := m.admin()
		defer db.Close()
		return db.PingContext(ctx)
	}); err != nil {
		m.Stop()
		m.t.Fatalf("mariadbd did not come up: %v\n%s", err, m.proc.Log())
	}
}

// Stop stops the server (SIGTERM, SIGKILL after 30 s) and waits for it.
func (m *MariaDB) Stop() { m.proc.stop() }

// Running reports whether the server is up.
func (m *MariaDB) Running() bool { return m.proc.running() }

// Addr returns "127.0.0.1:PORT".
func (m *MariaDB) Addr() string { return Addr(m.Port) }

// Log returns the server's error log.
func (m *MariaDB) Log() string { return m.proc.Log() }

func (m *MariaDB) admin() *sql.DB {
	c := mysql.NewConfig()
	c.User, c.Net, c.Addr = "root", "unix", m.Socket
	c.MultiStatements = true
	c.Timeout = 5 * time.Second
	c.Logger = discardMySQLLog{}
	conn, _ := mysql.NewConnector(c) // only fails on an invalid config
	return sql.OpenDB(conn)
}

type discardMySQLLog struct{}

func (discardMySQLLog) Print(...any) {}

// Exec runs SQL statements as root (several per string are allowed).
// It fails the test on error.
func (m *MariaDB) Exec(stmts ...string) {
	m.t.Helper()
	if err := m.ExecErr(stmts...); err != nil {
		m.t.Fatal(err)
	}
}

// ExecErr is Exec returning the error. The statements share one
// connection.
func (m *MariaDB) ExecErr(stmts ...string) error {
	db := m.admin()
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One connection for all, so that "USE db" or SET carry over.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %v", "mariadb", err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("mariadb: %v\nin: %s", err, s)
		}
	}
	return nil
}

// CreateDatabase creates database name and a user with password that
// may connect from 127.0.0.1 and localhost and read and write it.
func (m *MariaDB) CreateDatabase(name, user, password string) {
	m.t.Helper()
	q := func(s string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'" }
	m.Exec(fmt.Sprintf("CREATE DATABASE `%s` CHARACTER SET utf8mb4", name))
	for _, host := range []string{"127.0.0.1", "localhost"} {
		m.Exec(fmt.Sprintf("CREATE USER %s@%s IDENTIFIED BY %s", q(user), q(host), q(password)),
			fmt.Sprintf("GRANT ALL ON `%s`.* TO %s@%s", name, q(user), q(host)))
	}
}

// childProc is a database server run as a child process in its own
// process group.
type childProc struct {
	name, bin string
	args      []string
	logFile   string // the server's own log file, if it writes one
	cred      *syscall.Credential

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	exit chan error
	out  syncBuffer
}

func (p *childProc) start(env []string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s already running", p.name)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	if err := cmd.Start(); err != nil {
		return err
	}
	done, exit := make(chan struct{}), make(chan error, 1)
	p.cmd, p.done, p.exit = cmd, done, exit
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		exit <- err
		close(done)
	}()
	return nil
}

// waitReady polls the port, then ready, until both succeed.
func (p *childProc) waitReady(limit time.Duration, port int, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	p.mu.Lock()
	exit := p.exit
	p.mu.Unlock()
	if err := waitPort(ctx, Addr(port), exit); err != nil {
		return err
	}
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := ready(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case e := <-exit:
			return fmt.Errorf("%s exited: %v", p.name, e)
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v", p.name, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (p *childProc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (p *childProc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Log returns what the server printed and its log file.
func (p *childProc) Log() string {
	s := p.out.String()
	if p.logFile != "" {
		if b, err := os.ReadFile(p.logFile); err == nil {
			if len(b) > 64<<10 {
				b = b[len(b)-64<<10:]
			}
			s += string(b)
		}
	}
	return s
}

// syncBuffer keeps the first MiB a child process prints (enough to see
// why it failed), safe for exec's writer goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 1<<20 {
		return len(p), nil
	}
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
