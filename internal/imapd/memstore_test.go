package imapd

import (
	"bytes"
	"context"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"postcote/internal/mailstore"
)

// memStore is an in-memory mailstore.Store for unit tests: the
// behaviour the protocol relies on (snapshots moving on Poll, change
// notifications, UIDs, \Recent ownership) without the disk.
type memStore struct {
	mu       sync.Mutex
	accounts map[string]*memAccountData
	validity uint32
}

type memAccountData struct {
	mailboxes map[string]*memMailbox
	subs      map[string]bool
}

type memMailbox struct {
	name        string
	specialUse  string
	uidValidity uint32
	uidNext     uint32
	modSeq      uint64
	msgs        []*memMsg
	recentUpTo  uint32 // UIDs up to here were claimed as \Recent
	views       map[*memView]struct{}
}

type memMsg struct {
	uid    uint32
	flags  []string
	date   time.Time
	data   []byte
	modSeq uint64
}

func newMemStore() *memStore {
	return &memStore{accounts: make(map[string]*memAccountData), validity: 1000}
}

func (st *memStore) Open(ctx context.Context, u mailstore.User) (mailstore.Account, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.account(u.Name)
	return &memAccount{st: st, user: u}, nil
}

// account returns (creating) the data of user; st.mu held.
func (st *memStore) account(user string) *memAccountData {
	a := st.accounts[user]
	if a == nil {
		a = &memAccountData{mailboxes: make(map[string]*memMailbox), subs: make(map[string]bool)}
		st.accounts[user] = a
		st.validity++
		a.mailboxes["INBOX"] = &memMailbox{name: "INBOX", uidValidity: st.validity, uidNext: 1, views: map[*memView]struct{}{}}
		a.subs["INBOX"] = true
	}
	return a
}

// deliver adds a message as a delivery agent would, notifying sessions.
func (st *memStore) deliver(user, mailbox string, flags []string, data string) uint32 {
	st.mu.Lock()
	defer st.mu.Unlock()
	mb := st.account(user).mailboxes[mailbox]
	return mb.add(flags, time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), []byte(data))
}

func (mb *memMailbox) add(flags []string, date time.Time, data []byte) uint32 {
	mb.modSeq++
	m := &memMsg{uid: mb.uidNext, flags: slices.Clone(flags), date: date, data: data, modSeq: mb.modSeq}
	mb.uidNext++
	mb.msgs = append(mb.msgs, m)
	mb.notify()
	return m.uid
}

func (mb *memMailbox) notify() {
	for v := range mb.views {
		select {
		case v.changes <- struct{}{}:
		default:
		}
	}
}

func (mb *memMailbox) find(uid uint32) *memMsg {
	i := sort.Search(len(mb.msgs), func(i int) bool { return mb.msgs[i].uid >= uid })
	if i < len(mb.msgs) && mb.msgs[i].uid == uid {
		return mb.msgs[i]
	}
	return nil
}

type memAccount struct {
	st   *memStore
	user mailstore.User
}

func (a *memAccount) data() *memAccountData { return a.st.account(a.user.Name) }

func (a *memAccount) User() mailstore.User { return a.user }

func (a *memAccount) List(ctx context.Context) ([]mailstore.MailboxInfo, error) {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	d := a.data()
	var out []mailstore.MailboxInfo
	for name, mb := range d.mailboxes {
		info := mailstore.MailboxInfo{Name: name, Subscribed: d.subs[name]}
		if mb.specialUse != "" {
			info.Attributes = append(info.Attributes, mb.specialUse)
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if (out[i].Name == "INBOX") != (out[j].Name == "INBOX") {
			return out[i].Name == "INBOX"
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func (a *memAccount) Create(ctx context.Context, name, specialUse string) error {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	d := a.data()
	if d.mailboxes[name] != nil {
		return mailstore.ErrMailboxExists
	}
	if strings.Contains(name, "..") {
		return mailstore.ErrBadName
	}
	a.st.validity++
	d.mailboxes[name] = &memMailbox{name: name, specialUse: specialUse, uidValidity: a.st.validity, uidNext: 1, views: map[*memView]struct{}{}}
	return nil
}

func (a *memAccount) Delete(ctx context.Context, name string) error {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	d := a.data()
	if name == "INBOX" {
		return mailstore.ErrInbox
	}
	if d.mailboxes[name] == nil {
		return mailstore.ErrNoMailbox
	}
	delete(d.mailboxes, name)
	return nil
}

func (a *memAccount) Rename(ctx context.Context, from, to string) error {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	d := a.data()
	mb := d.mailboxes[from]
	if mb == nil {
		return mailstore.ErrNoMailbox
	}
	if d.mailboxes[to] != nil {
		return mailstore.ErrMailboxExists
	}
	delete(d.mailboxes, from)
	mb.name = to
	d.mailboxes[to] = mb
	if from == "INBOX" {
		a.st.validity++
		d.mailboxes["INBOX"] = &memMailbox{name: "INBOX", uidValidity: a.st.validity, uidNext: 1, views: map[*memView]struct{}{}}
	}
	return nil
}

func (a *memAccount) Subscribe(ctx context.Context, name string) error {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	a.data().subs[name] = true
	return nil
}

func (a *memAccount) Unsubscribe(ctx context.Context, name string) error {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	delete(a.data().subs, name)
	return nil
}

func (a *memAccount) Status(ctx context.Context, name string) (mailstore.Status, error) {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	mb := a.data().mailboxes[name]
	if mb == nil {
		return mailstore.Status{}, mailstore.ErrNoMailbox
	}
	st := mailstore.Status{Messages: uint32(len(mb.msgs)), UIDNext: mb.uidNext, UIDValidity: mb.uidValidity, HighestModSeq: mb.modSeq}
	for _, m := range mb.msgs {
		if !slices.Contains(m.flags, mailstore.FlagSeen) {
			st.Unseen++
		}
		if m.uid > mb.recentUpTo {
			st.Recent++
		}
		st.Size += int64(len(m.data))
	}
	return st, nil
}

func (a *memAccount) Append(ctx context.Context, name string, flags []string, date time.Time, r io.Reader) (uint32, uint32, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, 0, err
	}
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	mb := a.data().mailboxes[name]
	if mb == nil {
		return 0, 0, mailstore.ErrNoMailbox
	}
	if date.IsZero() {
		date = time.Now()
	}
	uid := mb.add(flags, date, data)
	return mb.uidValidity, uid, nil
}

func (a *memAccount) Select(ctx context.Context, name string, readOnly bool) (mailstore.Mailbox, error) {
	a.st.mu.Lock()
	defer a.st.mu.Unlock()
	mb := a.data().mailboxes[name]
	if mb == nil {
		return nil, mailstore.ErrNoMailbox
	}
	v := &memView{a: a, mb: mb, readOnly: readOnly, changes: make(chan struct{}, 1), recent: map[uint32]bool{}}
	mb.views[v] = struct{}{}
	v.claimRecent()
	for _, m := range mb.msgs {
		v.snapshot = append(v.snapshot, v.info(m))
	}
	return v, nil
}

func (a *memAccount) Close() error { return nil }

// memView is one session's mailstore.Mailbox.
type memView struct {
	a        *memAccount
	mb       *memMailbox
	readOnly bool
	snapshot []mailstore.MessageInfo
	recent   map[uint32]bool
	changes  chan struct{}
	closed   bool
}

// claimRecent takes \Recent for messages no session has seen; st.mu held.
func (v *memView) claimRecent() {
	if v.readOnly {
		return
	}
	for _, m := range v.mb.msgs {
		if m.uid > v.mb.recentUpTo {
			v.recent[m.uid] = true
		}
	}
	if n := len(v.mb.msgs); n > 0 {
		v.mb.recentUpTo = max(v.mb.recentUpTo, v.mb.msgs[n-1].uid)
	}
}

func (v *memView) info(m *memMsg) mailstore.MessageInfo {
	flags := slices.Clone(m.flags)
	if v.recent[m.uid] {
		flags = append(flags, mailstore.FlagRecent)
	}
	return mailstore.MessageInfo{UID: m.uid, Flags: flags, InternalDate: m.date, Size: int64(len(m.data)), ModSeq: m.modSeq}
}

func (v *memView) Name() string          { return v.mb.name }
func (v *memView) ReadOnly() bool        { return v.readOnly }
func (v *memView) UIDValidity() uint32   { return v.mb.uidValidity }
func (v *memView) HighestModSeq() uint64 { return v.mb.modSeq }
func (v *memView) UIDNext() uint32 {
	v.a.st.mu.Lock()
	defer v.a.st.mu.Unlock()
	return v.mb.uidNext
}
func (v *memView) Messages() []mailstore.MessageInfo { return v.snapshot }
func (v *memView) Changes() <-chan struct{}          { return v.changes }

func (v *memView) Poll(ctx context.Context) (mailstore.Update, error) {
	v.a.st.mu.Lock()
	defer v.a.st.mu.Unlock()
	var u mailstore.Update
	v.claimRecent()
	current := make(map[uint32]*memMsg, len(v.mb.msgs))
	for _, m := range v.mb.msgs {
		current[m.uid] = m
	}
	var next []mailstore.MessageInfo
	seen := make(map[uint32]bool, len(v.snapshot))
	for _, old := range v.snapshot {
		seen[old.UID] = true
		m := current[old.UID]
		if m == nil {
			u.Expunged = append(u.Expunged, old.UID)
			continue
		}
		info := v.info(m)
		if !slices.Equal(info.Flags, old.Flags) {
			u.Changed = append(u.Changed, info)
		}
		next = append(next, info)
	}
	for _, m := range v.mb.msgs {
		if !seen[m.uid] {
			info := v.info(m)
			u.New = append(u.New, info)
			next = append(next, info)
		}
	}
	v.snapshot = next
	return u, nil
}

func (v *memView) Open(ctx context.Context, uid uint32) (io.ReadSeekCloser, int64, error) {
	v.a.st.mu.Lock()
	defer v.a.st.mu.Unlock()
	m := v.mb.find(uid)
	if m == nil {
		return nil, 0, mailstore.ErrNoSuchMessage
	}
	return nopCloser{bytes.NewReader(m.data)}, int64(len(m.data)), nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func (v *memView) Store(ctx context.Context, uids []uint32, op mailstore.FlagOp, flags []string, unchangedSince uint64) ([]mailstore.MessageInfo, []uint32, error) {
	if v.readOnly {
		return nil, nil, mailstore.ErrReadOnly
	}
	v.a.st.mu.Lock()
	defer v.a.st.mu.Unlock()
	var updated []mailstore.MessageInfo
	for _, uid := range uids {
		m := v.mb.find(uid)
		if m == nil {
			continue
		}
		var nf []string
		switch op {
		case mailstore.FlagsReplace:
			nf = slices.Clone(flags)
		case mailstore.FlagsAdd:
			nf = slices.Clone(m.flags)
			for _, f := range flags {
				if !slices.Contains(nf, f) {
					nf = append(nf, f)
				}
			}
		case mailstore.FlagsRemove:
			nf = slices.DeleteFunc(slices.Clone(m.flags), func(f string) bool { return slices.Contains(flags, f) })
		}
		v.mb.modSeq++
		m.flags, m.modSeq = nf, v.mb.modSeq
		info := v.info(m)
		updated = append(updated, info)
		for i := range v.snapshot {
			if v.snapshot[i].UID == uid {
				v.snapshot[i] = info
			}
		}
	}
	v.mb.notifyExcept(v)
	return updated, nil, nil
}

func (mb *memMailbox) notifyExcept(self *memView) {
	for w := range mb.views {
		if w == self {
			continue
		}
		select {
		case w.changes <- struct{}{}:
		default:
		}
	}
}

func (v *memView) Expunge(ctx context.Context, uids []uint32) ([]uint32, error) {
	if v.readOnly {
		return nil, mailstore.ErrReadOnly
	}
	v.a.st.mu.Lock()
	defer v.a.st.mu.Unlock()
	var removed []uint32
	v.mb.msgs = slices.DeleteFunc(v.mb.msgs, func(m *memMsg) bool {
		if !slices.Contains(m.flags, mailstore.FlagDeleted) || (uids != nil && !slices.Contains(uids, m.uid)) {
			return false
		}
		removed = append(removed, m.uid)
		return true
	})
	v.snapshot = slices.DeleteFunc(v.snapshot, func(i mailstore.MessageInfo) bool { return slices.Contains(removed, i.UID) })
	v.mb.notifyExcept(v)
	return removed, nil
}

func (v *memView) Copy(ctx context.Context, uids []uint32, dest string) (uint32, []uint32, []uint32, error) {
	v.a.st.mu.Lock()
	defer v.a.st.mu.Unlock()
	d := v.a.data().mailboxes[dest]
	if d == nil {
		return 0, nil, nil, mailstore.ErrNoMailbox
	}
	var src, dst []uint32
	for _, uid := range uids {
		m := v.mb.find(uid)
		if m == nil {
			continue
		}
		src = append(src, uid)
		dst = append(dst, d.add(m.flags, m.date, m.data))
	}
	return d.uidValidity, src, dst, nil
}

func (v *memView) Move(ctx context.Context, uids []uint32, dest string) (uint32, []uint32, []uint32, error) {
	validity, src, dst, err := v.Copy(ctx, uids, dest)
	if err != nil {
		return 0, nil, nil, err
	}
	v.a.st.mu.Lock()
	defer v.a.st.mu.Unlock()
	v.mb.msgs = slices.DeleteFunc(v.mb.msgs, func(m *memMsg) bool { return slices.Contains(src, m.uid) })
	v.snapshot = slices.DeleteFunc(v.snapshot, func(i mailstore.MessageInfo) bool { return slices.Contains(src, i.UID) })
	v.mb.notifyExcept(v)
	return validity, src, dst, nil
}

func (v *memView) Close() error {
	v.a.st.mu.Lock()
	defer v.a.st.mu.Unlock()
	delete(v.mb.views, v)
	return nil
}
