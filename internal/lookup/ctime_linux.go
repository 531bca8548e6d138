package lookup

import (
	"io/fs"
	"syscall"
	"time"
)

// changeTime is the later of a file's modification and status change
// times: writing, truncating and touching a file all move the latter.
func changeTime(fi fs.FileInfo) time.Time {
	t := fi.ModTime()
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		if c := time.Unix(st.Ctim.Sec, st.Ctim.Nsec); c.After(t) {
			return c
		}
	}
	return t
}
