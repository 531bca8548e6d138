//go:build unix

package queue

import (
	"fmt"
	"os"
	"syscall"
)

// lockDir takes an exclusive lock on path so that two processes never
// write the same spool.
func lockDir(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool is in use by another process (lock %s): %w", path, err)
	}
	return f, nil
}

// freeSpace returns the bytes available to unprivileged users on the file
// system holding dir (Postfix's fsspace()).
func freeSpace(dir string) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}
