package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"postcote/internal/maillog"
)

// Errors callers can test for with errors.Is.
var (
	// ErrMessageTooBig: the content exceeded Options.MaxMessageSize
	// (smtpd answers 552 5.3.4, RFC 5321 4.5.3.1.10 / RFC 1870).
	ErrMessageTooBig = errors.New("message too big")
	// ErrInsufficientStorage: less than Options.QueueMinFree bytes are
	// free; a temporary condition (smtpd answers 452 4.3.1).
	ErrInsufficientStorage = errors.New("insufficient system storage")
	// ErrClosed: the queue was closed.
	ErrClosed = errors.New("queue closed")
	// ErrNotFound: no message with that queue ID.
	ErrNotFound = errors.New("no such queue ID")
	// ErrNoRecipients: an envelope without recipients was offered.
	ErrNoRecipients = errors.New("no recipients")
)

// Options tune the queue. Zero values take the Postfix defaults.
type Options struct {
	Logger *maillog.Logger // nil: no logging

	MinimalBackoff       time.Duration // minimal_backoff_time, default 300s
	MaximalBackoff       time.Duration // maximal_backoff_time, default 4000s
	QueueRunDelay        time.Duration // queue_run_delay, default 300s: the longest the scheduler sleeps without looking
	MaximalQueueLifetime time.Duration // maximal_queue_lifetime, default 5d; negative means 0 (bounce on first deferral)
	BounceQueueLifetime  time.Duration // bounce_queue_lifetime, default 5d; negative means 0
	DelayWarningTime     time.Duration // delay_warning_time, 0 = no delay warnings
	MaxMessageSize       int64         // message_size_limit, default 10240000; negative = unlimited
	BounceSizeLimit      int64         // bounce_size_limit, default 50000: larger originals are returned as headers only
	Concurrency          int           // parallel deliveries for an Agent that is not a Router, default 20
	ActiveLimit          int           // qmgr_message_active_limit: messages in delivery at once, default 20000
	Hostname             string        // myhostname, for bounces; default os.Hostname()
	QueueMinFree         int64         // queue_minfree in bytes, 0 = no check
	Notify               Notify        // notify_classes and the postmaster notice recipients (notify.go); zero: none

	// Now is the clock; tests inject one. Default time.Now.
	Now func() time.Time

	// SegmentSize is the size at which a new segment file is started,
	// default 64 MiB. LargeThreshold is the content size above which a
	// message goes to its own file, default 1 MiB. Tests lower both.
	SegmentSize    int64
	LargeThreshold int64
}

func (o *Options) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		} else if *d < 0 {
			*d = 0
		}
	}
	def(&o.MinimalBackoff, 300*time.Second)
	def(&o.MaximalBackoff, 4000*time.Second)
	def(&o.QueueRunDelay, 300*time.Second)
	def(&o.MaximalQueueLifetime, 5*24*time.Hour)
	def(&o.BounceQueueLifetime, 5*24*time.Hour)
	if o.DelayWarningTime < 0 {
		o.DelayWarningTime = 0
	}
	if o.MaximalBackoff < o.MinimalBackoff {
		o.MaximalBackoff = o.MinimalBackoff
	}
	if o.QueueRunDelay <= 0 {
		o.QueueRunDelay = 300 * time.Second
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = 10240000
	}
	if o.BounceSizeLimit <= 0 {
		o.BounceSizeLimit = 50000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 20
	}
	if o.ActiveLimit <= 0 {
		o.ActiveLimit = 20000
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
		if o.Hostname == "" {
			o.Hostname = "localhost"
		}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SegmentSize <= 0 {
		o.SegmentSize = 64 << 20
	}
	if o.LargeThreshold <= 0 {
		o.LargeThreshold = 1 << 20
	}
	// Records must stay well under maxRecord, which replay enforces.
	o.LargeThreshold = min(o.LargeThreshold, maxRecord/4)
	o.BounceSizeLimit = min(o.BounceSizeLimit, maxRecord/4)
}

// Queue is an open spool with its in-memory index and scheduler. All
// methods are safe for concurrent use.
type Queue struct {
	dir  string
	opts Options
	log  *maillog.Logger
	ids  idGen
	lock *os.File

	reqs          chan *request
	submitters    sync.WaitGroup
	committerDone chan struct{}

	// Owned by the committer goroutine (and Open before it starts).
	seg     *os.File
	segNum  uint64
	segSize int64
	batch   []byte
	salvage bool // damaged segments found at Open: copy their messages out
	// segPrealloc: the current segment was filled with zeros in advance,
	// so appending to it changes no file metadata and fdatasync has only
	// data to flush. A spare is prepared in the background (spare.go).
	segPrealloc bool
	spareBusy   bool          // a spare is being prepared or waits in spareCh
	spareCh     chan *os.File // a prepared spare, or nil when preparing failed
	spareStop   chan struct{}
	spareWG     sync.WaitGroup
	readOnly    bool  // Snapshot: read the spool, change nothing
	fsyncs      int64 // file and directory syncs by the committer, for benchmarks; under mu

	mu      sync.Mutex
	closed  bool
	broken  error // a write or fsync failed: refuse further commits
	msgs    map[ID]*entry
	segs    map[uint64]*segInfo
	ready   []ID
	retry   retryHeap
	wake    chan struct{}
	running bool
	sched   *sched // Run's scheduler while it runs
}

// entry is the in-memory index of one queued message: its envelope and
// where its content is, never the content itself.
type entry struct {
	env       Envelope
	held      bool
	warned    bool
	large     bool
	nextRetry time.Time
	size      int64
	seg       uint64 // segment holding the message record
	off       int64  // content offset in that segment (0 for large)
	recLen    int64  // length of the message record

	// Not on disk.
	inflight bool      // in a delivery round (its deliveries may run in parallel)
	queued   bool      // in q.ready
	readyAt  time.Time // when it last became due, for delays=b
	enqueued time.Time // when Enqueue committed it, for delays=a
}

type segInfo struct {
	live      int   // message records in this segment still current
	liveBytes int64 // their bytes
	size      int64
	corrupt   bool
}

// request is a group of records that must reach the disk together.
type request struct {
	recs []pending
	done chan error
}

type pending struct {
	data []byte
	rec  *record
	logs []logLine // to log once durable (notices)
}

// Open creates the spool in dir or recovers the one there: it replays
// every segment, truncates a torn final record, salvages what follows a
// damaged one (moving the damaged segment to corrupt/), and starts the
// committer. Messages found are scheduled once Run starts.
func Open(dir string, opts Options) (*Queue, error) {
	opts.setDefaults()
	q := &Queue{
		dir:           dir,
		opts:          opts,
		log:           opts.Logger,
		reqs:          make(chan *request, 1024),
		committerDone: make(chan struct{}),
		msgs:          make(map[ID]*entry),
		segs:          make(map[uint64]*segInfo),
		wake:          make(chan struct{}, 1),
		spareCh:       make(chan *os.File, 1),
		spareStop:     make(chan struct{}),
	}
	for _, d := range []string{dir, q.spoolDir(), q.largeDir(), q.corruptDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open queue %s: %w", dir, err)
		}
	}
	lock, err := lockDir(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, fmt.Errorf("open queue %s: %w", dir, err)
	}
	q.lock = lock
	if err := q.recover(); err != nil {
		q.closeFiles()
		return nil, fmt.Errorf("open queue %s: %w", dir, err)
	}
	// Copy live messages out of damaged segments before anything else.
	salvage := q.hasCorrupt()
	q.salvage = salvage
	go q.commitLoop()
	if salvage {
		if err := q.commit(context.Background(), nil); err != nil {
			q.Close()
			return nil, fmt.Errorf("open queue %s: salvage damaged segments: %w", dir, err)
		}
	}
	// A crash between a message's last results and its removal record
	// leaves it with nothing to do: finish it now.
	var finished []pending
	q.mu.Lock()
	for id, e := range q.msgs {
		if len(e.pendingRcpts()) == 0 {
			finished = append(finished, pending{data: encodeSimple(recRemove, id), rec: &record{typ: recRemove, id: id},
				logs: []logLine{{"qmgr", fmt.Sprintf("%s: removed", id)}}})
		}
	}
	q.mu.Unlock()
	if len(finished) > 0 {
		if err := q.commit(context.Background(), finished); err != nil {
			q.Close()
			return nil, fmt.Errorf("open queue %s: remove finished messages: %w", dir, err)
		}
		for _, p := range finished {
			q.logf(p.logs[0].program, "%s", p.logs[0].text)
		}
	}
	return q, nil
}

func (q *Queue) spoolDir() string       { return filepath.Join(q.dir, "spool") }
func (q *Queue) largeDir() string       { return filepath.Join(q.dir, "large") }
func (q *Queue) corruptDir() string     { return filepath.Join(q.dir, "corrupt") }
func (q *Queue) largePath(id ID) string { return filepath.Join(q.largeDir(), string(id)) }
func (q *Queue) segPath(n uint64) string {
	return filepath.Join(q.spoolDir(), fmt.Sprintf("%012d.seg", n))
}

func (q *Queue) now() time.Time { return q.opts.Now() }

// NewID returns a fresh long queue ID (Postfix enable_long_queue_ids
// form): six or more base-52 characters of seconds, four of
// microseconds, 'z', and a base-51 sequence number.
func (q *Queue) NewID() ID { return q.ids.next(q.now()) }

// listSegments returns the segment numbers in dir, ascending.
func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".seg") || e.IsDir() {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSuffix(name, ".seg"), 10, 64)
		if err != nil || n == 0 {
			continue
		}
		nums = append(nums, n)
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return nums, nil
}

func (q *Queue) seginfo(n uint64) *segInfo {
	si := q.segs[n]
	if si == nil {
		si = &segInfo{}
		q.segs[n] = si
	}
	return si
}

func (q *Queue) segUnref(e *entry) {
	if si := q.segs[e.seg]; si != nil {
		si.live--
		si.liveBytes -= e.recLen
	}
}

// apply changes the index as record r (at seg/off) says. It is the one
// place state changes, for replay and live commits alike. q.mu is held
// (or Open is single-threaded).
func (q *Queue) apply(r *record, seg uint64, off, recLen int64) {
	e := q.msgs[r.id]
	switch r.typ {
	case recMessage:
		if e != nil {
			q.segUnref(e)
		} else {
			e = &entry{}
			q.msgs[r.id] = e
		}
		e.env = r.env
		e.held = r.flags&flagHeld != 0
		e.warned = r.flags&flagWarned != 0
		e.large = r.flags&flagLarge != 0
		e.nextRetry = r.nextRetry
		e.size = r.size
		e.seg, e.recLen = seg, recLen
		e.off = off + r.contentOff
		if e.large {
			e.off = 0
		}
		si := q.seginfo(seg)
		si.live++
		si.liveBytes += recLen
	case recUpdate:
		if e == nil {
			return
		}
		for _, u := range r.updates {
			if u.idx < len(e.env.Recipients) {
				e.env.Recipients[u.idx].setState(u.rcpt)
			}
		}
		e.warned = r.flags&flagWarned != 0
		e.nextRetry = r.nextRetry
	case recHold:
		if e != nil {
			e.held = true
		}
	case recRelease:
		if e != nil {
			e.held = false
			e.nextRetry = time.Time{}
		}
	case recRemove:
		if e == nil {
			return
		}
		q.segUnref(e)
		delete(q.msgs, r.id)
	}
}

func (q *Queue) hasCorrupt() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, si := range q.segs {
		if si.corrupt {
			return true
		}
	}
	return false
}

// commit hands records to the committer and waits until they are on disk
// (or failed). An empty recs still runs a commit cycle (used to trigger
// salvage at Open).
func (q *Queue) commit(ctx context.Context, recs []pending) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return ErrClosed
	}
	if q.broken != nil {
		err := q.broken
		q.mu.Unlock()
		return err
	}
	q.submitters.Add(1)
	q.mu.Unlock()
	defer q.submitters.Done()
	req := &request{recs: recs, done: make(chan error, 1)}
	select {
	case q.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, the records may reach the disk; wait for the
	// verdict whatever ctx says, so the caller never mistakes a
	// committed message for a failed one.
	return <-req.done
}

// Close stops accepting work, waits for commits under way and closes the
// spool. Cancel Run's context first: results of deliveries still running
// after Close cannot be recorded (they are retried after restart).
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	q.submitters.Wait()
	close(q.reqs)
	<-q.committerDone
	q.stopSpare()
	return q.closeFiles()
}

func (q *Queue) closeFiles() error {
	var err error
	if q.seg != nil {
		err = q.seg.Close()
		q.seg = nil
	}
	if q.lock != nil {
		q.lock.Close()
		q.lock = nil
	}
	return err
}

func (q *Queue) logf(program, format string, args ...any) {
	q.log.Printf(program, format, args...)
}

// syncDir makes the directory entries in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// sectionFile is a message's content opened for reading.
type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionFile) Close() error { return s.f.Close() }

// openContent opens the content of message id where it lives now. A
// message copied forward between the lookup and the open is looked up
// again.
func (q *Queue) openContent(id ID) (io.ReadCloser, error) {
	var lastErr error
	for try := 0; try < 5; try++ {
		q.mu.Lock()
		e := q.msgs[id]
		if e == nil {
			q.mu.Unlock()
			return nil, fmt.Errorf("queue: %s: %w", id, ErrNotFound)
		}
		path, off, size := q.segPath(e.seg), e.off, e.size
		if e.large {
			path = q.largePath(id)
		}
		q.mu.Unlock()
		f, err := os.Open(path)
		if errors.Is(err, fs.ErrNotExist) {
			lastErr = err
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("queue: open content of %s: %w", id, err)
		}
		return &sectionFile{io.NewSectionReader(f, off, size), f}, nil
	}
	return nil, fmt.Errorf("queue: open content of %s: %w", id, lastErr)
}
