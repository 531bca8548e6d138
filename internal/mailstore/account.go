package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// account is one user's mailboxes.
type account struct {
	s   *MaildirStore
	u   User
	loc Location
	own owner
}

func (a *account) User() User   { return a.u }
func (a *account) Close() error { return nil }

// ensureInbox creates the mail root and INBOX's cur/ new/ tmp/.
func (a *account) ensureInbox() error {
	if isMaildir(a.loc.Inbox) {
		if _, err := os.Stat(filepath.Join(a.loc.Inbox, "tmp")); err == nil {
			return nil
		}
	}
	if err := a.own.mkdirAll(a.loc.Root); err != nil {
		return err
	}
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := a.own.mkdirAll(filepath.Join(a.loc.Inbox, sub)); err != nil {
			return err
		}
	}
	return nil
}

// box resolves a name to its paths.
func (a *account) box(name string) (boxPaths, error) {
	norm, _, err := normalizeName(name, a.loc.Layout, a.loc.DirName)
	if err != nil {
		return boxPaths{}, err
	}
	return a.loc.paths(norm), nil
}

// exists says whether the mailbox is there.
// A folder must be a real directory, not a symbolic link a user made to
// reach someone else's mail.
func (a *account) exists(bp boxPaths) bool {
	if bp.Name != "INBOX" {
		if st, err := os.Lstat(bp.Dir); err != nil || !st.IsDir() {
			return false
		}
	}
	return isMaildir(bp.Dir)
}

// hasChildren says whether any mailbox lies below name.
func (a *account) hasChildren(name string, all []string) bool {
	prefix := name + "/"
	for _, n := range all {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// List returns every mailbox, INBOX first, with \Noselect parents of
// mailboxes whose parents do not exist and subscribed names that do not
// exist (with \NonExistent), as LIST-EXTENDED needs (RFC 5258).
func (a *account) List(ctx context.Context) ([]MailboxInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	names, err := a.loc.listNames()
	if err != nil {
		return nil, err
	}
	subs, err := a.subscriptions()
	if err != nil {
		return nil, err
	}
	uses, err := a.specialUses()
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{"INBOX": true}
	for _, n := range names {
		exists[n] = true
	}
	all := map[string]bool{"INBOX": true}
	for _, n := range names {
		parts := strings.Split(n, "/")
		for i := 1; i <= len(parts); i++ {
			all[strings.Join(parts[:i], "/")] = true
		}
	}
	subscribed := map[string]bool{}
	for _, n := range subs {
		subscribed[n] = true
	}
	sorted := make([]string, 0, len(all))
	for n := range all {
		if n != "INBOX" {
			sorted = append(sorted, n)
		}
	}
	slices.Sort(sorted)
	sorted = append([]string{"INBOX"}, sorted...)
	allList := sorted
	out := make([]MailboxInfo, 0, len(sorted)+len(subs))
	for _, n := range sorted {
		info := MailboxInfo{Name: n, Subscribed: subscribed[n]}
		if !exists[n] {
			info.Attributes = append(info.Attributes, `\Noselect`)
		}
		if a.hasChildren(n, allList) {
			info.Attributes = append(info.Attributes, `\HasChildren`)
		} else {
			info.Attributes = append(info.Attributes, `\HasNoChildren`)
		}
		if u := uses[n]; u != "" && exists[n] {
			info.Attributes = append(info.Attributes, strings.Split(u, ",")...)
		}
		out = append(out, info)
	}
	for _, n := range subs {
		if !all[n] {
			out = append(out, MailboxInfo{Name: n, Attributes: []string{`\NonExistent`}, Subscribed: true})
		}
	}
	return out, nil
}

// Create makes a mailbox (RFC 9051 6.3.4). A trailing "/" is dropped.
// specialUse, when not empty, is an RFC 6154 attribute such as `\Sent`
// (CREATE-SPECIAL-USE, RFC 6154 3).
func (a *account) Create(ctx context.Context, name string, specialUse string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if strings.HasSuffix(name, "/") && len(name) > 1 {
		name = name[:len(name)-1]
	}
	use, err := canonicalSpecialUses(specialUse)
	if err != nil {
		return fmt.Errorf("create %s: %w", name, err)
	}
	bp, err := a.box(name)
	if err != nil {
		return err
	}
	if bp.Name == "INBOX" || a.exists(bp) {
		return fmt.Errorf("create %s: %w", bp.Name, ErrMailboxExists)
	}
	if err := a.makeMailbox(ctx, bp); err != nil {
		return err
	}
	if use != "" {
		return a.setSpecialUse(ctx, bp.Name, use)
	}
	return nil
}

func (a *account) setSpecialUse(ctx context.Context, name, use string) error {
	return a.editSpecialUse(ctx, func(m map[string]string) bool {
		if m[name] == use {
			return false
		}
		m[name] = use
		return true
	})
}

// makeMailbox creates the Maildir of bp with a fresh dovecot-uidlist.
// Creators racing for the same name all succeed in making the parts; the
// one whose mkdir of cur/ fails gets ErrMailboxExists. An existing
// dovecot-uidlist is never replaced, so a mailbox never changes
// UIDVALIDITY under a delivery.
func (a *account) makeMailbox(ctx context.Context, bp boxPaths) error {
	fail := func(err error) error { return fmt.Errorf("create %s: %w", bp.Name, err) }
	for _, sub := range []string{"new", "tmp"} {
		if err := a.own.mkdirAll(filepath.Join(bp.Dir, sub)); err != nil {
			return fail(err)
		}
	}
	if a.loc.Layout == LayoutMaildirPP {
		mf := filepath.Join(bp.Dir, "maildirfolder")
		f, err := os.OpenFile(mf, os.O_WRONLY|os.O_CREATE, 0o600)
		if err != nil {
			return fail(err)
		}
		f.Close()
		if err := a.own.chown(mf); err != nil {
			return err
		}
	}
	if err := a.own.mkdirAll(bp.Control); err != nil {
		return fail(err)
	}
	ulPath := filepath.Join(bp.Control, uidListName)
	l, err := lockFile(ctx, ulPath, a.own)
	if err != nil {
		return fail(err)
	}
	if _, err := os.Stat(ulPath); err == nil {
		l.unlock()
	} else {
		uv, err := allocUIDValidity(ctx, a.loc.controlRoot(), a.own)
		if err != nil {
			l.unlock()
			return fail(err)
		}
		ul := &uidList{UIDValidity: uv, NextUID: 1, GUID: newGUID()}
		if err := l.replace(ul.marshal(), true); err != nil {
			return fail(err)
		}
	}
	// cur/ is the mark of a mailbox: made last, so a half-made one is
	// not listed.
	if err := os.Mkdir(filepath.Join(bp.Dir, "cur"), 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fail(ErrMailboxExists)
		}
		return fail(err)
	}
	if err := a.own.chown(filepath.Join(bp.Dir, "cur")); err != nil {
		return err
	}
	if err := fsyncDir(bp.Dir); err != nil {
		return err
	}
	return fsyncDir(filepath.Dir(bp.Dir))
}

// Delete removes a mailbox and its messages (RFC 9051 6.3.5). Its
// children stay; a name that exists only as their parent is refused
// with ErrHasChildren.
func (a *account) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	bp, err := a.box(name)
	if err != nil {
		return err
	}
	if bp.Name == "INBOX" {
		return ErrInbox
	}
	if !a.exists(bp) {
		names, err := a.loc.listNames()
		if err != nil {
			return err
		}
		if a.hasChildren(bp.Name, names) {
			return fmt.Errorf("delete %s: %w", bp.Name, ErrHasChildren)
		}
		return fmt.Errorf("delete %s: %w", bp.Name, ErrNoMailbox)
	}
	if a.loc.Layout == LayoutMaildirPP {
		// Rename first so the removal is atomic for readers; names
		// starting with ".." are not mailboxes to Dovecot or postcote.
		trash := filepath.Join(a.loc.Root, fmt.Sprintf("..postcote-trash-%d-%d", a.s.pid, a.s.seq.Add(1)))
		if err := os.Rename(bp.Dir, trash); err != nil {
			return fmt.Errorf("delete %s: %w", bp.Name, err)
		}
		if err := os.RemoveAll(trash); err != nil {
			return fmt.Errorf("delete %s: %w", bp.Name, err)
		}
	} else if err := a.deleteFS(bp); err != nil {
		return err
	}
	if bp.Control != bp.Dir {
		removeFiles(bp.Control, uidListName, keywordsName, uidListName+".lock")
	}
	if bp.Index != "" && bp.Index != bp.Dir {
		removeFiles(bp.Index, indexName)
	}
	a.s.forget(bp.Dir)
	_ = fsyncDir(a.loc.Root)
	return a.editSpecialUse(ctx, func(m map[string]string) bool {
		if _, ok := m[bp.Name]; !ok {
			return false
		}
		delete(m, bp.Name)
		return true
	})
}

// deleteFS removes an fs-layout Maildir but keeps child folders.
func (a *account) deleteFS(bp boxPaths) error {
	ents, err := os.ReadDir(bp.Dir)
	if err != nil {
		return fmt.Errorf("delete %s: %w", bp.Name, err)
	}
	// cur/ goes first: without it the folder is no longer a mailbox.
	order := []string{"cur", "new", "tmp"}
	for _, sub := range order {
		if err := os.RemoveAll(filepath.Join(bp.Dir, sub)); err != nil {
			return fmt.Errorf("delete %s: %w", bp.Name, err)
		}
	}
	for _, e := range ents {
		if !e.IsDir() {
			os.Remove(filepath.Join(bp.Dir, e.Name()))
		}
	}
	os.Remove(bp.Dir) // fails while children remain: fine
	if a.loc.DirName != "" {
		os.Remove(filepath.Dir(bp.Dir))
	}
	return nil
}

func removeFiles(dir string, names ...string) {
	for _, n := range names {
		os.Remove(filepath.Join(dir, n))
	}
	os.Remove(dir)
}

// Subscribe adds name to the subscriptions (RFC 9051 6.3.7); the mailbox
// need not exist.
func (a *account) Subscribe(ctx context.Context, name string) error {
	norm, _, err := normalizeName(name, a.loc.Layout, a.loc.DirName)
	if err != nil {
		return err
	}
	return a.editSubscriptions(ctx, func(names []string) []string {
		if slices.Contains(names, norm) {
			return names
		}
		return append(names, norm)
	})
}

// Unsubscribe removes name from the subscriptions (RFC 9051 6.3.8).
func (a *account) Unsubscribe(ctx context.Context, name string) error {
	norm, _, err := normalizeName(name, a.loc.Layout, a.loc.DirName)
	if err != nil {
		return err
	}
	return a.editSubscriptions(ctx, func(names []string) []string {
		return slices.DeleteFunc(names, func(n string) bool { return n == norm })
	})
}

// Status answers STATUS (RFC 9051 6.3.11) from the shared state.
func (a *account) Status(ctx context.Context, name string) (Status, error) {
	mb, err := a.acquireExisting(ctx, name)
	if err != nil {
		return Status{}, err
	}
	defer a.s.release(mb)
	mb.mu.Lock()
	defer mb.mu.Unlock()
	if err := mb.sync(ctx); err != nil {
		return Status{}, err
	}
	if !mb.exists {
		return Status{}, fmt.Errorf("status %s: %w", mb.paths.Name, ErrNoMailbox)
	}
	return mb.status(), nil
}

// acquireExisting resolves name and takes a reference to its state.
func (a *account) acquireExisting(ctx context.Context, name string) (*mbox, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bp, err := a.box(name)
	if err != nil {
		return nil, err
	}
	if !a.exists(bp) {
		if bp.Name == "INBOX" {
			if err := a.ensureInbox(); err != nil {
				return nil, err
			}
		} else {
			return nil, fmt.Errorf("%s: %w", bp.Name, ErrNoMailbox)
		}
	}
	return a.s.acquire(a, bp), nil
}

// Append stores a message (RFC 9051 6.3.12) and returns its APPENDUID.
func (a *account) Append(ctx context.Context, name string, flags []string, date time.Time, r io.Reader) (uint32, uint32, error) {
	return a.appendTo(ctx, name, flags, date, r, false)
}

func (a *account) appendTo(ctx context.Context, name string, flags []string, date time.Time, r io.Reader, create bool) (uint32, uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, err
	}
	bp, err := a.box(name)
	if err != nil {
		return 0, 0, err
	}
	if create && !a.exists(bp) && bp.Name != "INBOX" {
		if err := a.makeMailbox(ctx, bp); err != nil && !errors.Is(err, ErrMailboxExists) {
			return 0, 0, err
		}
	}
	mb, err := a.acquireExisting(ctx, bp.Name)
	if err != nil {
		return 0, 0, err
	}
	defer a.s.release(mb)
	letters, err := mb.lettersFor(ctx, flags)
	if err != nil {
		return 0, 0, err
	}
	return mb.save(ctx, letters, date, r)
}

// Select opens a session on a mailbox (RFC 9051 6.3.2, 6.3.3).
func (a *account) Select(ctx context.Context, name string, readOnly bool) (Mailbox, error) {
	mb, err := a.acquireExisting(ctx, name)
	if err != nil {
		return nil, err
	}
	v, err := newView(ctx, a, mb, readOnly)
	if err != nil {
		a.s.release(mb)
		return nil, err
	}
	return v, nil
}

// AutoMailbox is a mailbox the configuration wants to exist, Dovecot's
// `mailbox NAME { special_use = \Sent auto = subscribe }`.
type AutoMailbox struct {
	Name       string
	SpecialUse string // e.g. `\Sent`, or a space-separated list; "" for none
	Auto       string // "create", "subscribe" or "no"
}

// EnsureMailboxes creates (and, for auto = subscribe, subscribes) the
// configured mailboxes and records their special-use attributes. The
// wiring calls it at login.
func EnsureMailboxes(ctx context.Context, acct Account, boxes []AutoMailbox) error {
	a, _ := acct.(*account)
	for _, b := range boxes {
		switch b.Auto {
		case "create", "subscribe":
			if err := acct.Create(ctx, b.Name, ""); err != nil && !errors.Is(err, ErrMailboxExists) {
				return fmt.Errorf("auto-create %s: %w", b.Name, err)
			}
			if b.Auto == "subscribe" {
				if err := acct.Subscribe(ctx, b.Name); err != nil {
					return fmt.Errorf("auto-subscribe %s: %w", b.Name, err)
				}
			}
		case "", "no":
		default:
			return fmt.Errorf("mailbox %s: bad auto value %q (create, subscribe or no)", b.Name, b.Auto)
		}
		if b.SpecialUse != "" && a != nil {
			use, err := canonicalSpecialUses(b.SpecialUse)
			if err != nil {
				return fmt.Errorf("mailbox %s: %w", b.Name, err)
			}
			bp, err := a.box(b.Name)
			if err != nil {
				return err
			}
			if err := a.setSpecialUse(ctx, bp.Name, use); err != nil {
				return err
			}
		}
	}
	return nil
}
