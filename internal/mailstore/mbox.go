package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"
)

// A directory whose mtime is this recent may still change within the same
// time stamp, so its cached listing is not trusted (Dovecot's maildir sync
// has the same "dirty" notion). Linux stamps files with a coarse clock
// (one tick, a few milliseconds); file systems that keep whole seconds
// only (mtimes with no fraction) get two seconds.
const (
	dirtyWindow       = 50 * time.Millisecond
	dirtyWindowCoarse = 2 * time.Second
)

// settled says whether a change after scanStart would surely show as a
// different mtime.
func settled(k statKey, scanStart time.Time) bool {
	w := dirtyWindow
	if k.mtime%int64(time.Second) == 0 {
		w = dirtyWindowCoarse
	}
	return k.mtime < scanStart.Add(-w).UnixNano()
}

// msg is the shared, current state of one message.
type msg struct {
	uid     uint32
	base    string
	name    string // file name in new/ or cur/
	inNew   bool
	letters string // Maildir flag letters, sorted
	size    int64  // bytes on disk
	vsize   int64  // RFC822.SIZE (CRLF line ends)
	date    int64  // internal date, unix nanoseconds (the file's mtime)
	modseq  uint64
}

func (m *msg) path(dir string) string {
	if m.inNew {
		return filepath.Join(dir, "new", m.name)
	}
	return filepath.Join(dir, "cur", m.name)
}

// statKey identifies a version of a file or directory.
type statKey struct {
	ok    bool
	ino   uint64
	size  int64
	mtime int64
}

func statOf(path string) statKey {
	st, err := os.Stat(path)
	if err != nil {
		return statKey{}
	}
	k := statKey{ok: true, size: st.Size(), mtime: st.ModTime().UnixNano()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		k.ino = sys.Ino
	}
	return k
}

// mbox is the state of one mailbox shared by every session and delivery
// of this process. Views (sessions) keep snapshots of it.
type mbox struct {
	s      *MaildirStore
	paths  boxPaths
	uvRoot string // where dovecot-uidvalidity lives
	own    owner
	refs   int // guarded by s.mu

	mu            sync.Mutex
	loaded        bool
	exists        bool
	uidValidity   uint32
	guid          string
	nextUID       uint32
	msgs          []*msg // ascending UIDs
	byUID         map[uint32]*msg
	byBase        map[string]*msg
	nNew          int // messages in new/
	kw            *keywords
	highestModSeq uint64
	version       uint64 // bumped on every change
	views         map[*view]struct{}

	stNew, stCur, stUID, stKW statKey
	trusted                   bool // the cached stats describe the last scan
	uidListRecs               int  // records in dovecot-uidlist as last read/written
	uidListComplete           bool // dovecot-uidlist as last read ends with a newline
	indexDirty                bool
	indexClean                bool // the index on disk says C1
	indexWritten              time.Time
	lastTmpClean              time.Time

	batch batcher
}

// sync brings mb up to date with the disk. A cheap stat of new/, cur/,
// dovecot-uidlist and dovecot-keywords decides whether anything needs
// rereading. mb.mu is held.
func (mb *mbox) sync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := mb.paths.Dir
	stNew := statOf(filepath.Join(dir, "new"))
	stCur := statOf(filepath.Join(dir, "cur"))
	stUID := statOf(filepath.Join(mb.paths.Control, uidListName))
	stKW := statOf(filepath.Join(mb.paths.Control, keywordsName))
	if mb.loaded && mb.trusted && stNew == mb.stNew && stCur == mb.stCur && stUID == mb.stUID && stKW == mb.stKW {
		return nil
	}
	if !stCur.ok {
		// cur/ is what makes a directory a mailbox (Dovecot too).
		mb.gone()
		return nil
	}
	if !stNew.ok {
		// A Maildir missing new/ (made by hand): repair it as Dovecot does.
		if err := mb.makeDirs(); err != nil {
			return err
		}
		stNew = statOf(filepath.Join(dir, "new"))
	}
	now := time.Now()
	if !mb.loaded || stKW != mb.stKW {
		data, err := readFile(filepath.Join(mb.paths.Control, keywordsName))
		if err != nil {
			return err
		}
		mb.kw = parseKeywords(data)
	}
	wrote, err := mb.rescan(ctx)
	if err != nil {
		return err
	}
	if wrote {
		// We wrote dovecot-uidlist under its lock after reading it
		// there: the state in memory is exactly that file.
		stUID = mb.stUID
	}
	mb.stNew, mb.stCur, mb.stUID, mb.stKW = stNew, stCur, stUID, stKW
	mb.trusted = settled(stNew, now) && settled(stCur, now) && settled(stUID, now)
	mb.cleanTmp(now)
	return nil
}

// gone forgets every message: the Maildir was deleted or renamed away.
func (mb *mbox) gone() {
	if len(mb.msgs) > 0 {
		mb.version++
	}
	mb.exists = false
	mb.loaded = true
	mb.trusted = false
	mb.msgs = nil
	mb.byUID = map[uint32]*msg{}
	mb.byBase = map[string]*msg{}
	mb.nNew = 0
}

// found is a file seen in new/ or cur/.
type found struct {
	name  string
	inNew bool
}

// listFiles reads new/ then cur/ (a message moving from new/ to cur/
// meanwhile is then seen in cur/).
func (mb *mbox) listFiles() (map[string]found, error) {
	files := make(map[string]found, len(mb.msgs)+16)
	for _, sub := range []string{"new", "cur"} {
		d, err := os.Open(filepath.Join(mb.paths.Dir, sub))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("scan %s: %w", mb.paths.Dir, err)
		}
		ents, err := d.ReadDir(-1)
		d.Close()
		if err != nil {
			return nil, fmt.Errorf("scan %s/%s: %w", mb.paths.Dir, sub, err)
		}
		for _, e := range ents {
			n := e.Name()
			if n == "" || n[0] == '.' || e.Type()&(fs.ModeDir|fs.ModeSymlink) != 0 {
				continue
			}
			base := parseFileName(n).Base
			files[base] = found{name: n, inNew: sub == "new"}
		}
	}
	return files, nil
}

// readUIDList reads dovecot-uidlist; nil when it is missing or broken.
func (mb *mbox) readUIDList() (*uidList, error) {
	data, err := os.ReadFile(filepath.Join(mb.paths.Control, uidListName))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", uidListName, err)
	}
	// A crash mid-append can leave a last line without its newline:
	// the next change must rewrite the file, not append to that line.
	mb.uidListComplete = len(data) > 0 && data[len(data)-1] == '\n'
	ul, err := parseUIDList(data)
	if err != nil {
		// Dovecot logs and recreates a broken uidlist; so do we, which
		// gives the mailbox a new UIDVALIDITY.
		return nil, nil
	}
	return ul, nil
}

// rescan rebuilds the message list from the directory listing and
// dovecot-uidlist, giving UIDs to files that have none.
func (mb *mbox) rescan(ctx context.Context) (wrote bool, err error) {
	files, err := mb.listFiles()
	if err != nil {
		return false, err
	}
	ul, err := mb.readUIDList()
	if err != nil {
		return false, err
	}
	// A known message not listed may have been renamed while we read the
	// directory; look once more before calling it expunged.
	if ul != nil && mb.loaded && ul.UIDValidity == mb.uidValidity {
		missing := false
		for _, m := range mb.msgs {
			if _, ok := files[m.base]; !ok {
				missing = true
				break
			}
		}
		if missing {
			if files, err = mb.listFiles(); err != nil {
				return false, err
			}
		}
	}
	unassigned := mb.unassigned(ul, files)
	if ul == nil || len(unassigned) > 0 {
		if err := mb.own.mkdirAll(mb.paths.Control); err != nil {
			return false, err
		}
		l, err := lockFile(ctx, filepath.Join(mb.paths.Control, uidListName), mb.own)
		if err != nil {
			return false, err
		}
		// Reread under the lock: another process may have assigned them.
		if ul, err = mb.readUIDList(); err != nil {
			l.unlock()
			return false, err
		}
		if ul == nil {
			uv, err := allocUIDValidity(ctx, mb.uvRoot, mb.own)
			if err != nil {
				l.unlock()
				return false, err
			}
			ul = &uidList{UIDValidity: uv, NextUID: 1, GUID: newGUID()}
		}
		unassigned = mb.unassigned(ul, files)
		sort.Slice(unassigned, func(i, j int) bool { return lessFileName(unassigned[i], unassigned[j]) })
		next := ul.nextUID()
		for _, base := range unassigned {
			ul.Recs = append(ul.Recs, uidRec{UID: next, Name: base})
			next++
		}
		ul.NextUID = next
		if err := l.replace(ul.marshal(), true); err != nil {
			return false, err
		}
		mb.uidListComplete = true
		mb.stUID = statOf(filepath.Join(mb.paths.Control, uidListName))
		wrote = true
	}
	mb.apply(ul, files)
	return wrote, nil
}

// unassigned returns the base names of files without a uidlist record.
func (mb *mbox) unassigned(ul *uidList, files map[string]found) []string {
	known := make(map[string]bool, len(files))
	if ul != nil {
		for _, r := range ul.Recs {
			known[parseFileName(r.Name).Base] = true
		}
	}
	var out []string
	for base := range files {
		if !known[base] {
			out = append(out, base)
		}
	}
	return out
}

// apply makes the in-memory list match the uidlist and the files.
func (mb *mbox) apply(ul *uidList, files map[string]found) {
	var ix *indexFile
	first := !mb.loaded || !mb.exists || ul.UIDValidity != mb.uidValidity
	if first {
		ix = mb.loadIndex()
		if ix != nil && ix.uidValidity != ul.UIDValidity {
			ix = nil
		}
		if mb.loaded && mb.exists && len(mb.msgs) > 0 {
			mb.version++ // UIDVALIDITY changed: everything is new
		}
		mb.byUID, mb.byBase = nil, nil // lookups below find nothing
		mb.msgs = nil
		if ix != nil {
			mb.highestModSeq = ix.highest
			mb.indexClean = ix.clean
			if !ix.clean {
				// Left by a process that died: it may have shown
				// MODSEQs above what the index says.
				mb.highestModSeq = modseqFloor(ix.highest)
			}
		} else if mb.highestModSeq == 0 || mb.uidValidity != ul.UIDValidity {
			mb.highestModSeq = 0
		}
	}
	mb.loaded, mb.exists = true, true
	mb.uidValidity, mb.guid, mb.nextUID = ul.UIDValidity, ul.GUID, ul.nextUID()
	mb.uidListRecs = len(ul.Recs)

	var bump uint64 // the MODSEQ of changes found in this scan
	modseq := func() uint64 {
		if bump == 0 {
			if first {
				bump = modseqFloor(mb.highestModSeq)
				mb.highestModSeq = bump
			} else {
				bump = mb.bumpModSeq()
			}
		}
		return bump
	}
	changed := false
	msgs := make([]*msg, 0, len(ul.Recs))
	byUID := make(map[uint32]*msg, len(ul.Recs))
	nNew := 0
	for _, r := range ul.Recs {
		base := parseFileName(r.Name).Base
		f, ok := files[base]
		if !ok {
			continue
		}
		fn := parseFileName(f.name)
		m := mb.byUID[r.UID]
		if m == nil || m.base != base {
			m = &msg{uid: r.UID, base: base, size: fn.Size, vsize: fn.VSize, name: f.name, inNew: f.inNew, letters: sortLetters(fn.Flags)}
			for _, e := range r.Ext {
				if v, err := parseSizeExt(e, 'S'); err == nil && m.size < 0 {
					m.size = v
				} else if v, err := parseSizeExt(e, 'W'); err == nil && m.vsize < 0 {
					m.vsize = v
				}
			}
			if e, ok := ix.entry(r.UID); ok && e.letters == m.letters {
				m.modseq, m.date = e.modseq, e.date
				if m.vsize < 0 {
					m.vsize = e.vsize
				}
			} else {
				if ok {
					m.date = e.date
				}
				m.modseq = modseq()
			}
			changed = true
			mb.indexDirty = true
		} else {
			letters := sortLetters(fn.Flags)
			if m.name != f.name || m.inNew != f.inNew {
				m.name, m.inNew = f.name, f.inNew
				if letters != m.letters {
					m.letters = letters
					m.modseq = modseq()
					changed = true
					mb.indexDirty = true
				}
			}
		}
		if m.inNew {
			nNew++
		}
		byUID[m.uid] = m
		msgs = append(msgs, m)
	}
	for _, m := range mb.msgs {
		if byUID[m.uid] != m {
			changed = true // expunged by another program
			mb.indexDirty = true
			modseq()
		}
	}
	if first && mb.highestModSeq == 0 {
		// A new mailbox starts at 1; one whose index was lost starts
		// above any MODSEQ it may have shown before.
		mb.highestModSeq = 1
		if ul.nextUID() > 1 {
			mb.highestModSeq = modseqFloor(0)
		}
		mb.indexDirty = true
	}
	mb.msgs = msgs
	mb.nNew = nNew
	mb.byUID = byUID
	mb.byBase = make(map[string]*msg, len(msgs))
	for _, m := range msgs {
		mb.byBase[m.base] = m
		if m.date == 0 || m.size < 0 || m.vsize < 0 {
			mb.fillFromFile(m)
		}
	}
	if changed {
		mb.version++
	}
}

func (ix *indexFile) entry(uid uint32) (indexEntry, bool) {
	if ix == nil {
		return indexEntry{}, false
	}
	e, ok := ix.entries[uid]
	return e, ok
}

func parseSizeExt(e string, key byte) (int64, error) {
	if len(e) < 2 || e[0] != key {
		return 0, fmt.Errorf("not %c", key)
	}
	var n int64
	for _, c := range e[1:] {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad size %q", e)
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// fillFromFile learns the date and sizes a file name does not carry.
func (mb *mbox) fillFromFile(m *msg) {
	p := m.path(mb.paths.Dir)
	st, err := os.Lstat(p)
	if err != nil {
		return
	}
	if m.date == 0 {
		m.date = st.ModTime().UnixNano()
	}
	if m.size < 0 {
		m.size = st.Size()
	}
	if m.vsize < 0 {
		if v, err := countVSize(p); err == nil {
			m.vsize = v
		} else {
			m.vsize = m.size
		}
	}
	mb.indexDirty = true
}

// makeDirs creates the Maildir's cur/ new/ tmp/.
func (mb *mbox) makeDirs() error {
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := mb.own.mkdirAll(filepath.Join(mb.paths.Dir, sub)); err != nil {
			return err
		}
	}
	return nil
}

// claimRecent moves the messages in new/ to cur/ and returns their UIDs:
// they are \Recent for the session that moved them (RFC 3501 2.3.2; the
// Maildir specification's new/ means "not yet seen by a reader").
// mb.mu is held.
func (mb *mbox) claimRecent() []uint32 {
	if mb.nNew == 0 {
		return nil
	}
	var claimed []uint32
	for _, m := range mb.msgs {
		if !m.inNew {
			continue
		}
		to := curName(m.base, m.letters)
		err := os.Rename(filepath.Join(mb.paths.Dir, "new", m.name), filepath.Join(mb.paths.Dir, "cur", to))
		if err != nil {
			// Another program moved it first; the next scan sees where.
			mb.trusted = false
			continue
		}
		m.name, m.inNew = to, false
		mb.nNew--
		claimed = append(claimed, m.uid)
	}
	return claimed
}

// notify wakes the other views of this mailbox. mb.mu is held.
func (mb *mbox) notify(except *view) {
	for v := range mb.views {
		if v != except {
			select {
			case v.ch <- struct{}{}:
			default:
			}
		}
	}
}

// tmpMaxAge is how long a file may sit in tmp/ before it is taken for
// the leftover of a crashed delivery; Dovecot uses 36 hours.
const tmpMaxAge = 36 * time.Hour

// cleanTmp removes stale files from tmp/, at most every 8 hours.
func (mb *mbox) cleanTmp(now time.Time) {
	if now.Sub(mb.lastTmpClean) < 8*time.Hour {
		return
	}
	mb.lastTmpClean = now
	dir := filepath.Join(mb.paths.Dir, "tmp")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil || info.IsDir() {
			continue
		}
		// Like Dovecot, judge by the last access (and the last write:
		// with noatime mounts the atime says little).
		newest := info.ModTime()
		if sys, ok := info.Sys().(*syscall.Stat_t); ok {
			if a := time.Unix(sys.Atim.Sec, sys.Atim.Nsec); a.After(newest) {
				newest = a
			}
		}
		if now.Sub(newest) > tmpMaxAge {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// status computes STATUS from the current state. mb.mu is held.
func (mb *mbox) status() Status {
	st := Status{
		Messages:      uint32(len(mb.msgs)),
		Recent:        uint32(mb.nNew),
		UIDNext:       mb.nextUID,
		UIDValidity:   mb.uidValidity,
		HighestModSeq: mb.highestModSeq,
	}
	for _, m := range mb.msgs {
		if !hasLetter(m.letters, 'S') {
			st.Unseen++
		}
		st.Size += m.vsize
	}
	return st
}

// info builds the MessageInfo of m. mb.mu is held.
func (mb *mbox) info(m *msg, recent bool) MessageInfo {
	flags := flagsFromLetters(m.letters, mb.kw)
	if recent {
		flags = append(flags, FlagRecent)
	}
	return MessageInfo{UID: m.uid, Flags: flags, InternalDate: time.Unix(0, m.date), Size: m.vsize, ModSeq: m.modseq}
}
