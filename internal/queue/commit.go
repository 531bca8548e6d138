package queue

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// maxBatchBytes bounds how much one group commit writes.
const maxBatchBytes = 16 << 20

// commitLoop is the single writer of the spool. It takes every request
// waiting in the channel, appends their records with one write, makes
// them durable with one fdatasync, applies them to the index, and only
// then answers the waiters: N concurrent Enqueue calls cost one fsync.
func (q *Queue) commitLoop() {
	defer close(q.committerDone)
	var batch []*request
	for first := range q.reqs {
		batch = append(batch[:0], first)
		size := first.size()
	drain:
		for size < maxBatchBytes {
			select {
			case r, ok := <-q.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
				size += r.size()
			default:
				break drain
			}
		}
		err := q.writeBatch(batch)
		for _, r := range batch {
			r.done <- err
		}
		clear(batch) // keep no request (and its records) alive until the next batch
	}
}

func (r *request) size() int {
	n := 0
	for _, p := range r.recs {
		n += len(p.data)
	}
	return n
}

// placed is a record at its place in a segment.
type placed struct {
	rec *record
	off int64
	n   int64
}

func (q *Queue) writeBatch(batch []*request) error {
	q.mu.Lock()
	broken := q.broken
	q.mu.Unlock()
	if broken != nil {
		return broken
	}
	var copies []pending
	rotated := false
	// Rotate when the segment is full, or early to leave a segment
	// without preallocation as soon as a spare is ready.
	if q.seg == nil || q.segSize >= q.opts.SegmentSize || (!q.segPrealloc && q.spareReady()) {
		if err := q.rotate(); err != nil {
			return q.fail(err)
		}
		rotated = true
	}
	if rotated || q.salvage {
		var err error
		if copies, err = q.compaction(); err != nil {
			return q.fail(err)
		}
		q.salvage = false
	}
	buf := q.batch[:0]
	var recs []placed
	add := func(p pending) {
		recs = append(recs, placed{p.rec, q.segSize + int64(len(buf)), int64(len(p.data))})
		buf = append(buf, p.data...)
	}
	for _, p := range copies {
		add(p)
	}
	for _, r := range batch {
		for _, p := range r.recs {
			add(p)
		}
	}
	if cap(buf) <= 4<<20 {
		q.batch = buf
	}
	if len(buf) > 0 {
		if _, err := q.seg.WriteAt(buf, q.segSize); err != nil {
			// Cut off whatever part was written so the next batch does
			// not follow a torn record.
			if terr := q.seg.Truncate(q.segSize); terr != nil {
				return q.fail(fmt.Errorf("write %s: %v; truncate: %w", q.seg.Name(), err, terr))
			}
			q.segPrealloc = false // the zeros after segSize went too
			return fmt.Errorf("queue: write %s: %w", q.seg.Name(), err)
		}
		if err := fdatasync(q.seg); err != nil {
			// After a failed fsync the kernel may have dropped the dirty
			// pages: nothing about the file can be trusted any more.
			return q.fail(fmt.Errorf("fdatasync %s: %w", q.seg.Name(), err))
		}
	}
	q.segSize += int64(len(buf))
	if len(buf) > 0 {
		q.startSpare()
	}
	now := q.now()
	var removedLarge []ID
	q.mu.Lock()
	if len(buf) > 0 {
		q.fsyncs++
	}
	q.seginfo(q.segNum).size = q.segSize
	for _, p := range recs {
		if p.rec.typ == recRemove {
			if e := q.msgs[p.rec.id]; e != nil && e.large {
				removedLarge = append(removedLarge, p.rec.id)
			}
		}
		q.apply(p.rec, q.segNum, p.off, p.n)
		if e := q.msgs[p.rec.id]; e != nil {
			if p.rec.typ == recMessage && e.enqueued.IsZero() {
				e.enqueued = now
			}
			q.schedule(e, now)
		}
	}
	dead := q.deadSegments()
	q.mu.Unlock()
	if len(recs) > 0 {
		q.kick()
	}
	for _, id := range removedLarge {
		os.Remove(q.largePath(id))
	}
	q.dropSegments(dead)
	return nil
}

// fail marks the spool broken after an error that leaves the segment in
// an unknown state; every later commit gets the error.
func (q *Queue) fail(err error) error {
	err = fmt.Errorf("queue: spool unusable: %w", err)
	q.mu.Lock()
	if q.broken == nil {
		q.broken = err
	}
	q.mu.Unlock()
	q.logf("qmgr", "fatal: %v", err)
	return err
}

// rotate starts a new segment: the preallocated spare when one is ready,
// else a new empty file. Its directory entry is made durable here, once
// per segment, so no later commit needs a directory fsync.
func (q *Queue) rotate() error {
	if q.seg != nil {
		if err := q.seg.Close(); err != nil {
			return fmt.Errorf("close %s: %w", q.seg.Name(), err)
		}
		q.seg = nil
	}
	n := q.segNum + 1
	path := q.segPath(n)
	pre := false
	f := q.takeSpare()
	if f != nil {
		if err := os.Rename(filepath.Join(q.spoolDir(), spareName), path); err != nil {
			q.logf("qmgr", "warning: use spare segment: %v", err)
			f.Close()
			f = nil
		} else {
			pre = true
		}
	}
	if f == nil {
		var err error
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("create segment: %w", err)
		}
	}
	if err := syncDir(q.spoolDir()); err != nil {
		f.Close()
		os.Remove(path)
		return err
	}
	q.seg, q.segNum, q.segSize, q.segPrealloc = f, n, 0, pre
	q.mu.Lock()
	q.fsyncs++
	q.seginfo(n)
	q.mu.Unlock()
	return nil
}

// compaction picks, from the oldest segment on, segments that are damaged
// or mostly dead, and returns copies of their live messages (current state
// included) to be written at the head of the next batch. Once those copies
// are durable the old segments hold nothing live and are removed. The
// current segment and the one before it are left alone. It runs in the
// committer, after every earlier batch was applied, so each copy reflects
// every record before it, and records after it apply on top.
func (q *Queue) compaction() ([]pending, error) {
	q.mu.Lock()
	var pick []uint64
	// Everything up to the last damaged segment goes, so that the damaged
	// one is at the head of the log and can be moved aside (see
	// deadSegments).
	var lastCorrupt uint64
	for n, si := range q.segs {
		if si.corrupt && n > lastCorrupt && n < q.segNum {
			lastCorrupt = n
		}
	}
	var copyBytes int64
	for _, n := range q.segNumbers() {
		si := q.segs[n]
		if n > lastCorrupt && (n+1 >= q.segNum || copyBytes >= q.opts.SegmentSize) {
			break // the rest waits for the next rotation: bounded work per batch
		}
		if si.live == 0 {
			continue
		}
		// A segment at least half live is worth keeping (and blocks the
		// removal of later ones); a short segment, cut off early by a
		// rotation to a preallocated spare, counts as full size.
		if n > lastCorrupt && si.liveBytes*2 > max(si.size, q.opts.SegmentSize) {
			break
		}
		pick = append(pick, n)
		copyBytes += si.liveBytes
	}
	if len(pick) == 0 {
		q.mu.Unlock()
		return nil, nil
	}
	type snap struct {
		id    ID
		env   Envelope
		flags uint64
		next  time.Time
		size  int64
		large bool
		seg   uint64
		off   int64
	}
	want := make(map[uint64]bool, len(pick))
	for _, n := range pick {
		want[n] = true
	}
	var snaps []snap
	for id, e := range q.msgs {
		if !want[e.seg] {
			continue
		}
		var fl uint64
		if e.held {
			fl |= flagHeld
		}
		if e.warned {
			fl |= flagWarned
		}
		if e.large {
			fl |= flagLarge
		}
		snaps = append(snaps, snap{id, cloneEnvelope(&e.env), fl, e.nextRetry, e.size, e.large, e.seg, e.off})
	}
	q.mu.Unlock()
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].id < snaps[j].id })

	files := map[uint64]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var out []pending
	for _, s := range snaps {
		var content []byte
		if !s.large {
			f := files[s.seg]
			if f == nil {
				var err error
				if f, err = os.Open(q.segPath(s.seg)); err != nil {
					return nil, fmt.Errorf("compaction: %w", err)
				}
				files[s.seg] = f
			}
			content = make([]byte, s.size)
			if _, err := f.ReadAt(content, s.off); err != nil && err != io.EOF {
				return nil, fmt.Errorf("compaction: read %s: %w", s.id, err)
			}
		}
		data, coff := encodeMessage(s.id, &s.env, s.flags, s.next, s.size, content)
		rec := &record{typ: recMessage, id: s.id, env: s.env, flags: s.flags, nextRetry: s.next, size: s.size, contentOff: coff}
		out = append(out, pending{data: data, rec: rec})
	}
	q.logf("qmgr", "compaction: copying %d message(s) forward from %d segment(s)", len(out), len(pick))
	return out, nil
}

// segNumbers returns the known segment numbers, ascending. q.mu is held.
func (q *Queue) segNumbers() []uint64 {
	nums := make([]uint64, 0, len(q.segs))
	for n := range q.segs {
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return nums
}

// deadSegments returns the oldest segments, in order, that hold nothing
// live and are not the current one. Only a prefix may go: a later
// segment can hold records (hold, remove, results) about messages whose
// message record is in an earlier one, so removing it first could revive
// a finished message at the next replay. q.mu is held.
func (q *Queue) deadSegments() []uint64 {
	var dead []uint64
	for _, n := range q.segNumbers() {
		if n >= q.segNum || q.segs[n].live > 0 {
			break
		}
		dead = append(dead, n)
	}
	return dead
}

// dropSegments removes dead segments (damaged ones are moved to corrupt/
// for the administrator) and makes that durable.
func (q *Queue) dropSegments(dead []uint64) {
	if len(dead) == 0 {
		return
	}
	moved := false
	for _, n := range dead {
		q.mu.Lock()
		corrupt := q.segs[n].corrupt
		q.mu.Unlock()
		path := q.segPath(n)
		var err error
		if corrupt {
			dst := filepath.Join(q.corruptDir(), filepath.Base(path))
			err = os.Rename(path, dst)
			if err == nil {
				q.logf("qmgr", "warning: damaged segment %s moved to %s", path, dst)
				moved = true
			}
		} else {
			err = os.Remove(path)
		}
		if err != nil && !os.IsNotExist(err) {
			q.logf("qmgr", "warning: remove segment %s: %v", path, err)
			return
		}
		q.mu.Lock()
		delete(q.segs, n)
		q.mu.Unlock()
	}
	if err := syncDir(q.spoolDir()); err != nil {
		q.logf("qmgr", "warning: %v", err)
	}
	if moved {
		if err := syncDir(q.corruptDir()); err != nil {
			q.logf("qmgr", "warning: %v", err)
		}
	}
}

func cloneEnvelope(e *Envelope) Envelope {
	c := *e
	c.Recipients = append([]Recipient(nil), e.Recipients...)
	return c
}
