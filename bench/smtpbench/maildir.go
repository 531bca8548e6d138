package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// pollInterval is how often the Maildir watcher counts messages.
const pollInterval = 10 * time.Millisecond

// maildirWatch counts the messages in a Maildir (the files in new/ and
// cur/; tmp/ holds deliveries in progress) every pollInterval, and
// remembers when each count was first seen.
type maildirWatch struct {
	dir     string
	initial int // the count when the watch started
	mu      sync.Mutex
	seen    []sample // counts in increasing order, with the time first seen
	err     error
	stop    context.CancelFunc
	done    chan struct{}
}

type sample struct {
	at    time.Time
	count int
}

// countMaildir returns the number of messages in dir; a Maildir that does
// not exist yet (the first delivery creates it) holds none.
func countMaildir(dir string) (int, error) {
	n := 0
	for _, sub := range []string{"new", "cur"} {
		f, err := os.Open(filepath.Join(dir, sub))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("count maildir: %w", err)
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("count maildir %s: %w", sub, err)
		}
		n += len(names)
	}
	return n, nil
}

// watchMaildir starts counting. Stop it with Close.
func watchMaildir(dir string) (*maildirWatch, error) {
	n, err := countMaildir(dir)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &maildirWatch{dir: dir, initial: n, seen: []sample{{time.Now(), n}}, stop: cancel, done: make(chan struct{})}
	go w.loop(ctx)
	return w, nil
}

func (w *maildirWatch) loop(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := countMaildir(w.dir)
		now := time.Now()
		w.mu.Lock()
		if err != nil {
			w.err = err
			w.mu.Unlock()
			return
		}
		if n > w.seen[len(w.seen)-1].count {
			w.seen = append(w.seen, sample{now, n})
		}
		w.mu.Unlock()
	}
}

// WaitFor waits until the Maildir holds at least count messages and
// returns when that was first seen, to within pollInterval.
func (w *maildirWatch) WaitFor(ctx context.Context, count int) (time.Time, error) {
	for {
		w.mu.Lock()
		last, err := w.seen[len(w.seen)-1], w.err
		var at time.Time
		if last.count >= count {
			for _, s := range w.seen {
				if s.count >= count {
					at = s.at
					break
				}
			}
		}
		w.mu.Unlock()
		if !at.IsZero() {
			return at, nil
		}
		if err != nil {
			return time.Time{}, err
		}
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("%d of %d messages in %s: %w", last.count, count, w.dir, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// Close stops the watch.
func (w *maildirWatch) Close() {
	w.stop()
	<-w.done
}
