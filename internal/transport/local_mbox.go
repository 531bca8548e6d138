package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Errors of mbox and file delivery, mapped onto results by the caller.
var (
	// errMailboxFull: the message would grow the file beyond
	// mailbox_size_limit (5.2.2, RFC 3463 "mailbox full").
	errMailboxFull = errors.New("mailbox full")
	// errUnsafeFile: the destination is a symbolic link, not a regular
	// file, has several hard links, or is not owned or writable by the
	// user the delivery runs as (Postfix's safe_open checks).
	errUnsafeFile = errors.New("unsafe destination file")
	// errLocked: the mailbox stayed locked by another program.
	errLocked = errors.New("mailbox is locked")
)

// fileOwner is who a delivery to a file runs as. check false means the
// process's own rights decide (not running as root).
type fileOwner struct {
	uid, gid int
	check    bool
}

// may applies the permission bits of st (0o2 write, 0o1 search, …)
// for o: owner, group or other, as the kernel would for a process
// running as o.
func (o fileOwner) may(st *syscall.Stat_t, bits uint32) bool {
	if !o.check || o.uid == 0 {
		return true
	}
	mode := st.Mode & 0o777
	switch {
	case int(st.Uid) == o.uid:
		return mode&(bits<<6) == bits<<6
	case int(st.Gid) == o.gid:
		return mode&(bits<<3) == bits<<3
	}
	return mode&bits == bits
}

// mboxOptions says how one append to an mbox-format file goes.
type mboxOptions struct {
	owner fileOwner
	// mustOwn: an existing file must belong to owner.uid (the user's
	// mailbox); else it need only be writable by owner (a /file
	// destination).
	mustOwn bool
	// dotlock adds path.lock to the fcntl lock (mailbox_delivery_lock
	// "fcntl, dotlock"); Postfix uses it for the mail spool and home
	// mailboxes alike.
	dotlock bool
	limit   int64         // mailbox_size_limit; 0 means none
	wait    time.Duration // how long to wait for locks
	now     time.Time
}

// staleLockTime is Postfix's stale_lock_time: a dot-lock older than
// this is left over from a crash and removed.
const staleLockTime = 500 * time.Second

// appendMbox appends one message in mbox format (mbox(5): a "From "
// line, the headers given, the content with CRLF turned into LF and
// lines starting "From " quoted as ">From ", then an empty line) to
// path, under an fcntl lock and optionally a dot-lock, and fsyncs it.
// On any failure the file is cut back to its old size, so a half
// message is never left behind.
func appendMbox(ctx context.Context, path string, o mboxOptions, sender string, headers []string, content io.Reader) (err error) {
	f, created, err := openForAppend(path, o.owner, o.mustOwn)
	if err != nil {
		return err
	}
	defer f.Close()
	if created {
		defer func() {
			if err != nil {
				// Nothing of ours may stay behind, not even an empty file.
				_ = os.Remove(path)
			}
		}()
	}
	if o.dotlock {
		unlock, err := dotLock(ctx, path, o.owner, o.wait, o.now)
		if err != nil {
			return err
		}
		defer unlock()
	}
	if err := fcntlLock(ctx, f, o.wait); err != nil {
		return err
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	start := st.Size()
	if o.limit > 0 && start >= o.limit {
		return errMailboxFull
	}
	if _, err := f.Seek(0, io.SeekEnd); err != nil {
		return fmt.Errorf("seek %s: %w", path, err)
	}
	lw := &limitWriter{w: f, left: -1}
	if o.limit > 0 {
		lw.left = o.limit - start
	}
	bw := bufio.NewWriterSize(lw, 64<<10)
	err = writeMboxMessage(ctx, bw, sender, headers, content, o.now, true)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		if terr := f.Truncate(start); terr != nil {
			return fmt.Errorf("write %s: %w (and cannot truncate it back: %v)", path, err, terr)
		}
		_ = f.Sync()
		if errors.Is(err, errMailboxFull) {
			return errMailboxFull
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	if created {
		return syncParent(path)
	}
	return nil
}

// writeMboxMessage writes the "From " line, headers and content. quote
// turns "From " at the start of a line into ">From " and ends the
// message with an empty line (mbox); commands get the content as is.
func writeMboxMessage(ctx context.Context, w *bufio.Writer, sender string, headers []string, content io.Reader, now time.Time, quote bool) error {
	from := sender
	if from == "" {
		from = "MAILER-DAEMON"
	}
	// mbox(5): "From " envelope-sender asctime(3) date.
	fmt.Fprintf(w, "From %s  %s\n", oneHeaderLine(from), now.Format("Mon Jan _2 15:04:05 2006"))
	for _, h := range headers {
		w.WriteString(h)
		w.WriteByte('\n')
	}
	br := bufio.NewReaderSize(content, 64<<10)
	atStart, pendingCR := true, false
	for lines := 0; ; lines++ {
		if lines%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			if pendingCR && chunk[0] != '\n' {
				w.WriteByte('\r')
			}
			pendingCR = false
			if quote && atStart && bytes.HasPrefix(chunk, []byte("From ")) {
				w.WriteByte('>') // mbox(5) "From " quoting
			}
			complete := chunk[len(chunk)-1] == '\n'
			switch {
			case complete && len(chunk) >= 2 && chunk[len(chunk)-2] == '\r':
				w.Write(chunk[:len(chunk)-2])
				w.WriteByte('\n')
			case !complete && chunk[len(chunk)-1] == '\r':
				w.Write(chunk[:len(chunk)-1]) // a CR at a buffer boundary: decided by the next byte
				pendingCR = true
			default:
				w.Write(chunk)
			}
			atStart = complete
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read message: %w", err)
		}
	}
	if pendingCR {
		atStart = false // a CR that ends the content ends its last line
	}
	if !atStart {
		w.WriteByte('\n')
	}
	if quote {
		// Postfix's MAIL_COPY_BLANK: an empty line ends each message, so
		// the next "From " line starts after one.
		w.WriteByte('\n')
	}
	return nil
}

// limitWriter fails with errMailboxFull once more than left bytes are
// written (left < 0: no limit), like the file size limit Postfix sets.
type limitWriter struct {
	w    io.Writer
	left int64
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if l.left >= 0 {
		if int64(len(p)) > l.left {
			return 0, errMailboxFull
		}
		l.left -= int64(len(p))
	}
	return l.w.Write(p)
}

// openForAppend opens path for appending without following a symbolic
// link, creating it (mode 0600, owned by o) when missing. An existing
// file must be a regular file with one link, and owned by o (mustOwn:
// the user's mailbox) or writable by o. A mailbox, whose path the
// configuration gives, is created with the agent's rights, as local(8)
// creates spool mailboxes as root; any other file only where o could
// reach and create it (every parent directory searchable, the last one
// writable).
func openForAppend(path string, o fileOwner, mustOwn bool) (*os.File, bool, error) {
	if !mustOwn {
		if err := reachable(filepath.Dir(path), o); err != nil {
			return nil, false, err
		}
	}
	for range 2 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
		if err == nil {
			if err := checkOpened(f, path, o, mustOwn); err != nil {
				f.Close()
				return nil, false, err
			}
			return f, false, nil
		}
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.EMLINK) {
			return nil, false, fmt.Errorf("%w: %s is a symbolic link", errUnsafeFile, path)
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("open %s: %w", path, err)
		}
		dir := filepath.Dir(path)
		var dst syscall.Stat_t
		if err := syscall.Stat(dir, &dst); err != nil {
			return nil, false, fmt.Errorf("create %s: %w", path, err)
		}
		if !mustOwn && !o.may(&dst, 0o3) {
			return nil, false, fmt.Errorf("%w: create %s: directory not writable by uid %d", errUnsafeFile, path, o.uid)
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue // created meanwhile by another delivery: open that one
		}
		if err != nil {
			return nil, false, fmt.Errorf("create %s: %w", path, err)
		}
		if o.check && os.Geteuid() == 0 {
			if err := f.Chown(o.uid, o.gid); err != nil {
				f.Close()
				_ = os.Remove(path)
				return nil, false, fmt.Errorf("chown %s: %w", path, err)
			}
		}
		return f, true, nil
	}
	return nil, false, fmt.Errorf("open %s: created and removed under us", path)
}

// reachable checks that o may search every directory from / down to
// dir.
func reachable(dir string, o fileOwner) error {
	if !o.check || o.uid == 0 {
		return nil
	}
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			return fmt.Errorf("stat %s: %w", d, err)
		}
		if !o.may(&st, 0o1) {
			return fmt.Errorf("%w: directory %s is not searchable by uid %d", errUnsafeFile, d, o.uid)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// checkOpened applies Postfix's safe_open rules to an opened file.
func checkOpened(f *os.File, path string, o fileOwner, mustOwn bool) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%w: %s is not a regular file", errUnsafeFile, path)
	case !ok:
		return fmt.Errorf("stat %s: no owner information", path)
	case st.Nlink > 1:
		return fmt.Errorf("%w: %s has %d hard links", errUnsafeFile, path, st.Nlink)
	case mustOwn && o.check && int(st.Uid) != o.uid:
		return fmt.Errorf("%w: %s is owned by uid %d, not %d", errUnsafeFile, path, st.Uid, o.uid)
	case !o.may(st, 0o2):
		return fmt.Errorf("%w: %s is not writable by uid %d", errUnsafeFile, path, o.uid)
	}
	return nil
}

// fcntlLock takes a POSIX write lock on f, polling until wait passes.
func fcntlLock(ctx context.Context, f *os.File, wait time.Duration) error {
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: io.SeekStart}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("lock %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %s (fcntl)", errLocked, f.Name())
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// dotLock creates path.lock exclusively (the dot-lock convention of
// mail readers), removing one older than staleLockTime. It returns the
// function that removes the lock.
func dotLock(ctx context.Context, path string, o fileOwner, wait time.Duration, now time.Time) (func(), error) {
	lock := path + ".lock"
	deadline := time.Now().Add(wait)
	for {
		f, err := os.OpenFile(lock, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
		if err == nil {
			if o.check && os.Geteuid() == 0 {
				_ = f.Chown(o.uid, o.gid)
			}
			f.Close()
			return func() { _ = os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("create lock %s: %w", lock, err)
		}
		if fi, err := os.Lstat(lock); err == nil && now.Sub(fi.ModTime()) > staleLockTime {
			_ = os.Remove(lock)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: %s exists", errLocked, lock)
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// syncParent fsyncs the directory holding path, so a new file's entry
// is durable.
func syncParent(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("open directory of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory of %s: %w", path, err)
	}
	return nil
}

// oneHeaderLine keeps a value on one line: control characters become
// spaces.
func oneHeaderLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
