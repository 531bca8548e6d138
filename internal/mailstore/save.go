package mailstore

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// saveReq is a message already renamed into new/ or cur/ and fsynced,
// waiting for its directory fsync and its UID.
type saveReq struct {
	base, name string
	inNew      bool
	letters    string
	size       int64
	vsize      int64
	date       int64

	uidValidity, uid uint32
	err              error
	done             chan struct{}
}

// batcher groups the commits of messages saved to one mailbox at the
// same time: one leader fsyncs new/ and cur/ once and writes the UIDs of
// the whole group to dovecot-uidlist with one fsync, while the others
// wait. This is the group commit DESIGN.md asks for.
type batcher struct {
	mu      sync.Mutex
	pending []*saveReq
	running bool
}

// commit makes the saved files durable and gives them UIDs. It returns
// when every request is done.
func (mb *mbox) commit(ctx context.Context, reqs ...*saveReq) {
	for _, r := range reqs {
		r.done = make(chan struct{})
	}
	b := &mb.batch
	b.mu.Lock()
	b.pending = append(b.pending, reqs...)
	if !b.running {
		b.running = true
		for len(b.pending) > 0 {
			group := b.pending
			b.pending = nil
			b.mu.Unlock()
			mb.commitGroup(context.WithoutCancel(ctx), group)
			b.mu.Lock()
		}
		b.running = false
	}
	b.mu.Unlock()
	for _, r := range reqs {
		<-r.done
	}
}

func (mb *mbox) commitGroup(ctx context.Context, group []*saveReq) {
	err := mb.commitGroupErr(ctx, group)
	for _, r := range group {
		if err != nil && r.err == nil {
			r.err = err
		}
		close(r.done)
	}
}

func (mb *mbox) commitGroupErr(ctx context.Context, group []*saveReq) error {
	syncNew, syncCur := false, false
	for _, r := range group {
		if r.inNew {
			syncNew = true
		} else {
			syncCur = true
		}
	}
	if syncNew {
		if err := fsyncDir(filepath.Join(mb.paths.Dir, "new")); err != nil {
			return err
		}
	}
	if syncCur {
		if err := fsyncDir(filepath.Join(mb.paths.Dir, "cur")); err != nil {
			return err
		}
	}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if !mb.loaded || !mb.exists {
		if err := mb.sync(ctx); err != nil {
			return err
		}
	}
	if err := mb.appendUIDs(ctx, group); err != nil {
		return err
	}
	for _, r := range group {
		m := mb.byBase[r.base]
		if m == nil {
			return fmt.Errorf("save to %s: message %s vanished before it got a UID", mb.paths.Name, r.base)
		}
		r.uidValidity, r.uid = mb.uidValidity, m.uid
	}
	mb.version++
	mb.indexDirty = true
	mb.notify(nil)
	mb.writeIndex(false, false)
	return nil
}

// appendUIDs gives the group's files UIDs. When dovecot-uidlist is as
// this process last left it, the records are appended in place under the
// lock, as Dovecot does; otherwise a full rescan assigns them.
// mb.mu is held.
func (mb *mbox) appendUIDs(ctx context.Context, group []*saveReq) error {
	path := filepath.Join(mb.paths.Control, uidListName)
	known := true
	for _, r := range group {
		if mb.byBase[r.base] == nil {
			known = false
		}
	}
	if known && mb.loaded && mb.exists {
		return nil // a scan found them first and gave them UIDs
	}
	l, err := lockFile(ctx, path, mb.own)
	if err != nil {
		return err
	}
	if st := statOf(path); !st.ok || st != mb.stUID || !mb.loaded || !mb.exists || !mb.uidListComplete {
		l.unlock()
		mb.trusted = false
		return mb.sync(ctx)
	}
	var buf bytes.Buffer
	next := mb.nextUID
	var add []*msg
	for _, r := range group {
		if mb.byBase[r.base] != nil {
			continue
		}
		appendRecord(&buf, uidRec{UID: next, Name: r.base})
		add = append(add, &msg{uid: next, base: r.base, name: r.name, inNew: r.inNew, letters: r.letters, size: r.size, vsize: r.vsize, date: r.date})
		next++
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		l.unlock()
		return fmt.Errorf("open %s: %w", path, err)
	}
	_, werr := f.Write(buf.Bytes())
	serr := f.Sync()
	cerr := f.Close()
	if werr != nil || serr != nil || cerr != nil {
		l.unlock()
		mb.trusted = false
		return fmt.Errorf("append to %s: %w", path, errors.Join(werr, serr, cerr))
	}
	mb.stUID = statOf(path)
	l.unlock()
	mb.nextUID = next
	mb.uidListRecs += len(add)
	var modseq uint64
	if len(add) > 0 {
		modseq = mb.bumpModSeq()
	}
	for _, m := range add {
		m.modseq = modseq
		if m.inNew {
			mb.nNew++
		}
		mb.msgs = append(mb.msgs, m)
		mb.byUID[m.uid] = m
		mb.byBase[m.base] = m
	}
	return nil
}

// newBase returns a unique Maildir base name in Dovecot's form
// <secs>.M<usecs>P<pid>Q<n>.<host>.
func (s *MaildirStore) newBase(now time.Time) string {
	q := s.seq.Add(1)
	return fmt.Sprintf("%d.M%dP%dQ%d.%s", now.Unix(), now.Nanosecond()/1000, s.pid, q, s.host)
}

// save writes r into tmp/, fsyncs it and renames it into new/ (no flags)
// or cur/ (with flags), then commits it. It returns the UIDVALIDITY and
// UID. A crash before the rename leaves only a file in tmp/, removed
// after 36 hours.
func (mb *mbox) save(ctx context.Context, letters string, date time.Time, r io.Reader) (uint32, uint32, error) {
	now := time.Now()
	base := mb.s.newBase(now)
	tmp := filepath.Join(mb.paths.Dir, "tmp", base)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, 0, fmt.Errorf("save to %s: %w", mb.paths.Name, err)
	}
	size, vsize, err := writeLF(ctx, f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = mb.own.chown(tmp)
	}
	if err == nil && !date.IsZero() {
		err = os.Chtimes(tmp, date, date)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, 0, fmt.Errorf("save to %s: %w", mb.paths.Name, err)
	}
	if date.IsZero() {
		date = now
		if st, err := os.Stat(tmp); err == nil {
			date = st.ModTime()
		}
	}
	return mb.place(ctx, tmp, base, letters, size, vsize, date)
}

// place renames a complete, fsynced file from tmp/ into the mailbox and
// commits it.
func (mb *mbox) place(ctx context.Context, tmp, base, letters string, size, vsize int64, date time.Time) (uint32, uint32, error) {
	req, err := mb.rename(tmp, base, letters, size, vsize, date)
	if err != nil {
		return 0, 0, err
	}
	mb.commit(ctx, req)
	if req.err != nil {
		return 0, 0, fmt.Errorf("save to %s: %w", mb.paths.Name, req.err)
	}
	return req.uidValidity, req.uid, nil
}

// rename moves a file from tmp/ into new/ (no flags) or cur/ under its
// final name with sizes, the way Dovecot names it.
func (mb *mbox) rename(tmp, base, letters string, size, vsize int64, date time.Time) (*saveReq, error) {
	full := base + ",S=" + strconv.FormatInt(size, 10) + ",W=" + strconv.FormatInt(vsize, 10)
	req := &saveReq{base: full, letters: letters, size: size, vsize: vsize, date: date.UnixNano()}
	var dest string
	if letters == "" {
		req.inNew, req.name = true, full
		dest = filepath.Join(mb.paths.Dir, "new", full)
	} else {
		req.name = curName(full, letters)
		dest = filepath.Join(mb.paths.Dir, "cur", req.name)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("save to %s: %w", mb.paths.Name, err)
	}
	return req, nil
}

// writeLF copies r to w turning CRLF into LF, as Dovecot stores mail
// (mail_save_crlf = no). It returns the size written and the size with
// CRLF line ends (the W= of the file name, RFC822.SIZE).
func writeLF(ctx context.Context, w io.Writer, r io.Reader) (size, vsize int64, err error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	buf := make([]byte, 64<<10)
	out := make([]byte, 0, 64<<10)
	pendingCR := false
	var last byte
	for {
		if err := ctx.Err(); err != nil {
			return 0, 0, err
		}
		n, rerr := r.Read(buf)
		out = out[:0]
		for _, c := range buf[:n] {
			if pendingCR {
				pendingCR = false
				if c == '\n' {
					out = append(out, '\n')
					continue
				}
				out = append(out, '\r')
			}
			if c == '\r' {
				pendingCR = true
				continue
			}
			out = append(out, c)
		}
		if rerr == io.EOF && pendingCR {
			out = append(out, '\r')
		}
		for _, c := range out {
			if c == '\n' && last != '\r' {
				vsize++
			}
			last = c
		}
		size += int64(len(out))
		if _, err := bw.Write(out); err != nil {
			return 0, 0, err
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return 0, 0, fmt.Errorf("read message: %w", rerr)
		}
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, err
	}
	return size, size + vsize, nil
}
