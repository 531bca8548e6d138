//go:build unix && !linux

package queue

import "os"

// fdatasync falls back to fsync where fdatasync(2) is not offered; it
// writes more, but is just as durable.
func fdatasync(f *os.File) error { return f.Sync() }
