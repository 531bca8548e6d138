package mailstore

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
)

// view is one session's snapshot of a selected mailbox.
type view struct {
	a        *account
	mb       *mbox
	readOnly bool
	ch       chan struct{}
	closed   bool

	msgs        []MessageInfo // ascending UIDs
	recent      map[uint32]bool
	version     uint64
	uidValidity uint32
	uidNext     uint32
	highest     uint64
}

func newView(ctx context.Context, a *account, mb *mbox, readOnly bool) (*view, error) {
	v := &view{a: a, mb: mb, readOnly: readOnly, ch: make(chan struct{}, 1), recent: map[uint32]bool{}}
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if err := mb.sync(ctx); err != nil {
		return nil, err
	}
	if !mb.exists {
		return nil, fmt.Errorf("select %s: %w", mb.paths.Name, ErrNoMailbox)
	}
	if !readOnly {
		for _, uid := range mb.claimRecent() {
			v.recent[uid] = true
		}
	}
	v.msgs = make([]MessageInfo, len(mb.msgs))
	for i, m := range mb.msgs {
		v.msgs[i] = mb.info(m, v.recent[m.uid])
	}
	v.version = mb.version
	v.uidValidity, v.uidNext, v.highest = mb.uidValidity, mb.nextUID, mb.highestModSeq
	mb.views[v] = struct{}{}
	return v, nil
}

func (v *view) Name() string             { return v.mb.paths.Name }
func (v *view) ReadOnly() bool           { return v.readOnly }
func (v *view) UIDValidity() uint32      { return v.uidValidity }
func (v *view) UIDNext() uint32          { return v.uidNext }
func (v *view) HighestModSeq() uint64    { return v.highest }
func (v *view) Messages() []MessageInfo  { return v.msgs }
func (v *view) Changes() <-chan struct{} { return v.ch }
func (v *view) find(uid uint32) (int, bool) {
	i := sort.Search(len(v.msgs), func(i int) bool { return v.msgs[i].UID >= uid })
	return i, i < len(v.msgs) && v.msgs[i].UID == uid
}

// Close ends the session.
func (v *view) Close() error {
	if v.closed {
		return nil
	}
	v.closed = true
	v.mb.mu.Lock()
	delete(v.mb.views, v)
	v.mb.mu.Unlock()
	v.a.s.release(v.mb)
	return nil
}

// Poll moves the snapshot forward (RFC 9051 7.5.1: only between
// commands) and reports what changed.
func (v *view) Poll(ctx context.Context) (Update, error) {
	var up Update
	if v.closed {
		return up, fmt.Errorf("poll: %w", ErrNoMailbox)
	}
	mb := v.mb
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if err := mb.sync(ctx); err != nil {
		return up, err
	}
	if !v.readOnly {
		for _, uid := range mb.claimRecent() {
			v.recent[uid] = true
		}
	}
	v.uidNext, v.highest = mb.nextUID, mb.highestModSeq
	if mb.version == v.version {
		return up, nil
	}
	if mb.exists && mb.uidValidity != v.uidValidity {
		return up, fmt.Errorf("poll %s: %w", mb.paths.Name, ErrUIDValidityChanged)
	}
	var maxUID uint32
	if len(v.msgs) > 0 {
		maxUID = v.msgs[len(v.msgs)-1].UID
	}
	next := make([]MessageInfo, 0, len(mb.msgs))
	j := 0
	for _, old := range v.msgs {
		for j < len(mb.msgs) && mb.msgs[j].uid < old.UID {
			j++ // appeared below the snapshot's UIDs: not possible with ascending UIDs
		}
		if j < len(mb.msgs) && mb.msgs[j].uid == old.UID {
			m := mb.msgs[j]
			if m.modseq != old.ModSeq {
				info := mb.info(m, v.recent[m.uid])
				up.Changed = append(up.Changed, info)
				next = append(next, info)
			} else {
				next = append(next, old)
			}
			j++
			continue
		}
		up.Expunged = append(up.Expunged, old.UID)
		delete(v.recent, old.UID)
	}
	for ; j < len(mb.msgs); j++ {
		m := mb.msgs[j]
		if m.uid <= maxUID {
			continue
		}
		info := mb.info(m, v.recent[m.uid])
		up.New = append(up.New, info)
		next = append(next, info)
	}
	v.msgs = next
	v.version = mb.version
	return up, nil
}

// Open returns the message with CRLF line ends.
func (v *view) Open(ctx context.Context, uid uint32) (io.ReadSeekCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if _, ok := v.find(uid); !ok {
		return nil, 0, fmt.Errorf("open UID %d: %w", uid, ErrNoSuchMessage)
	}
	mb := v.mb
	for attempt := 0; attempt < 3; attempt++ {
		mb.mu.Lock()
		m := mb.byUID[uid]
		if m == nil {
			mb.mu.Unlock()
			return nil, 0, fmt.Errorf("open UID %d: %w", uid, ErrNoSuchMessage)
		}
		path, vsize := m.path(mb.paths.Dir), m.vsize
		mb.mu.Unlock()
		f, err := openMessage(path)
		if err == nil {
			if m.size == vsize {
				return f, vsize, nil
			}
			return newCRLFFile(f, vsize), vsize, nil
		}
		if !errIsNotExist(err) {
			return nil, 0, fmt.Errorf("open UID %d: %w", uid, err)
		}
		// Renamed by a flag change elsewhere: rescan and retry.
		mb.mu.Lock()
		mb.trusted = false
		err = mb.sync(ctx)
		mb.mu.Unlock()
		if err != nil {
			return nil, 0, err
		}
	}
	return nil, 0, fmt.Errorf("open UID %d: %w", uid, ErrNoSuchMessage)
}

// lettersFor turns IMAP flags into Maildir letters, giving new keywords
// letters in dovecot-keywords. \Recent and unknown system flags are
// ignored; keywords beyond the 26 a Maildir can name are dropped, as
// Dovecot does.
func (mb *mbox) lettersFor(ctx context.Context, flags []string) (string, error) {
	var letters []byte
	var kws []string
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			if c, ok := systemLetter(f); ok {
				letters = append(letters, c)
			}
			continue
		}
		if validKeyword(f) {
			kws = append(kws, f)
		}
	}
	if len(kws) > 0 {
		mb.mu.Lock()
		defer mb.mu.Unlock()
		if mb.kw == nil || !mb.loaded {
			if err := mb.sync(ctx); err != nil {
				return "", err
			}
		}
		missing := false
		for _, k := range kws {
			if mb.kw.index(k) < 0 {
				missing = true
			}
		}
		if missing {
			if err := mb.addKeywords(ctx, kws); err != nil {
				return "", err
			}
		}
		for _, k := range kws {
			if i := mb.kw.index(k); i >= 0 {
				letters = append(letters, byte('a'+i))
			}
		}
	}
	return sortLetters(string(letters)), nil
}

// addKeywords adds keywords to dovecot-keywords under its dotlock.
// mb.mu is held.
func (mb *mbox) addKeywords(ctx context.Context, kws []string) error {
	path := filepath.Join(mb.paths.Control, keywordsName)
	l, err := lockFile(ctx, path, mb.own)
	if err != nil {
		return err
	}
	data, err := readFile(path)
	if err != nil {
		l.unlock()
		return err
	}
	kw := parseKeywords(data)
	for _, k := range kws {
		kw.add(k)
	}
	if err := l.replace(kw.marshal(), true); err != nil {
		return err
	}
	mb.kw = kw
	mb.stKW = statOf(path)
	mb.version++ // FLAGS/PERMANENTFLAGS may change
	return nil
}

// Keywords returns the keywords defined in the mailbox, for the FLAGS and
// PERMANENTFLAGS responses (RFC 9051 7.3.5).
func (v *view) Keywords() []string {
	v.mb.mu.Lock()
	defer v.mb.mu.Unlock()
	if v.mb.kw == nil {
		return nil
	}
	return v.mb.kw.list()
}
