// Package netx holds the small network helpers every postcote server
// shares.
package netx

import (
	"context"
	"time"
)

// AcceptBackoff paces retries after a failed Accept (out of file
// descriptors, ECONNABORTED) as net/http does: 5 ms, doubling to 1 s, back
// to the start after a success. The zero value is ready to use.
type AcceptBackoff struct{ d time.Duration }

// Wait sleeps the next interval and reports false when ctx ended first.
func (b *AcceptBackoff) Wait(ctx context.Context) bool {
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Delay is the interval the last Wait slept.
func (b *AcceptBackoff) Delay() time.Duration { return b.d }

// Reset starts over after a successful Accept.
func (b *AcceptBackoff) Reset() { b.d = 0 }
