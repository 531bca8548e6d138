package mailstore

import (
	"context"
	"errors"
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

func TestDotlock(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, uidListName)
	o := owner{uid: -1, gid: -1}
	l, err := lockFile(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	// A second locker waits while the lock is fresh and its holder alive.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path, o); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second lock: %v", err)
	}
	// replace puts the new contents in place and releases the lock.
	if err := l.replace([]byte("3 V1 N1\n"), true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "3 V1 N1\n" {
		t.Errorf("contents %q", b)
	}
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Errorf("lock file left: %v", err)
	}
	// An anonymous lock (Dovecot's O_EXCL locks are empty) is taken over
	// once older than two minutes.
	os.WriteFile(path+".lock", nil, 0o600)
	old := time.Now().Add(-3 * time.Minute)
	os.Chtimes(path+".lock", old, old)
	l, err = lockFile(context.Background(), path, o)
	if err != nil {
		t.Fatalf("stale lock not taken: %v", err)
	}
	l.unlock()
	if _, err := os.Stat(path + ".lock"); !os.IsNotExist(err) {
		t.Errorf("unlock left the lock file")
	}
	if b, _ := os.ReadFile(path); string(b) != "3 V1 N1\n" {
		t.Errorf("unlock changed the file: %q", b)
	}
}

func TestAllocUIDValidity(t *testing.T) {
	dir := t.TempDir()
	o := owner{uid: -1, gid: -1}
	ctx := context.Background()
	a, err := allocUIDValidity(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	b, err := allocUIDValidity(ctx, dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if b <= a {
		t.Errorf("UIDVALIDITY %d then %d", a, b)
	}
	// Dovecot's files: the counter in hex and one marker.
	if c, _ := os.ReadFile(filepath.Join(dir, "dovecot-uidvalidity")); len(c) != 8 {
		t.Errorf("dovecot-uidvalidity = %q", c)
	}
	markers, _ := filepath.Glob(filepath.Join(dir, "dovecot-uidvalidity.*"))
	if len(markers) != 1 {
		t.Errorf("markers %v", markers)
	}
}
