package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// PostgreSQL for tests. StartPostgres runs initdb (trust for the unix
// socket, SCRAM passwords over TCP) and "postgres -D DIR -k DIR -p PORT
// -h 127.0.0.1" from Debian's /usr/lib/postgresql/*/bin. postgres refuses
// to run as root, so when the test is root the data directory belongs to
// the "postgres" user and both programs run with its uid. Each call gives
// a server of its own, so a test may Stop and Start it.

// Postgres is a running (or stopped) PostgreSQL server.
type Postgres struct {
	Host      string // "127.0.0.1"
	Port      int
	SocketDir string // the unix socket's directory; the superuser logs in there without a password
	Dir       string // data directory
	Superuser string // the bootstrap superuser's name

	t    testing.TB
	proc *childProc
}

// postgresBinDir finds the newest /usr/lib/postgresql/N/bin holding
// postgres and initdb, or a directory on PATH with both.
func postgresBinDir() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, d := range dirs {
		if isExec(filepath.Join(d, "postgres")) && isExec(filepath.Join(d, "initdb")) {
			return d, nil
		}
	}
	return "", fmt.Errorf("postgres and initdb not found under /usr/lib/postgresql/*/bin or on PATH")
}

func isExec(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// StartPostgres starts a PostgreSQL server for t.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	bin, err := postgresBinDir()
	if err != nil {
		skipOrFail(t, "PostgreSQL", "postgresql", err)
	}
	base := shortTempDir(t, "pcpg-")
	p := &Postgres{Host: "127.0.0.1", Port: FreePorts(t, 1)[0], SocketDir: base, Dir: filepath.Join(base, "data"), t: t}
	var cred *syscall.Credential
	p.Superuser = "postgres"
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user (from the postgresql package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
		// The temp dir is 0700 root-owned until chowned; the parent
		// (/tmp) is world-searchable.
	} else if u, err := user.Current(); err == nil {
		p.Superuser = u.Username
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", p.Dir, "-U", p.Superuser,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = base
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.proc = &childProc{name: "postgres", bin: filepath.Join(bin, "postgres"), cred: cred, args: []string{
		"-D", p.Dir, "-k", base, "-p", strconv.Itoa(p.Port), "-h", "127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "shared_buffers=16MB", "-c", "max_connections=200", "-c", "logging_collector=off",
	}}
	t.Cleanup(p.Stop)
	p.Start()
	return p
}

// Start starts the server (again, after Stop) and waits until it
// answers queries.
func (p *Postgres) Start() {
	p.t.Helper()
	if err := p.proc.start(nil); err != nil {
		p.t.Fatalf("postgres: %v\n%s", err, p.proc.Log())
	}
	if err := p.proc.waitReady(30*time.Second, p.Port, func(ctx context.Context) error {
		db, err := p.admin("postgres")
		if err != nil {
			return err
		}
		defer db.Close()
		return db.PingContext(ctx)
	}); err != nil {
		p.Stop()
		p.t.Fatalf("postgres did not come up: %v\n%s", err, p.proc.Log())
	}
}

// Stop stops the server (SIGTERM is postgres's "smart" shutdown; SIGINT
// "fast" does not wait for clients, which is what a test wants) and
// waits for it.
func (p *Postgres) Stop() {
	p.proc.mu.Lock()
	cmd := p.proc.cmd
	p.proc.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(syscall.SIGINT)
	}
	p.proc.stop()
}

// Running reports whether the server is up.
func (p *Postgres) Running() bool { return p.proc.running() }

// Addr returns "127.0.0.1:PORT".
func (p *Postgres) Addr() string { return Addr(p.Port) }

// Log returns what the server printed.
func (p *Postgres) Log() string { return p.proc.Log() }

func (p *Postgres) admin(dbname string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable connect_timeout=5",
		p.SocketDir, p.Port, p.Superuser, dbname))
	if err != nil {
		return nil, err
	}
	return stdlib.OpenDB(*cfg), nil
}

// Exec runs SQL statements as the superuser in database dbname
// ("postgres" when empty). It fails the test on error.
func (p *Postgres) Exec(dbname string, stmts ...string) {
	p.t.Helper()
	if err := p.ExecErr(dbname, stmts...); err != nil {
		p.t.Fatal(err)
	}
}

// ExecErr is Exec returning the error. The statements share one
// connection.
func (p *Postgres) ExecErr(dbname string, stmts ...string) error {
	if dbname == "" {
		dbname = "postgres"
	}
	db, err := p.admin(dbname)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// One connection for all, so that "USE db" or SET carry over.
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %v", "postgres", err)
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s); err != nil {
			return fmt.Errorf("postgres: %v\nin: %s", err, s)
		}
	}
	return nil
}

// CreateDatabase creates a login role user with password and a database
// name it owns.
func (p *Postgres) CreateDatabase(name, user, password string) {
	p.t.Helper()
	p.Exec("", fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, quoteIdent(user), strings.ReplaceAll(password, "'", "''")),
		fmt.Sprintf(`CREATE DATABASE %s OWNER %s ENCODING 'UTF8'`, quoteIdent(name), quoteIdent(user)))
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
