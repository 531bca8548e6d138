package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Store.
type Options struct {
	// Hostname goes into new Maildir file names; default os.Hostname().
	Hostname string
	// IdleMailboxes is how many mailboxes no session has open are kept
	// in memory, so that STATUS and re-SELECT need not reread them
	// (about 350 bytes per message). Default 8; negative means none.
	IdleMailboxes int
}

// MaildirStore is the Maildir implementation of Store and Deliverer. One
// serves the whole process: it keeps one shared state per open mailbox
// so that sessions and deliveries see each other's changes at once.
type MaildirStore struct {
	host string
	pid  int
	seq  atomic.Uint64

	mu      sync.Mutex
	boxes   map[string]*mbox // by Maildir path
	idle    []*mbox          // unreferenced states kept for reuse, oldest first
	maxIdle int
}

var (
	_ Store         = (*MaildirStore)(nil)
	_ Deliverer     = (*MaildirStore)(nil)
	_ Account       = (*account)(nil)
	_ Mailbox       = (*view)(nil)
	_ KeywordLister = (*view)(nil)
)

// NewStore returns a Store for mail_location = maildir:... locations.
func NewStore(opts Options) *MaildirStore {
	host := opts.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	maxIdle := opts.IdleMailboxes
	if maxIdle == 0 {
		maxIdle = 8
	} else if maxIdle < 0 {
		maxIdle = 0
	}
	return &MaildirStore{host: hostnameForFile(host), pid: os.Getpid(), boxes: map[string]*mbox{}, maxIdle: maxIdle}
}

// Open returns the account of u. It parses u.MailLocation (its %
// variables already expanded by the userdb; "~" is u.Home) and makes
// sure INBOX exists, as Dovecot does at first access.
func (s *MaildirStore) Open(ctx context.Context, u User) (Account, error) {
	return s.open(ctx, u)
}

func (s *MaildirStore) open(ctx context.Context, u User) (*account, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	loc, err := ParseLocation(u.MailLocation, u.Home)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", u.Name, err)
	}
	a := &account{s: s, u: u, loc: loc, own: owner{uid: u.UID, gid: u.GID}}
	if err := a.ensureInbox(); err != nil {
		return nil, fmt.Errorf("user %s: %w", u.Name, err)
	}
	return a, nil
}

// Deliver stores one message for a delivery agent, creating the mailbox
// when it is missing ("" means INBOX). It returns once the message and
// its directory entry are fsynced.
func (s *MaildirStore) Deliver(ctx context.Context, u User, mailbox string, flags []string, r io.Reader) error {
	a, err := s.open(ctx, u)
	if err != nil {
		return err
	}
	if mailbox == "" {
		mailbox = "INBOX"
	}
	_, _, err = a.appendTo(ctx, mailbox, flags, time.Time{}, r, true)
	return err
}

// acquire returns the shared state of a mailbox, counting the reference.
func (s *MaildirStore) acquire(a *account, bp boxPaths) *mbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.boxes[bp.Dir]
	if mb != nil && mb.paths != bp {
		// Another location reaches the same Maildir differently
		// (other CONTROL= or INDEX=): do not share.
		mb = nil
	}
	if mb == nil {
		mb = &mbox{s: s, paths: bp, uvRoot: a.loc.controlRoot(), own: a.own, views: map[*view]struct{}{}}
		s.boxes[bp.Dir] = mb
	}
	if mb.refs == 0 {
		s.idle = slices.DeleteFunc(s.idle, func(m *mbox) bool { return m == mb })
	}
	mb.refs++
	return mb
}

// release drops a reference. The last one writes the index; the state
// stays in memory among the idle ones until pushed out.
func (s *MaildirStore) release(mb *mbox) {
	s.mu.Lock()
	mb.refs--
	if mb.refs == 0 {
		s.idle = append(s.idle, mb)
		for len(s.idle) > s.maxIdle {
			old := s.idle[0]
			s.idle = s.idle[1:]
			if s.boxes[old.paths.Dir] == old {
				delete(s.boxes, old.paths.Dir)
			}
		}
	}
	last := mb.refs == 0
	s.mu.Unlock()
	if last {
		mb.mu.Lock()
		mb.writeIndex(true, true)
		mb.mu.Unlock()
	}
}

// forget marks the shared state of a removed or renamed Maildir stale so
// that open sessions see it gone at their next Poll.
func (s *MaildirStore) forget(dir string) {
	s.mu.Lock()
	mb := s.boxes[dir]
	s.mu.Unlock()
	if mb != nil {
		mb.mu.Lock()
		mb.trusted = false
		mb.notify(nil)
		mb.mu.Unlock()
	}
}

// errIsNotExist reports a missing file under any wrapping.
func errIsNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }
