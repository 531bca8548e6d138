package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// startTimeout bounds how long a server may take to come up or go down.
const startTimeout = 30 * time.Second

// freePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitDial polls until network/addr accepts a connection, the server
// exits (exited is closed; nil when the server is not our child), or ctx
// ends.
func waitDial(ctx context.Context, network, addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("server exited before %s answered", addr)
		case <-ctx.Done():
			return fmt.Errorf("wait for %s: %w (last error: %v)", addr, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// run runs a command to completion and returns its output; a failure
// carries the output, which is where the tools explain themselves.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Its own process group: a Ctrl-C at the terminal reaches this program
	// only, which then stops what it started in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// child is a server process this program started and waits for.
type child struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
	err    error         // Wait's result, valid after exited is closed
	log    *os.File
}

// startChild starts name with its output appended to logPath.
func startChild(name string, args []string, logPath string) (*child, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group, so a Ctrl-C at the terminal reaches this
	// program only, and the server is stopped by stop in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{cmd: cmd, exited: make(chan struct{}), log: log}
	go func() {
		c.err = cmd.Wait()
		log.Close()
		close(c.exited)
	}()
	return c, nil
}

// stop sends SIGTERM and waits; a process still there after startTimeout,
// or when ctx ends, gets SIGKILL.
func (c *child) stop(ctx context.Context) error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal pid %d: %w", c.cmd.Process.Pid, err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	select {
	case <-c.exited:
		return nil
	case <-ctx.Done():
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("pid %d did not stop after SIGTERM (%w); killed", c.cmd.Process.Pid, ctx.Err())
	}
}

// processGone tells whether no process has the given pid.
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// waitGone polls until pid has exited or the timeout passes.
func waitGone(pid int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !processGone(pid) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// copyBinary copies an executable into a temporary folder and returns the
// copy's path and a function that removes it.
func copyBinary(path string) (string, func(), error) {
	src, err := os.Open(path)
	if err != nil {
		return "", nil, fmt.Errorf("postcote binary: %w (build it with `make build`, or give -postcote PATH)", err)
	}
	defer src.Close()
	dir, err := os.MkdirTemp("", "smtpbench-bin-")
	if err != nil {
		return "", nil, err
	}
	remove := func() { os.RemoveAll(dir) }
	dst := filepath.Join(dir, filepath.Base(path))
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err == nil {
		_, err = io.Copy(f, src)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		remove()
		return "", nil, fmt.Errorf("copy %s: %w", path, err)
	}
	return dst, remove, nil
}

// tmpfsMagic is Linux's f_type for tmpfs (statfs(2)).
const tmpfsMagic = 0x01021994

// onTmpfs tells whether dir is on tmpfs, where fsync costs nothing and
// the figures would not be those of a disk.
func onTmpfs(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == tmpfsMagic
}
