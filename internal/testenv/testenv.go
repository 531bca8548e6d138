// Package testenv starts real servers for tests: postcote itself (built
// once per test binary from this checkout, run as a child process with a
// configuration in a temporary folder), and in later suites OpenLDAP's
// slapd, MariaDB and PostgreSQL from Debian's packages. Everything listens
// on 127.0.0.1 with ports the kernel chose, and is stopped by t.Cleanup.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"postcote/internal/devsetup"
)

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary builds cmd/postcote once per test process and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "postcote-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "postcote")
		cmd := exec.Command("go", "build", "-o", buildPath, "postcote/cmd/postcote")
		cmd.Dir = moduleRoot()
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

func moduleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// Postcote is a running `postcote serve`.
type Postcote struct {
	t      testing.TB
	Dir    string
	Ports  devsetup.Ports
	User   string
	Pass   string
	cmd    *exec.Cmd
	done   chan struct{} // closed when the running server has exited
	mu     sync.Mutex
	stderr bytes.Buffer
}

// Addr returns "127.0.0.1:port".
func Addr(port int) string { return fmt.Sprintf("127.0.0.1:%d", port) }

// StartDev writes a `postcote dev` configuration with free ports into a
// temporary folder and starts `postcote serve -c` on it.
func StartDev(t testing.TB) *Postcote {
	t.Helper()
	p := NewDev(t)
	p.Start()
	return p
}

// NewDev writes the configuration without starting the server, so a test
// can edit it first.
func NewDev(t testing.TB) *Postcote {
	t.Helper()
	bin := Binary(t)
	dir := t.TempDir()
	pp := FreePorts(t, 5)
	p := &Postcote{t: t, Dir: dir, User: "demo@example.test", Pass: "demo-pass-123",
		Ports: devsetup.Ports{SMTP: pp[0], Submission: pp[1], Submissions: pp[2], IMAP: pp[3], IMAPS: pp[4]}}
	// The dev writer is the one postcote dev uses; the password hash comes
	// from the binary itself so the test exercises the real scheme code.
	hash, err := exec.Command(bin, "doveadm", "pw", "-s", "BLF-CRYPT", "-p", p.Pass).Output()
	if err != nil {
		t.Fatalf("doveadm pw: %v", err)
	}
	if _, err := devsetup.Write(devsetup.Options{Dir: dir, User: p.User, Password: p.Pass, Ports: p.Ports,
		Hash: func(string) (string, error) { return string(bytes.TrimSpace(hash)), nil }}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return p
}

// Start runs `postcote serve -c DIR` and waits until every port answers.
func (p *Postcote) Start() {
	p.t.Helper()
	cmd := exec.Command(Binary(p.t), "serve", "-log-stderr", "-c", p.Dir)
	cmd.Stdout = &lockedWriter{p}
	cmd.Stderr = &lockedWriter{p}
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	exited := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		close(done)
		exited <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, port := range []int{p.Ports.SMTP, p.Ports.Submission, p.Ports.Submissions, p.Ports.IMAP, p.Ports.IMAPS} {
		if err := waitPort(ctx, Addr(port), exited); err != nil {
			p.t.Fatalf("postcote serve did not come up: %v\n%s", err, p.Log())
		}
	}
}

func waitPort(ctx context.Context, addr string, exited <-chan error) error {
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("server exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", addr, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Log returns what the server printed so far.
func (p *Postcote) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Signal sends sig to the server.
func (p *Postcote) Signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		cmd.Process.Signal(sig)
	}
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it
// to be gone.
func (p *Postcote) Kill() { p.stopWith(syscall.SIGKILL) }

// Stop stops the server with SIGTERM (graceful) and waits.
func (p *Postcote) Stop() { p.stopWith(syscall.SIGTERM) }

func (p *Postcote) stopWith(sig syscall.Signal) {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		p.t.Errorf("postcote did not stop within 30 s after %v", sig)
	}
}

type lockedWriter struct{ p *Postcote }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}
