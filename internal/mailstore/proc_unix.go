package mailstore

import (
	"errors"
	"syscall"
)

// processGone tells whether pid names no process (kill(pid, 0) fails with
// ESRCH).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
