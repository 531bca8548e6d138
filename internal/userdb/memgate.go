package userdb

import (
	"strings"
	"sync/atomic"
)

// MemoryGate bounds how many memory-hard password checks (argon2,
// yescrypt, scrypt) run at once. Each one takes the memory its hash
// names (16 MiB for Debian's default yescrypt, up to the Limits cap), so
// without a bound N logins at the same moment would need N times that;
// with it, the extra logins wait their turn instead of exhausting memory.
type MemoryGate struct {
	slots chan struct{}
	inUse atomic.Int64
	peak  atomic.Int64
}

// NewMemoryGate allows n checks at once (at least 1).
func NewMemoryGate(n int) *MemoryGate {
	return &MemoryGate{slots: make(chan struct{}, max(n, 1))}
}

// enter waits for a slot; leave gives it back.
func (g *MemoryGate) enter() {
	g.slots <- struct{}{}
	n := g.inUse.Add(1)
	for {
		p := g.peak.Load()
		if n <= p || g.peak.CompareAndSwap(p, n) {
			break
		}
	}
}

func (g *MemoryGate) leave() {
	g.inUse.Add(-1)
	<-g.slots
}

// Peak is the largest number of checks that ran at once so far.
func (g *MemoryGate) Peak() int { return int(g.peak.Load()) }

// memoryHard reports whether checking raw in scheme name allocates a
// large, hash-chosen amount of memory.
func memoryHard(name string, raw []byte) bool {
	switch strings.ToUpper(name) {
	case "ARGON2I", "ARGON2ID":
		return true
	case "CRYPT":
		s := string(raw)
		return strings.HasPrefix(s, "$y$") || strings.HasPrefix(s, "$7$") || strings.HasPrefix(s, "$argon2")
	}
	return false
}
