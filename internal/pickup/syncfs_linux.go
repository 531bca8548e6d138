package pickup

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFS flushes the file system holding f (syncfs(2)), directory
// entries included.
func syncFS(f *os.File) error {
	return unix.Syncfs(int(f.Fd()))
}
