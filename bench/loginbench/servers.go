package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// dovecotBinary is Debian's Dovecot 2.3 (dovecot-core, dovecot-imapd; the
// LDAP and SQL drivers are in dovecot-ldap, dovecot-mysql, dovecot-pgsql).
const dovecotBinary = "/usr/sbin/dovecot"

// startTimeout bounds how long a server may take to come up or go down.
const startTimeout = 30 * time.Second

// db is one passdb or userdb section: driver and args.
type db struct{ driver, args string }

// serverConf is what both servers are given: the same users through the
// same driver, IMAP on one loopback port, plaintext logins allowed
// without TLS (the logins measured are the password checks, not TLS
// handshakes), mail in Maildirs under mailRoot.
type serverConf struct {
	port     int
	passdb   db
	userdb   db
	mailRoot string
	// dovecotPerf: Dovecot only, imap-login in high-performance mode.
	dovecotPerf bool
}

// dovecotConf is the part of dovecot.conf that postcote and Dovecot share,
// in Dovecot 2.3's dialect. Everything not set is either server's
// default: no auth cache, auth_failure_delay 2 s (no login here fails),
// Dovecot's login processes in high-security mode (one per connection).
func (c serverConf) dovecotConf() string {
	return fmt.Sprintf(`protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:~/Maildir

passdb {
  driver = %s
  args = %s
}
userdb {
  driver = %s
  args = %s
  override_fields = home=%s/%%d/%%n
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %d
  }
  inet_listener imaps {
    port = 0
  }
}
`, c.passdb.driver, c.passdb.args, c.userdb.driver, c.userdb.args, c.mailRoot, c.port)
}

// server is a running postcote or Dovecot.
type server struct {
	addr string
	log  string // its log file, for errors
	proc *child
}

// startPostcote runs `postcote serve -c dir` with c as its dovecot.conf
// and no main.cf (so no MTA role: only IMAP and its auth run).
func startPostcote(ctx context.Context, bin, dir string, c serverConf) (*server, error) {
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(c.dovecotConf()), 0o644); err != nil {
		return nil, err
	}
	s := &server{addr: "127.0.0.1:" + strconv.Itoa(c.port), log: filepath.Join(dir, "serve.log")}
	var err error
	s.proc, err = startChild(bin, []string{"serve", "-c", dir}, s.log)
	if err != nil {
		return nil, err
	}
	if err := waitDial(ctx, s.addr, s.proc.exited); err != nil {
		s.stop()
		return nil, fmt.Errorf("postcote serve did not come up: %w\n%s", err, tail(s.log, 15))
	}
	return s, nil
}

// startDovecot runs a private Dovecot (`dovecot -F -c dir/dovecot.conf`)
// with its own base_dir, state_dir and log in dir; /etc/dovecot is
// neither read nor started.
func startDovecot(ctx context.Context, dir string, c serverConf) (*server, error) {
	if _, err := os.Stat(dovecotBinary); err != nil {
		return nil, fmt.Errorf("%s: %w (apt-get install dovecot-core dovecot-imapd)", dovecotBinary, err)
	}
	for _, sub := range []string{"run", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	perf := ""
	if c.dovecotPerf {
		// https://doc.dovecot.org/admin_manual/login_processes/: one
		// long-lived login process per CPU serving many connections.
		perf = fmt.Sprintf("service imap-login {\n  service_count = 0\n  process_min_avail = %d\n}\n", runtime.NumCPU())
	}
	conf := fmt.Sprintf("instance_name = loginbench-%s\nbase_dir = %s/run\nstate_dir = %s/state\nlog_path = %s/dovecot.log\n",
		filepath.Base(dir), dir, dir, dir) + c.dovecotConf() + perf
	path := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	s := &server{addr: "127.0.0.1:" + strconv.Itoa(c.port), log: filepath.Join(dir, "dovecot.log")}
	// doveconf's check gives a clearer error than a master that exits.
	if out, err := exec.CommandContext(ctx, "doveconf", "-c", path, "-n").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dovecot configuration: %v\n%s", err, out)
	}
	var err error
	s.proc, err = startChild(dovecotBinary, []string{"-F", "-c", path}, filepath.Join(dir, "master.out"))
	if err != nil {
		return nil, err
	}
	if err := waitDial(ctx, s.addr, s.proc.exited); err != nil {
		s.stop()
		return nil, fmt.Errorf("dovecot did not come up: %w\n%s", err, tail(s.log, 15))
	}
	return s, nil
}

// stop ends the server and waits for it.
func (s *server) stop() error { return s.proc.stop() }

// child is a server process in a process group of its own, so that
// stopping it reaches the processes it forked (Dovecot's auth, login and
// imap processes).
type child struct {
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

func startChild(bin string, args []string, logPath string) (*child, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.exited)
	}()
	return c, nil
}

// stop sends SIGTERM to the child's process group, and SIGKILL if it has
// not exited within startTimeout.
func (c *child) stop() error {
	pid := c.cmd.Process.Pid
	select {
	case <-c.exited:
		return nil
	default:
	}
	syscall.Kill(-pid, syscall.SIGTERM)
	select {
	case <-c.exited:
		return nil
	case <-time.After(startTimeout):
		syscall.Kill(-pid, syscall.SIGKILL)
		<-c.exited
		return fmt.Errorf("%s (pid %d) did not stop on SIGTERM within %v; killed", filepath.Base(c.cmd.Path), pid, startTimeout)
	}
}

// waitDial polls addr until it accepts a connection, the process exits,
// ctx ends or startTimeout passes.
func waitDial(ctx context.Context, addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the server exited")
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// execOutput runs a command and returns its standard output.
func execOutput(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	return string(out), err
}
