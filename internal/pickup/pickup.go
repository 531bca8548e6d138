package pickup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/queue"
)

// Queue is what pickup needs of the queue (queue.Queue has it).
type Queue interface {
	NewID() queue.ID
	Enqueue(ctx context.Context, env *queue.Envelope, content io.Reader) error
}

// Options configure a Pickup.
type Options struct {
	Dir        string // the maildrop folder, QDIR/maildrop
	CorruptDir string // where unreadable files go, QDIR/corrupt
	WakeSocket string // PUBLIC/pickup; "" for none
	Site       Site
	Queue      Queue
	Logger     *maillog.Logger
	// Interval is how often the folder is scanned without a wake-up
	// (default 1 s).
	Interval time.Duration
	// MaxSize is message_size_limit: a bigger file is set aside as
	// corrupt (sendmail refuses such a message before it is written).
	// 0 means no limit.
	MaxSize int64
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// staleTemp is how old an abandoned temporary file must be before
// pickup removes it (sendmail killed while writing).
const staleTemp = 24 * time.Hour

// Pickup moves maildrop files into the queue.
type Pickup struct {
	o       Options
	wake    chan struct{}
	sock    *net.UnixConn
	mu      sync.Mutex
	failing map[string]bool // names whose enqueue failed, logged once
	stuck   map[string]bool // queued but not removable: never queue again
}

// PrepareDir creates the maildrop folder with its mode (see the package
// comment); sendmail calls it when it runs as root before the server ever
// started, New calls it always.
func PrepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("maildrop: %w", err)
	}
	// MkdirAll obeys the umask; the mode must be exact.
	if err := os.Chmod(dir, DirMode); err != nil {
		return fmt.Errorf("maildrop: %w", err)
	}
	return nil
}

// New prepares the folders and binds the wake-up socket.
func New(o Options) (*Pickup, error) {
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = maillog.Discard()
	}
	if err := PrepareDir(o.Dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.CorruptDir, 0o700); err != nil {
		return nil, fmt.Errorf("pickup: %w", err)
	}
	p := &Pickup{o: o, wake: make(chan struct{}, 1), failing: map[string]bool{}, stuck: map[string]bool{}}
	if o.WakeSocket != "" {
		if err := os.MkdirAll(filepath.Dir(o.WakeSocket), 0o755); err != nil {
			return nil, fmt.Errorf("pickup: %w", err)
		}
		// Only the process that owns the queue (flock) gets here, so a
		// socket left at the path is a dead server's.
		os.Remove(o.WakeSocket)
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: o.WakeSocket, Net: "unixgram"})
		if err != nil {
			return nil, fmt.Errorf("pickup: %w", err)
		}
		if err := os.Chmod(o.WakeSocket, 0o666); err != nil {
			c.Close()
			return nil, fmt.Errorf("pickup: %w", err)
		}
		p.sock = c
	}
	return p, nil
}

// Wake pokes a running pickup through its socket so it scans at once.
// Errors are ignored: without a server the file waits in maildrop, and a
// running pickup scans every second anyway.
func Wake(socket string) {
	c, err := net.DialTimeout("unixgram", socket, time.Second)
	if err != nil {
		return
	}
	c.SetDeadline(time.Now().Add(time.Second))
	c.Write([]byte{'W'})
	c.Close()
}

// Run scans the maildrop folder at every wake-up and every Interval until
// ctx is done, then closes the socket.
func (p *Pickup) Run(ctx context.Context) error {
	if p.sock != nil {
		go p.readWakes()
		defer func() {
			p.sock.Close()
			os.Remove(p.o.WakeSocket)
		}()
	}
	t := time.NewTicker(p.o.Interval)
	defer t.Stop()
	for {
		p.Scan(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-p.wake:
		}
	}
}

func (p *Pickup) readWakes() {
	buf := make([]byte, 16)
	for {
		if _, _, err := p.sock.ReadFromUnix(buf); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

// Scan queues every complete file in the folder, oldest first, and
// returns how many it queued.
func (p *Pickup) Scan(ctx context.Context) int {
	d, err := os.Open(p.o.Dir)
	if err != nil {
		p.o.Logger.Warnf("pickup", "open %s: %v", p.o.Dir, err)
		return 0
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		p.o.Logger.Warnf("pickup", "read %s: %v", p.o.Dir, err)
		return 0
	}
	sort.Strings(names)
	present := make(map[string]bool, len(names))
	n := 0
	for _, name := range names {
		if ctx.Err() != nil {
			break
		}
		present[name] = true
		if strings.HasPrefix(name, tempPrefix) {
			p.removeStale(name)
			continue
		}
		if strings.HasPrefix(name, ".") || p.stuck[name] {
			continue
		}
		if p.one(ctx, name) {
			n++
		}
	}
	p.mu.Lock()
	for _, m := range []map[string]bool{p.failing, p.stuck} {
		for name := range m {
			if !present[name] {
				delete(m, name)
			}
		}
	}
	p.mu.Unlock()
	return n
}

func (p *Pickup) removeStale(name string) {
	path := filepath.Join(p.o.Dir, name)
	st, err := os.Lstat(path)
	if err == nil && p.o.Now().Sub(st.ModTime()) > staleTemp {
		if os.Remove(path) == nil {
			p.o.Logger.Printf("pickup", "removed abandoned temporary file %s", name)
		}
	}
}

// one queues one file; it reports whether it did.
func (p *Pickup) one(ctx context.Context, name string) bool {
	path := filepath.Join(p.o.Dir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			p.setAside(name, -1, fmt.Errorf("open: %w", err))
		}
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		p.o.Logger.Warnf("pickup", "stat %s: %v", path, err)
		return false
	}
	uid := -1
	var nlink uint64 = 1
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		uid, nlink = int(sys.Uid), uint64(sys.Nlink)
	}
	switch {
	case !st.Mode().IsRegular():
		p.setAside(name, uid, errors.New("not a regular file"))
		return false
	case nlink != 1:
		// A hard link to a file of someone else's: refusing it keeps a
		// user from mailing themselves a file they cannot read.
		p.setAside(name, uid, fmt.Errorf("%d hard links", nlink))
		return false
	case p.o.MaxSize > 0 && st.Size() > p.o.MaxSize+maxHeaderSize:
		p.setAside(name, uid, ErrTooBig)
		return false
	}
	data, err := io.ReadAll(f)
	if err != nil {
		p.o.Logger.Warnf("pickup", "read %s: %v", path, err)
		return false
	}
	sub, off, err := Parse(data)
	if err != nil {
		p.setAside(name, uid, err)
		return false
	}
	id := p.o.Queue.NewID()
	env, content, err := Prepare(sub, data[off:], uid, loginName(uid), id, p.o.Now(), p.o.Site)
	if err != nil {
		p.setAside(name, uid, err)
		return false
	}
	// Logged before cleanup's lines, in Postfix's order.
	p.o.Logger.Printf("pickup", "%s: uid=%d from=<%s>", id, uid, env.Sender)
	if err := p.o.Queue.Enqueue(ctx, env, bytes.NewReader(content)); err != nil {
		if errors.Is(err, queue.ErrMessageTooBig) || permanent(err) {
			// Retrying cannot help (too big, a mail loop, an alias
			// loop): the file goes where the administrator sees it.
			p.setAside(name, uid, err)
			return false
		}
		p.mu.Lock()
		first := !p.failing[name]
		p.failing[name] = true
		p.mu.Unlock()
		if first {
			p.o.Logger.Warnf("pickup", "%s: uid=%d: cannot queue, will retry: %v", name, uid, err)
		}
		return false
	}
	// Queued and durable: only now does the maildrop copy go. A crash
	// before this line queues the file again (a duplicate, not a loss).
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		p.o.Logger.Warnf("pickup", "%s: queued as %s but cannot remove it: %v", path, id, err)
		p.mu.Lock()
		p.stuck[name] = true
		p.mu.Unlock()
	}
	return true
}

// permanent reports an error that says of itself it will not go away
// (internal/rewrite's *Error for "too many hops").
func permanent(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && !t.Temporary()
}

// setAside moves a file pickup cannot queue into the corrupt folder,
// where the administrator finds it; nothing is deleted.
func (p *Pickup) setAside(name string, uid int, why error) {
	dst := filepath.Join(p.o.CorruptDir, "maildrop."+name)
	if err := os.Rename(filepath.Join(p.o.Dir, name), dst); err != nil {
		p.mu.Lock()
		first := !p.failing[name]
		p.failing[name] = true
		p.mu.Unlock()
		if first {
			p.o.Logger.Warnf("pickup", "%s: uid=%d: %v; cannot move it aside: %v", name, uid, why, err)
		}
		return
	}
	p.o.Logger.Warnf("pickup", "%s: uid=%d: %v; moved to %s", name, uid, why, dst)
}

// loginName is the name of a user id, as Postfix's sendmail takes it from
// getpwuid; the number when the user is unknown.
func loginName(uid int) string {
	if uid < 0 {
		return "nobody"
	}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil && u.Username != "" {
		return u.Username
	}
	return "uid" + strconv.Itoa(uid)
}

// Waiting lists the submissions waiting in the maildrop folder dir, for
// mailq while the server is down (Postfix's showq lists its maildrop
// queue too): the file name as ID, its time, the message size, the
// sender and the recipients pickup will give it. Files this process
// cannot read are skipped.
func Waiting(dir, origin string) ([]queue.Summary, error) {
	d, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []queue.Summary
	for _, name := range names {
		if strings.HasPrefix(name, ".") {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() || st.Size() > maxHeaderSize+(1<<30) {
			f.Close()
			continue
		}
		data, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			continue
		}
		sub, off, err := Parse(data)
		if err != nil {
			continue
		}
		uid := -1
		if sys, ok := st.Sys().(*syscall.Stat_t); ok {
			uid = int(sys.Uid)
		}
		sender := qualify(loginName(uid), origin)
		if sub.SenderSet {
			sender = qualify(sub.Sender, origin)
		}
		s := queue.Summary{ID: queue.ID(name), State: queue.StateDeferred, Arrival: st.ModTime(),
			Size: int64(len(data) - off), Sender: sender}
		for _, r := range Recipients(sub, data[off:], origin) {
			s.Recipients = append(s.Recipients, queue.Recipient{Address: r})
		}
		out = append(out, s)
	}
	return out, nil
}
