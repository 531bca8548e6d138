package mailstore

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Store changes flags by renaming the files (the Maildir info part). All
// messages changed by one call share one new MODSEQ (RFC 7162 3.1.3).
func (v *view) Store(ctx context.Context, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) ([]MessageInfo, []uint32, error) {
	if v.readOnly {
		return nil, nil, ErrReadOnly
	}
	if v.closed {
		return nil, nil, ErrNoMailbox
	}
	mb := v.mb
	letters, err := mb.lettersFor(ctx, flags)
	if err != nil {
		return nil, nil, err
	}
	uids = sortedUnique(uids)
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if err := mb.sync(ctx); err != nil {
		return nil, nil, err
	}
	var updated []MessageInfo
	var failed []uint32
	var newMod uint64
	for _, uid := range uids {
		i, ok := v.find(uid)
		if !ok {
			continue
		}
		m := mb.byUID[uid]
		if m == nil {
			continue // expunged by another session: nothing to store
		}
		if unchangedSince > 0 && m.modseq > unchangedSince {
			failed = append(failed, uid)
			continue
		}
		nl := applyLetters(m.letters, letters, op)
		if nl != m.letters || m.inNew {
			if m, err = mb.renameFlags(ctx, m, nl); err != nil {
				if errIsNotExist(err) {
					continue // expunged meanwhile
				}
				return updated, failed, err
			}
			if nl != m.letters {
				if newMod == 0 {
					newMod = mb.bumpModSeq()
				}
				m.letters = nl
				m.modseq = newMod
			}
		}
		info := mb.info(m, v.recent[uid])
		v.msgs[i] = info
		updated = append(updated, info)
	}
	if newMod > 0 {
		mb.version++
		mb.indexDirty = true
		mb.notify(v)
		mb.writeIndex(false, false)
	}
	return updated, failed, nil
}

// renameFlags renames m's file to carry letters. When the file moved
// meanwhile (another program changed its flags) it rescans once.
// mb.mu is held.
func (mb *mbox) renameFlags(ctx context.Context, m *msg, letters string) (*msg, error) {
	for attempt := 0; ; attempt++ {
		to := curName(m.base, letters)
		err := os.Rename(m.path(mb.paths.Dir), filepath.Join(mb.paths.Dir, "cur", to))
		if err == nil {
			if m.inNew {
				mb.nNew--
			}
			m.name, m.inNew = to, false
			return m, nil
		}
		if !errIsNotExist(err) || attempt > 0 {
			return nil, fmt.Errorf("store flags of UID %d: %w", m.uid, err)
		}
		mb.trusted = false
		if err := mb.sync(ctx); err != nil {
			return nil, err
		}
		if m = mb.byUID[m.uid]; m == nil {
			return nil, fmt.Errorf("store flags: %w", os.ErrNotExist)
		}
	}
}

// Expunge removes \Deleted messages the session knows (RFC 9051 6.4.3;
// UID EXPUNGE, RFC 4315 2.1, when uids is not nil).
func (v *view) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	if v.readOnly {
		return nil, ErrReadOnly
	}
	if v.closed {
		return nil, ErrNoMailbox
	}
	mb := v.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if err := mb.sync(ctx); err != nil {
		return nil, err
	}
	var want map[uint32]bool
	if uids != nil {
		want = make(map[uint32]bool, len(uids))
		for _, u := range uids {
			want[u] = true
		}
	}
	var targets []uint32
	for _, info := range v.msgs {
		if want != nil && !want[info.UID] {
			continue
		}
		if m := mb.byUID[info.UID]; m != nil && hasLetter(m.letters, 'T') {
			targets = append(targets, info.UID)
		}
	}
	return v.expungeLocked(ctx, targets)
}

// expungeLocked unlinks the files of uids, drops their uidlist records
// and removes them from the shared state and from v's snapshot.
// mb.mu is held.
func (v *view) expungeLocked(ctx context.Context, uids []uint32) ([]uint32, error) {
	mb := v.mb
	if len(uids) == 0 {
		return nil, nil
	}
	var removed []uint32
	for _, uid := range uids {
		m := mb.byUID[uid]
		if m == nil {
			continue
		}
		if err := os.Remove(m.path(mb.paths.Dir)); err != nil && !errIsNotExist(err) {
			return removed, fmt.Errorf("expunge UID %d: %w", uid, err)
		}
		removed = append(removed, uid)
	}
	if err := fsyncDir(filepath.Join(mb.paths.Dir, "cur")); err != nil {
		return removed, err
	}
	gone := make(map[uint32]bool, len(removed))
	for _, uid := range removed {
		gone[uid] = true
	}
	if err := mb.dropRecords(ctx, gone); err != nil {
		return removed, err
	}
	mb.msgs = slices.DeleteFunc(mb.msgs, func(m *msg) bool {
		if gone[m.uid] {
			if m.inNew {
				mb.nNew--
			}
			delete(mb.byUID, m.uid)
			delete(mb.byBase, m.base)
			return true
		}
		return false
	})
	mb.bumpModSeq() // RFC 7162 3.2.10: expunges change the mailbox's state
	mb.version++
	mb.indexDirty = true
	mb.notify(v)
	mb.writeIndex(false, false)
	v.msgs = slices.DeleteFunc(v.msgs, func(i MessageInfo) bool { return gone[i.UID] })
	for _, uid := range removed {
		delete(v.recent, uid)
	}
	return removed, nil
}

// dropRecords rewrites dovecot-uidlist without the given UIDs, keeping
// the header's next UID so that no UID is ever reused. mb.mu is held.
func (mb *mbox) dropRecords(ctx context.Context, gone map[uint32]bool) error {
	path := filepath.Join(mb.paths.Control, uidListName)
	l, err := lockFile(ctx, path, mb.own)
	if err != nil {
		return err
	}
	ul, err := mb.readUIDList()
	if err != nil || ul == nil || ul.UIDValidity != mb.uidValidity {
		l.unlock()
		mb.trusted = false
		return err
	}
	next := ul.nextUID()
	ul.Recs = slices.DeleteFunc(ul.Recs, func(r uidRec) bool { return gone[r.UID] })
	ul.NextUID = next
	if err := l.replace(ul.marshal(), true); err != nil {
		return err
	}
	mb.uidListComplete = true
	if mb.stUID.ok {
		mb.stUID = statOf(path)
	}
	mb.uidListRecs = len(ul.Recs)
	return nil
}

// srcMsg is what Copy needs of a source message.
type srcMsg struct {
	uid         uint32
	path        string
	letters     string
	keywords    []string
	size, vsize int64
	date        int64
}

// Copy copies messages into dest (RFC 9051 6.4.7) with hard links where
// the file system allows, as Dovecot does, and returns COPYUID data
// (RFC 4315 3).
func (v *view) Copy(ctx context.Context, uids []uint32, dest string) (uint32, []uint32, []uint32, error) {
	if v.closed {
		return 0, nil, nil, ErrNoMailbox
	}
	dmb, err := v.a.acquireExisting(ctx, dest)
	if err != nil {
		return 0, nil, nil, err
	}
	defer v.a.s.release(dmb)
	mb := v.mb
	var srcs []srcMsg
	mb.mu.Lock()
	if err := mb.sync(ctx); err != nil {
		mb.mu.Unlock()
		return 0, nil, nil, err
	}
	for _, uid := range sortedUnique(uids) {
		if _, ok := v.find(uid); !ok {
			continue
		}
		m := mb.byUID[uid]
		if m == nil {
			continue
		}
		sm := srcMsg{uid: uid, path: m.path(mb.paths.Dir), size: m.size, vsize: m.vsize, date: m.date}
		for i := 0; i < len(m.letters); i++ {
			if c := m.letters[i]; c >= 'a' && c <= 'z' {
				if k := mb.kw.name(int(c - 'a')); k != "" {
					sm.keywords = append(sm.keywords, k)
				}
			} else {
				sm.letters += string(c)
			}
		}
		srcs = append(srcs, sm)
	}
	mb.mu.Unlock()

	var reqs []*saveReq
	var srcUIDs []uint32
	fail := func(err error) (uint32, []uint32, []uint32, error) {
		// COPY is all or nothing (RFC 9051 6.4.7): take back what was
		// placed but not yet given a UID.
		for _, r := range reqs {
			if r.inNew {
				os.Remove(filepath.Join(dmb.paths.Dir, "new", r.name))
			} else {
				os.Remove(filepath.Join(dmb.paths.Dir, "cur", r.name))
			}
		}
		return 0, nil, nil, err
	}
	for _, sm := range srcs {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		kl, err := dmb.lettersFor(ctx, sm.keywords)
		if err != nil {
			return fail(err)
		}
		letters := sortLetters(sm.letters + kl)
		base := v.a.s.newBase(time.Now())
		tmp := filepath.Join(dmb.paths.Dir, "tmp", base)
		if err := linkOrCopy(ctx, sm.path, tmp, time.Unix(0, sm.date)); err != nil {
			if errIsNotExist(err) {
				continue // expunged meanwhile
			}
			return fail(fmt.Errorf("copy UID %d: %w", sm.uid, err))
		}
		if err := dmb.own.chown(tmp); err != nil {
			os.Remove(tmp)
			return fail(err)
		}
		req, err := dmb.rename(tmp, base, letters, sm.size, sm.vsize, time.Unix(0, sm.date))
		if err != nil {
			return fail(err)
		}
		reqs = append(reqs, req)
		srcUIDs = append(srcUIDs, sm.uid)
	}
	if len(reqs) == 0 {
		dmb.mu.Lock()
		err := dmb.sync(ctx)
		uv := dmb.uidValidity
		dmb.mu.Unlock()
		return uv, nil, nil, err
	}
	dmb.commit(ctx, reqs...)
	destUIDs := make([]uint32, 0, len(reqs))
	var uv uint32
	for _, r := range reqs {
		if r.err != nil {
			return fail(fmt.Errorf("copy to %s: %w", dmb.paths.Name, r.err))
		}
		uv = r.uidValidity
		destUIDs = append(destUIDs, r.uid)
	}
	return uv, srcUIDs, destUIDs, nil
}

// Move copies and then expunges the sources (RFC 6851 3.1).
func (v *view) Move(ctx context.Context, uids []uint32, dest string) (uint32, []uint32, []uint32, error) {
	if v.readOnly {
		return 0, nil, nil, ErrReadOnly
	}
	uv, src, dst, err := v.Copy(ctx, uids, dest)
	if err != nil || len(src) == 0 {
		return uv, src, dst, err
	}
	v.mb.mu.Lock()
	defer v.mb.mu.Unlock()
	if _, err := v.expungeLocked(ctx, src); err != nil {
		return uv, src, dst, err
	}
	return uv, src, dst, nil
}

// linkOrCopy puts a copy of src at dst: a hard link, or on another file
// system a copied and fsynced file with the same mtime.
func linkOrCopy(ctx context.Context, src, dst string, date time.Time) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	} else if errIsNotExist(err) {
		return err
	}
	in, err := openMessage(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, ctxReader{ctx, in})
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chtimes(dst, date, date)
	}
	if err != nil {
		os.Remove(dst)
	}
	return err
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func sortedUnique(uids []uint32) []uint32 {
	out := slices.Clone(uids)
	slices.Sort(out)
	return slices.Compact(out)
}
