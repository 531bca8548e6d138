package lookup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// recheckEvery is how often a file table looks at its source for
// changes (Postfix daemons notice a changed table and restart; postcote
// reloads it in place).
const recheckEvery = time.Second

// settleTime is how long a changed source must stay unmodified (by its
// status change time, which no one can set back) before an open table
// reloads it, so that a file being written is not served half done.
const settleTime = time.Second

var errNotSettled = errors.New("source modified too recently")

// fileTable serves hash: (through the index) and texthash: (from the
// source) tables.
type fileTable struct {
	spec    string
	path    string
	indexed bool
	opts    *Options
	settle  time.Duration // settleTime; tests shorten it

	mu        sync.RWMutex
	entries   map[string]string
	stamp     sourceStamp
	src       fs.FileInfo
	lastCheck time.Time
}

func openHash(s Spec, o *Options, _ *Registry) (Table, error) {
	return openFileTable(s, o, true)
}

func openTexthash(s Spec, o *Options, _ *Registry) (Table, error) {
	return openFileTable(s, o, false)
}

func openFileTable(s Spec, o *Options, indexed bool) (Table, error) {
	t := &fileTable{spec: s.String(), path: s.Name, indexed: indexed, opts: o, settle: settleTime}
	if err := t.load(false); err != nil {
		return nil, err
	}
	return t, nil
}

// guessFormat picks the source syntax of a hash: table whose index is
// missing or unreadable: a file named like /etc/aliases is in aliases(5)
// syntax, anything else in postmap(1) syntax. An index records the
// format it was built with, so `postalias FILE` settles the question
// for any name.
func guessFormat(path string) SourceFormat {
	if strings.HasPrefix(filepath.Base(path), "aliases") {
		return FormatAliases
	}
	return FormatMap
}

// load reads the table: for hash:, the index when it matches the
// source, else the source (rewriting the index); for texthash:, the
// source. A reload (reload set) refuses a source modified within
// settleTime, which may be half written.
func (t *fileTable) load(reload bool) error {
	wantFold := !t.opts.NoFold
	warn := func(msg string) { t.opts.logf("warning: %s", msg) }
	fi, serr := os.Stat(t.path)
	if serr != nil && (!t.indexed || !errors.Is(serr, fs.ErrNotExist)) {
		return serr
	}
	format := guessFormat(t.path)
	if t.indexed {
		ix, ierr := readIndex(t.path + IndexSuffix)
		switch {
		case serr != nil && ierr != nil:
			// Neither the source nor a usable index.
			return fmt.Errorf("%w (and index: %v)", serr, ierr)
		case serr != nil:
			// An index without its source: serve it as Postfix serves
			// a .db file alone.
			t.set(ix.entries, sourceStamp{}, nil)
			return nil
		case ierr == nil && ix.source == stampOf(fi) && ix.folded == wantFold:
			t.set(ix.entries, ix.source, fi)
			return nil
		case ierr == nil:
			format = ix.format
			t.opts.logf("warning: %s%s is older than its source %s: rebuilding it (run `postcote postmap %s` after each edit)", t.path, IndexSuffix, t.path, t.path)
		case !errors.Is(ierr, fs.ErrNotExist):
			t.opts.logf("warning: %v: rebuilding it from %s", ierr, t.path)
		}
	}
	entries, st, sfi, err := parseSourceFile(t.path, format, wantFold, warn)
	if err != nil {
		return err
	}
	if reload && time.Since(changeTime(sfi)) < t.settle {
		return errNotSettled
	}
	if t.indexed {
		if err := writeIndex(t.path+IndexSuffix, sfi.Mode(), encodeIndex(format, wantFold, st, entries)); err != nil {
			t.opts.logf("warning: %v; using %s directly", err, t.path)
		}
	}
	m := make(map[string]string, len(entries))
	for _, e := range entries {
		m[e.Key] = e.Value
	}
	t.set(m, st, sfi)
	return nil
}

// set installs a version of the table; src is the source file it came
// from (nil: an index without its source).
func (t *fileTable) set(m map[string]string, st sourceStamp, src fs.FileInfo) {
	t.mu.Lock()
	t.entries, t.stamp, t.src, t.lastCheck = m, st, src, time.Now()
	t.mu.Unlock()
}

// refresh reloads the table when its source changed since it was read.
// A failed reload keeps the old contents and says why.
func (t *fileTable) refresh() {
	t.mu.RLock()
	due := time.Since(t.lastCheck) >= recheckEvery
	old, src := t.stamp, t.src
	t.mu.RUnlock()
	if !due {
		return
	}
	t.mu.Lock()
	t.lastCheck = time.Now()
	t.mu.Unlock()
	fi, err := os.Stat(t.path)
	// A file renamed over the source may have its size and mtime:
	// SameFile tells them apart.
	if err != nil || src == nil || stampOf(fi) == old && os.SameFile(fi, src) {
		return
	}
	if time.Since(changeTime(fi)) < t.settle {
		// Being written (an editor or a copy truncates, then writes):
		// keep the old contents and look again at the next check.
		return
	}
	if err := t.load(true); errors.Is(err, errNotSettled) {
		return
	} else if err != nil {
		t.opts.logf("warning: %s changed but cannot be reloaded, keeping the old contents: %v", t.spec, err)
	}
}

func (t *fileTable) Lookup(ctx context.Context, key string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, lookupError(t.spec, err)
	}
	t.refresh()
	t.mu.RLock()
	v, ok := t.entries[fold(t.opts, key)]
	t.mu.RUnlock()
	if !ok {
		return nil, nil
	}
	return []string{v}, nil
}

// Keys returns every key and value, sorted by key (postmap -s).
func (t *fileTable) Entries() []Entry {
	t.refresh()
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Entry, 0, len(t.entries))
	for k, v := range t.entries {
		out = append(out, Entry{Key: k, Value: v})
	}
	sortEntries(out)
	return out
}

func (t *fileTable) Close() error { return nil }
