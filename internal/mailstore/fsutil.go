package mailstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Dovecot's dotlock protocol (lib/file-dotlock.c): the lock for FILE is
// FILE.lock created with O_EXCL; the holder may write the new contents
// into the lock file and rename it over FILE, which releases the lock and
// replaces the file atomically. While held, the lock file says
// "PID:HOSTNAME" (Dovecot's try_create_lock_hardlink writes the same), so
// a lock left by a process of this host that no longer exists (kill -9)
// is taken over at once, as Dovecot's read_local_pid check does; any
// other lock older than the stale timeout is taken over too. Dovecot uses
// two minutes for dovecot-uidlist.
const (
	lockStaleAge = 2 * time.Minute
	lockTimeout  = lockStaleAge + 2*time.Second
)

// owner says who should own what the store creates.
type owner struct {
	uid, gid int
}

// chown gives path to the mailbox owner when running as root.
func (o owner) chown(path string) error {
	if os.Geteuid() != 0 || o.uid < 0 {
		return nil
	}
	gid := o.gid
	if gid < 0 {
		gid = -1
	}
	if err := os.Lchown(path, o.uid, gid); err != nil {
		return fmt.Errorf("chown %s: %w", path, err)
	}
	return nil
}

// mkdirAll creates dir and missing parents with mode 0700, owned by o.
func (o owner) mkdirAll(dir string) error {
	if st, err := os.Stat(dir); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("mkdir %s: not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := o.mkdirAll(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil
		}
		return fmt.Errorf("mkdir: %w", err)
	}
	return o.chown(dir)
}

// dotlock is a held Dovecot-style lock.
type dotlock struct {
	path string      // the locked file
	held os.FileInfo // the lock file we made; nil once released
	o    owner
}

// lockFile takes FILE.lock, waiting while another holder has it. The lock
// is made the way Dovecot's hard-link method makes it: "PID:HOST" is
// written to a temporary file that is then linked to FILE.lock, so a lock
// file never exists without its holder's name in it.
func lockFile(ctx context.Context, path string, o owner) (*dotlock, error) {
	lp := path + ".lock"
	deadline := time.Now().Add(lockTimeout)
	wait := time.Millisecond
	for {
		st, err := createLock(lp, o)
		if err == nil {
			return &dotlock{path: path, held: st, o: o}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if st, err := os.Stat(lp); err == nil && (time.Since(st.ModTime()) > lockStaleAge || holderGone(lp)) {
			// Stale: its holder died. Remove it only if it is still the
			// same file.
			if st2, err := os.Stat(lp); err == nil && os.SameFile(st, st2) {
				os.Remove(lp)
			}
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: timed out after %s", path, lockTimeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-t.C:
		}
		if wait < 50*time.Millisecond {
			wait *= 2
		}
	}
}

// createLock makes lp atomically with "PID:HOST" in it; fs.ErrExist when
// someone holds it.
func createLock(lp string, o owner) (os.FileInfo, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := fmt.Sprintf("%s.%x.tmp", lp, rnd)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	_, err = f.WriteString(lockOwner())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = o.chown(tmp)
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp, lp); err != nil {
		if errors.Is(err, fs.ErrExist) || !(errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EOPNOTSUPP)) {
			return nil, err
		}
		// No hard links here: create it with O_EXCL and write the owner.
		f, err := os.OpenFile(lp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(lockOwner())
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = o.chown(lp)
		}
		if err != nil {
			os.Remove(lp)
			return nil, err
		}
	}
	return os.Lstat(lp)
}

// unlock releases the lock without changing the file. A lock taken over
// by another process (ours went stale) is left alone.
func (l *dotlock) unlock() {
	if l.held == nil {
		return
	}
	lp := l.path + ".lock"
	if st, err := os.Lstat(lp); err == nil && os.SameFile(st, l.held) {
		os.Remove(lp)
	}
	l.held = nil
}

// replace writes data to FILE.tmp (the lock protects that name too),
// fsyncs it, renames it over the locked file and then releases the lock.
// Unlike Dovecot, which writes the new contents into the lock file
// itself, the lock file keeps saying "PID:HOST" until the end, so a
// process killed while it writes leaves a lock that is seen at once to be
// dead. With syncDir the directory is fsynced too, so the new contents
// survive a crash.
func (l *dotlock) replace(data []byte, syncDir bool) error {
	defer l.unlock()
	tmp := l.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = l.o.chown(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, l.path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("replace %s: %w", l.path, err)
	}
	if syncDir {
		return fsyncDir(filepath.Dir(l.path))
	}
	return nil
}

// fsyncDir makes directory entries durable.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// writeFileLocked replaces path under Dovecot's dotlock.
func writeFileLocked(ctx context.Context, path string, data []byte, o owner) error {
	l, err := lockFile(ctx, path, o)
	if err != nil {
		return err
	}
	return l.replace(data, true)
}

// readFile reads a small control file; a missing file is empty.
func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// allocUIDValidity hands out a new UIDVALIDITY from the account-wide
// counter Dovecot keeps (lib-storage/mailbox-uidvalidity.c): the file
// dovecot-uidvalidity holds the last value in hex and an empty marker
// file dovecot-uidvalidity.<hex> names it too. The first value is the
// current time; each next one is one more.
func allocUIDValidity(ctx context.Context, root string, o owner) (uint32, error) {
	path := filepath.Join(root, "dovecot-uidvalidity")
	if err := o.mkdirAll(root); err != nil {
		return 0, err
	}
	l, err := lockFile(ctx, path, o)
	if err != nil {
		return 0, err
	}
	cur := uint32(0)
	if b, _ := os.ReadFile(path); len(b) > 0 {
		if v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 32); err == nil {
			cur = uint32(v)
		}
	}
	if ents, err := os.ReadDir(root); err == nil {
		for _, e := range ents {
			if hexv, ok := strings.CutPrefix(e.Name(), "dovecot-uidvalidity."); ok && hexv != "lock" {
				if v, err := strconv.ParseUint(hexv, 16, 32); err == nil && uint32(v) > cur {
					cur = uint32(v)
				}
			}
		}
	}
	next := uint32(time.Now().Unix())
	if cur >= next {
		next = cur + 1
	}
	if next == 0 {
		next = 1
	}
	oldMarker := filepath.Join(root, fmt.Sprintf("dovecot-uidvalidity.%08x", cur))
	newMarker := filepath.Join(root, fmt.Sprintf("dovecot-uidvalidity.%08x", next))
	if cur == 0 || os.Rename(oldMarker, newMarker) != nil {
		if f, err := os.OpenFile(newMarker, os.O_CREATE|os.O_WRONLY, 0o444); err == nil {
			f.Close()
			_ = o.chown(newMarker)
		}
	}
	if err := l.replace([]byte(fmt.Sprintf("%08x", next)), false); err != nil {
		return 0, err
	}
	return next, nil
}

// lockOwner is what a lock file says while it is held: "PID:HOSTNAME".
func lockOwner() string {
	host, _ := os.Hostname()
	return strconv.Itoa(os.Getpid()) + ":" + host
}

// holderGone tells whether the lock file names a process of this host
// that no longer exists.
func holderGone(lockPath string) bool {
	b, err := os.ReadFile(lockPath)
	if err != nil || len(b) > 300 {
		return false
	}
	pidText, host, ok := strings.Cut(strings.TrimSpace(string(b)), ":")
	if !ok {
		return false
	}
	if me, _ := os.Hostname(); host != me {
		return false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return processGone(pid)
}

// openMessage opens a message file for reading without following a
// symbolic link: a user with a shell must not make the server read files
// they cannot (a link in cur/ to /etc/shadow).
func openMessage(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
}
