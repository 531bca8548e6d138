package mailstore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestLockOfDeadProcessIsTakenOver: a lock left by a process of this host
// that died (kill -9 of an earlier postcote) must not hold deliveries for
// the two-minute stale timeout.
func TestLockOfDeadProcessIsTakenOver(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no true(1) to get a dead pid from")
	}
	host, _ := os.Hostname()
	path := filepath.Join(t.TempDir(), "dovecot-uidlist")
	if err := os.WriteFile(path+".lock", []byte(strconv.Itoa(cmd.Process.Pid)+":"+host), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l, err := lockFile(ctx, path, owner{uid: -1, gid: -1})
	if err != nil {
		t.Fatalf("lock left by a dead process was not taken over: %v", err)
	}
	if err := l.replace([]byte("3 V1 N1\n"), false); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "3 V1 N1\n" {
		t.Errorf("replaced file holds %q", b)
	}
}

// TestLockOfLiveProcessWaits: a lock held by a live process is respected.
func TestLockOfLiveProcessWaits(t *testing.T) {
	host, _ := os.Hostname()
	path := filepath.Join(t.TempDir(), "dovecot-uidlist")
	// PID 1 always exists.
	if err := os.WriteFile(path+".lock", []byte("1:"+host), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path, owner{uid: -1, gid: -1}); err == nil {
		t.Fatal("took a lock held by a live process")
	}
}
