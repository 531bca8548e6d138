package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCopyBinary(t *testing.T) {
	src := filepath.Join(t.TempDir(), "postcote")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dst, remove, err := copyBinary(src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dst)
	if err != nil || string(b) != "#!/bin/sh\n" || dst == src {
		t.Fatalf("copy %s: %q, %v", dst, b, err)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("copy not executable: %v %v", fi.Mode(), err)
	}
	remove()
	if _, err := os.Stat(filepath.Dir(dst)); !os.IsNotExist(err) {
		t.Errorf("copy's folder still there: %v", err)
	}
	if _, _, err := copyBinary(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("missing binary: %v", err)
	}
}

func TestWaitDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := waitDial(context.Background(), "tcp", ln.Addr().String(), nil); err != nil {
		t.Errorf("listening port: %v", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := testAddr(ports[0])
	exited := make(chan struct{})
	close(exited)
	start := time.Now()
	if err := waitDial(context.Background(), "tcp", addr, exited); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Errorf("exited server: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := waitDial(ctx, "tcp", addr, nil); err == nil {
		t.Error("closed port: no error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("waitDial took %v", d)
	}
}

func TestOnTmpfs(t *testing.T) {
	if onTmpfs("/nonexistent-smtpbench") {
		t.Error("a missing folder reported as tmpfs")
	}
	// Compare with what the kernel lists in /proc/mounts.
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Skip("no /proc/mounts")
	}
	checked := 0
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (f[1] != "/dev/shm" && f[1] != "/") {
			continue
		}
		if got, want := onTmpfs(f[1]), f[2] == "tmpfs"; got != want {
			t.Errorf("onTmpfs(%s) = %v, /proc/mounts says %s", f[1], got, f[2])
		}
		checked++
	}
	if checked == 0 {
		t.Skip("neither / nor /dev/shm in /proc/mounts")
	}
}
