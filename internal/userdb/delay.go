package userdb

import (
	"context"
	"math"
	"sync"
	"time"
)

// Failed-login slowdown. Dovecot delays every failed authentication reply
// by auth_failure_delay (2 s) and its anvil service keeps an "auth penalty"
// per remote IP that doubles the wait up to 15 s. postcote keeps one
// decaying failure score per remote IP and one per user name; a failure's
// delay is auth_failure_delay doubled for each earlier recent failure of
// the worse of the two, capped at MaxFailureDelay: 2, 4, 8, 15, 15 ... s.
// Scores halve every FailureHalfLife, so a client that stops guessing is
// soon back to normal. A success clears the user's score (not the IP's,
// so one known password does not buy fast guesses at other accounts).
// The table holds at most MaxTracked keys: when full, decayed keys go
// first, then the stalest ones.

type failEntry struct {
	score float64
	last  time.Time
}

type failureTracker struct {
	mu       sync.Mutex
	now      func() time.Time
	halfLife time.Duration
	max      int
	entries  map[string]failEntry
}

func newFailureTracker(now func() time.Time, halfLife time.Duration, max int) *failureTracker {
	return &failureTracker{now: now, halfLife: halfLife, max: max, entries: map[string]failEntry{}}
}

// decayed returns e's score at time t.
func (f *failureTracker) decayed(e failEntry, t time.Time) float64 {
	if f.halfLife <= 0 {
		return e.score
	}
	age := t.Sub(e.last)
	if age <= 0 {
		return e.score
	}
	return e.score * math.Exp2(-float64(age)/float64(f.halfLife))
}

// score returns the current score of key.
func (f *failureTracker) score(key string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.entries[key]
	if !ok {
		return 0
	}
	return f.decayed(e, f.now())
}

// fail records one failure for each key and returns the highest score
// among them before this failure.
func (f *failureTracker) fail(keys ...string) float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.now()
	var prev float64
	for _, k := range keys {
		e, ok := f.entries[k]
		s := 0.0
		if ok {
			s = f.decayed(e, t)
		} else if len(f.entries) >= f.max {
			f.prune(t)
		}
		prev = max(prev, s)
		f.entries[k] = failEntry{score: s + 1, last: t}
	}
	return prev
}

// clear forgets key.
func (f *failureTracker) clear(key string) {
	f.mu.Lock()
	delete(f.entries, key)
	f.mu.Unlock()
}

// len returns how many keys are tracked.
func (f *failureTracker) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.entries)
}

// prune makes room: it drops keys whose score decayed below one tenth,
// then, if the table is still over three quarters full, the stalest keys.
// Called with mu held; amortised over the inserts that filled the table.
func (f *failureTracker) prune(t time.Time) {
	for k, e := range f.entries {
		if f.decayed(e, t) < 0.1 {
			delete(f.entries, k)
		}
	}
	target := f.max * 3 / 4
	if len(f.entries) <= target {
		return
	}
	// Find the cut-off time that keeps the newest target entries.
	times := make([]time.Time, 0, len(f.entries))
	for _, e := range f.entries {
		times = append(times, e.last)
	}
	cut := nthNewest(times, target)
	for k, e := range f.entries {
		if len(f.entries) <= target {
			break
		}
		if !e.last.After(cut) {
			delete(f.entries, k)
		}
	}
}

// nthNewest returns the n-th newest time (1-based) by partial selection.
func nthNewest(ts []time.Time, n int) time.Time {
	if n <= 0 || n > len(ts) {
		return time.Time{}
	}
	// Quickselect for the (n-1)-th index in descending order.
	lo, hi, k := 0, len(ts)-1, n-1
	for lo < hi {
		pivot := ts[(lo+hi)/2]
		i, j := lo, hi
		for i <= j {
			for ts[i].After(pivot) {
				i++
			}
			for pivot.After(ts[j]) {
				j--
			}
			if i <= j {
				ts[i], ts[j] = ts[j], ts[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return ts[k]
		}
	}
	return ts[k]
}

// failureDelay returns the wait after a failure given the score before it.
func failureDelay(base, maxDelay time.Duration, prevScore float64) time.Duration {
	if base <= 0 {
		return 0
	}
	n := int(math.Floor(prevScore + 0.5)) // earlier failures, rounded
	d := base
	for i := 0; i < n && d < maxDelay; i++ {
		d *= 2
	}
	if maxDelay > 0 && d > maxDelay {
		d = maxDelay
	}
	return d
}

// sleepContext waits for d or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
