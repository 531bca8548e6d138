package maillog

import (
	"strings"
	"sync"
)

// Buffer keeps log lines in memory, safe for the concurrent writes of
// many sessions: tests give New a Buffer and read what a server logged.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
