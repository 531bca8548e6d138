//go:build !linux

package lookup

import (
	"io/fs"
	"time"
)

// changeTime is a file's modification time where the status change
// time is not at hand.
func changeTime(fi fs.FileInfo) time.Time { return fi.ModTime() }
