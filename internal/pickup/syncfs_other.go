//go:build !linux

package pickup

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the file systems (sync(2); there is no syncfs here).
func syncFS(*os.File) error {
	unix.Sync()
	return nil
}
