package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Snapshot lists the messages of the spool in dir without opening it for
// writing, so it works while another process (the server) has it open:
// what postqueue -p needs. Records being written at that moment may be
// missed; messages in delivery show as active.
func Snapshot(dir string, now time.Time) ([]Summary, error) {
	q := &Queue{dir: dir, readOnly: true, msgs: make(map[ID]*entry), segs: make(map[uint64]*segInfo)}
	q.opts.Now = func() time.Time { return now }
	if _, err := os.Stat(q.spoolDir()); err != nil {
		return nil, fmt.Errorf("read queue %s: %w", dir, err)
	}
	if err := q.recover(); err != nil {
		return nil, fmt.Errorf("read queue %s: %w", dir, err)
	}
	return q.List(), nil
}

// segScan is what replaying one segment found.
type segScan struct {
	n       uint64
	res     scanResult
	records int
}

// recover rebuilds the index from the segments, oldest first. Then it
// decides what damage means: a bad record with nothing valid after it,
// in the last segment holding records, is a torn write that was never
// acknowledged, and is cut off; damage anywhere else is corruption, and
// the segment's live messages are salvaged (see Open). Segments after
// the last one holding records (an unused preallocated segment) go.
func (q *Queue) recover() error {
	if !q.readOnly {
		os.Remove(filepath.Join(q.spoolDir(), spareName)) // an unfinished spare
	}
	nums, err := listSegments(q.spoolDir())
	if err != nil {
		return err
	}
	var scans []segScan
	lastData := -1
	for _, n := range nums {
		s, err := q.replaySegment(n)
		if err != nil {
			return err
		}
		if s.records > 0 {
			lastData = len(scans)
		}
		scans = append(scans, s)
		q.segNum = n
	}
	if q.readOnly {
		return nil
	}
	for i, s := range scans {
		path := q.segPath(s.n)
		si := q.segs[s.n]
		switch {
		case i > lastData:
			// Nothing valid in it and nothing after it: never used.
			if err := os.Remove(path); err != nil {
				return err
			}
			delete(q.segs, s.n)
		case s.res.damaged && !s.res.resumed && i == lastData:
			q.logf("qmgr", "%s: truncating incomplete last record at offset %d (%v)", path, s.res.end, s.res.badErr)
		case s.res.damaged:
			q.logf("qmgr", "warning: %s: damaged at offset %d (%v); records after it were salvaged; the segment will be moved to %s",
				path, s.res.end, s.res.badErr, q.corruptDir())
			si.corrupt = true
		}
	}
	if lastData >= 0 && !q.segs[scans[lastData].n].corrupt {
		if err := q.resumeSegment(scans[lastData]); err != nil {
			return err
		}
	}
	// Large files no record points to were written by an Enqueue that
	// never committed; their messages were never acknowledged.
	ents, err := os.ReadDir(q.largeDir())
	if err != nil {
		return err
	}
	for _, e := range ents {
		id := ID(e.Name())
		if m := q.msgs[id]; m == nil || !m.large {
			os.Remove(filepath.Join(q.largeDir(), e.Name()))
		}
	}
	for id, e := range q.msgs {
		if e.large {
			if _, err := os.Stat(q.largePath(id)); err != nil {
				q.logf("qmgr", "warning: %s: content file missing, message skipped: %v", id, err)
				q.segUnref(e)
				delete(q.msgs, id)
			}
		}
	}
	now := q.now()
	for _, e := range q.msgs {
		e.enqueued = e.env.Arrival
		q.schedule(e, now)
	}
	if len(q.msgs) > 0 {
		q.logf("qmgr", "recovered %d queued message(s) from %d segment(s)", len(q.msgs), len(nums))
	}
	return nil
}

// resumeSegment makes the last segment the one to append to, cutting off
// a torn record first. A zero-filled (preallocated) tail is kept.
func (q *Queue) resumeSegment(s segScan) error {
	path := q.segPath(s.n)
	f, err := os.OpenFile(path, os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if s.res.damaged {
		if err := f.Truncate(s.res.end); err != nil {
			f.Close()
			return fmt.Errorf("truncate %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync %s: %w", path, err)
		}
	}
	q.seg, q.segNum, q.segSize = f, s.n, s.res.end
	q.segPrealloc = s.res.zeroTail
	q.seginfo(s.n).size = s.res.end
	return nil
}

// replaySegment applies the records of segment n to the index.
func (q *Queue) replaySegment(n uint64) (segScan, error) {
	s := segScan{n: n}
	path := q.segPath(n)
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return s, err
	}
	si := q.seginfo(n)
	si.size = st.Size()
	s.res, err = scanSegment(f, st.Size(), func(off int64, typ byte, payload []byte) error {
		s.records++
		r, derr := decodeRecord(typ, payload)
		if derr != nil {
			q.logf("qmgr", "warning: %s offset %d: bad record skipped: %v", path, off, derr)
			si.corrupt = true
			return nil
		}
		q.ids.observe(r.id)
		q.apply(r, n, off, recHeaderSize+int64(len(payload)))
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("replay %s: %w", path, err)
	}
	if s.res.zeroTail || s.res.damaged {
		si.size = s.res.end
	}
	return s, nil
}
