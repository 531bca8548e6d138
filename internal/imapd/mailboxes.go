package imapd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"postcote/internal/mailstore"
)

// mailboxArgs reads n mailbox astrings, each after a space.
func (s *session) mailboxArgs(p *parser, n int) ([]string, error) {
	var names []string
	for i := 0; i < n; i++ {
		if err := p.sp(); err != nil {
			return nil, err
		}
		name, err := p.astring()
		if err != nil {
			return nil, err
		}
		names = append(names, name)
	}
	return names, nil
}

// cmdCreate is RFC 3501 6.3.3 with CREATE-SPECIAL-USE (RFC 6154 3).
func (s *session) cmdCreate(c *command, p *parser) (status, error) {
	args, err := s.mailboxArgs(p, 1)
	if err != nil {
		return status{}, err
	}
	var use []string
	if !p.atEOL() {
		if err := p.sp(); err != nil {
			return status{}, err
		}
		err := p.list(func() error {
			a, err := p.atom()
			if err != nil {
				return err
			}
			if !strings.EqualFold(a, "USE") {
				return badSyntax("Unknown CREATE parameter %s", a)
			}
			if err := p.sp(); err != nil {
				return err
			}
			f, err := p.flagList()
			use = append(use, f...)
			return err
		})
		if err != nil {
			return status{}, err
		}
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	// RFC 3501 6.3.3: a trailing separator only declares the intent to
	// create children under the name.
	name := strings.TrimSuffix(args[0], s.opts.Separator)
	storeName, err := s.storeName(name)
	if err != nil {
		return no("CANNOT", err.Error()), nil
	}
	if storeName == "INBOX" {
		return no("ALREADYEXISTS", "Mailbox already exists"), nil
	}
	specialUse := ""
	if len(use) > 1 {
		return no("USEATTR", "Only one special-use attribute per mailbox is supported"), nil
	}
	if len(use) == 1 {
		if !isSpecialUse(use[0]) {
			return no("USEATTR", "Unsupported special-use attribute "+use[0]), nil
		}
		specialUse = canonicalSpecialUse(use[0])
	}
	if err := s.account.Create(s.ctx, storeName, specialUse); err != nil {
		return s.storeError(err, args[0]), nil
	}
	return ok("Create completed."), nil
}

// specialUses are RFC 6154 2's attributes.
var specialUses = []string{`\All`, `\Archive`, `\Drafts`, `\Flagged`, `\Junk`, `\Sent`, `\Trash`}

func isSpecialUse(a string) bool {
	return slices.ContainsFunc(specialUses, func(u string) bool { return strings.EqualFold(u, a) })
}

func canonicalSpecialUse(a string) string {
	for _, u := range specialUses {
		if strings.EqualFold(u, a) {
			return u
		}
	}
	return a
}

// cmdDelete is RFC 3501 6.3.4.
func (s *session) cmdDelete(c *command, p *parser) (status, error) {
	return s.oneMailboxCommand(p, "Delete", func(ctx context.Context, name string) error {
		if s.sel != nil && s.sel.name == name {
			// Deleting the selected mailbox: Dovecot refuses it.
			return errDeleteSelected
		}
		return s.account.Delete(ctx, name)
	})
}

var errDeleteSelected = errors.New("mailbox is selected")

// cmdSubscribe and cmdUnsubscribe are RFC 3501 6.3.6 and 6.3.7.
func (s *session) cmdSubscribe(c *command, p *parser) (status, error) {
	return s.oneMailboxCommand(p, "Subscribe", s.account.Subscribe)
}

func (s *session) cmdUnsubscribe(c *command, p *parser) (status, error) {
	return s.oneMailboxCommand(p, "Unsubscribe", s.account.Unsubscribe)
}

func (s *session) oneMailboxCommand(p *parser, verb string, fn func(context.Context, string) error) (status, error) {
	args, err := s.mailboxArgs(p, 1)
	if err != nil {
		return status{}, err
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	name, err := s.storeName(args[0])
	if err != nil {
		return no("CANNOT", err.Error()), nil
	}
	if err := fn(s.ctx, name); err != nil {
		if errors.Is(err, errDeleteSelected) {
			return no("INUSE", "Can't delete the selected mailbox."), nil
		}
		return s.storeError(err, args[0]), nil
	}
	return ok(verb + " completed."), nil
}

// cmdRename is RFC 3501 6.3.5.
func (s *session) cmdRename(c *command, p *parser) (status, error) {
	args, err := s.mailboxArgs(p, 2)
	if err != nil {
		return status{}, err
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	from, err := s.storeName(args[0])
	if err != nil {
		return no("CANNOT", err.Error()), nil
	}
	to, err := s.storeName(strings.TrimSuffix(args[1], s.opts.Separator))
	if err != nil {
		return no("CANNOT", err.Error()), nil
	}
	if err := s.account.Rename(s.ctx, from, to); err != nil {
		return s.storeError(err, args[0]), nil
	}
	return ok("Rename completed."), nil
}

// statusItems are the STATUS data items (RFC 3501 6.3.10, RFC 8438 SIZE,
// RFC 7162 HIGHESTMODSEQ, RFC 7889 APPENDLIMIT).
var statusItems = []string{"MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "HIGHESTMODSEQ", "APPENDLIMIT"}

func (s *session) statusItemList(p *parser) ([]string, error) {
	var items []string
	err := p.list(func() error {
		a, err := p.atom()
		if err != nil {
			return err
		}
		a = strings.ToUpper(a)
		if !slices.Contains(statusItems, a) {
			return badSyntax("Invalid status item %s", a)
		}
		items = append(items, a)
		return nil
	})
	if err == nil && len(items) == 0 {
		err = badSyntax("Empty status item list")
	}
	return items, err
}

// cmdStatus is RFC 3501 6.3.10.
func (s *session) cmdStatus(c *command, p *parser) (status, error) {
	args, err := s.mailboxArgs(p, 1)
	if err != nil {
		return status{}, err
	}
	if err := p.sp(); err != nil {
		return status{}, err
	}
	items, err := s.statusItemList(p)
	if err != nil {
		return status{}, err
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	name, err := s.storeName(args[0])
	if err != nil {
		return no("CANNOT", err.Error()), nil
	}
	st, err := s.account.Status(s.ctx, name)
	if err != nil {
		return s.storeError(err, args[0]), nil
	}
	s.writeStatus(name, items, st)
	return ok("Status completed."), nil
}

func (s *session) writeStatus(name string, items []string, st mailstore.Status) {
	s.w.WriteString("* STATUS ")
	s.writeMailboxName(s.imapName(name))
	s.w.WriteString(" (")
	for i, it := range items {
		if i > 0 {
			s.w.WriteByte(' ')
		}
		var v any
		switch it {
		case "MESSAGES":
			v = st.Messages
		case "RECENT":
			v = st.Recent
		case "UIDNEXT":
			v = st.UIDNext
		case "UIDVALIDITY":
			v = st.UIDValidity
		case "UNSEEN":
			v = st.Unseen
		case "SIZE":
			v = st.Size
		case "HIGHESTMODSEQ":
			v = st.HighestModSeq
		case "APPENDLIMIT":
			v = s.opts.MaxLiteralSize
		}
		fmt.Fprintf(s.w, "%s %d", it, v)
	}
	s.w.WriteString(")\r\n")
}

// cmdAppend is RFC 3501 6.3.11 with APPENDUID (RFC 4315 3) and
// APPENDLIMIT (RFC 7889). The message literal streams into the store; it
// is bounded by MaxLiteralSize, not by the line length.
func (s *session) cmdAppend(c *command, p *parser) (status, error) {
	args, err := s.mailboxArgs(p, 1)
	if err != nil {
		return status{}, err
	}
	if err := p.sp(); err != nil {
		return status{}, err
	}
	var flags []string
	var date time.Time
	if b, _ := p.peek(); b == '(' {
		if flags, err = p.flagList(); err != nil {
			return status{}, err
		}
		if err := p.sp(); err != nil {
			return status{}, err
		}
	}
	if b, _ := p.peek(); b == '"' {
		p.readByte()
		ds, err := p.quoted()
		if err != nil {
			return status{}, err
		}
		if date, err = parseDateTime(ds); err != nil {
			return status{}, err
		}
		if err := p.sp(); err != nil {
			return status{}, err
		}
	}
	size, sync, err := p.literalHeader()
	if err != nil {
		return status{}, err
	}
	if size > s.opts.MaxLiteralSize {
		return status{}, &tooBigError{size: size, sync: sync}
	}
	// Refuse before the client sends its message when we can.
	refuse := func(st status) (status, error) {
		if !sync {
			if _, err := io.CopyN(io.Discard, p.br, size); err != nil {
				return status{}, err
			}
			if err := p.discardLine(); err != nil {
				return status{}, err
			}
		}
		return st, nil
	}
	flags, ferr := canonicalFlags(flags)
	if ferr != nil {
		return refuse(bad(ferr.Error()))
	}
	name, err := s.storeName(args[0])
	if err != nil {
		return refuse(no("CANNOT", err.Error()))
	}
	ctx := s.ctx
	if _, err := s.account.Status(ctx, name); err != nil {
		if errors.Is(err, mailstore.ErrNoMailbox) {
			return refuse(no("TRYCREATE", "Mailbox doesn't exist: "+args[0]))
		}
		return refuse(s.storeError(err, args[0]))
	}
	if size == 0 {
		return refuse(no("", "Can't save a zero byte message."))
	}
	if sync {
		if err := s.continuation(); err != nil {
			return status{}, err
		}
	}
	lr := &literalReader{r: p.br, n: size}
	validity, uid, err := s.account.Append(ctx, name, flags, date, lr)
	if lr.err != nil {
		// The client went away in the middle of its literal.
		return status{}, lr.err
	}
	if _, cerr := io.CopyN(io.Discard, p.br, lr.n); cerr != nil {
		return status{}, cerr
	}
	if perr := p.crlf(); perr != nil {
		return status{}, perr
	}
	if err != nil {
		return s.storeError(err, args[0]), nil
	}
	return okCode(fmt.Sprintf("APPENDUID %d %d", validity, uid), "Append completed."), nil
}

// literalReader reads exactly n octets of a literal; a connection that
// ends early is an error, never a shorter message.
type literalReader struct {
	r   io.Reader
	n   int64
	err error
}

func (l *literalReader) Read(b []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		l.err = err
		return n, err
	}
	return n, nil
}

// parseDateTime parses RFC 3501 9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz"
// with the day possibly space-padded.
func parseDateTime(s string) (time.Time, error) {
	t, err := time.Parse("_2-Jan-2006 15:04:05 -0700", s)
	if err != nil {
		t, err = time.Parse("2-Jan-2006 15:04:05 -0700", s)
	}
	if err != nil {
		return time.Time{}, badSyntax("Invalid date-time")
	}
	return t, nil
}

// listEntry is one mailbox as LIST sees it.
type listEntry struct {
	name       string // client form
	storeName  string
	attrs      []string
	subscribed bool
	exists     bool
	childSub   bool // has a subscribed descendant (RFC 5258 CHILDINFO)
}

// listEntries returns every mailbox plus the missing parents of nested
// names, with child attributes filled in (RFC 3348, RFC 5258 4).
func (s *session) listEntries(ctx context.Context) ([]*listEntry, error) {
	infos, err := s.account.List(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*listEntry, len(infos))
	var out []*listEntry
	for _, in := range infos {
		e := &listEntry{storeName: in.Name, name: s.imapName(in.Name), attrs: slices.Clone(in.Attributes), subscribed: in.Subscribed, exists: true}
		if hasAttr(e.attrs, `\NonExistent`) {
			e.exists = false
		}
		byName[in.Name] = e
		out = append(out, e)
	}
	for _, in := range infos {
		parts := strings.Split(in.Name, "/")
		for i := len(parts) - 1; i > 0; i-- {
			parent := strings.Join(parts[:i], "/")
			pe := byName[parent]
			if pe == nil {
				pe = &listEntry{storeName: parent, name: s.imapName(parent), attrs: []string{`\Noselect`}}
				byName[parent] = pe
				out = append(out, pe)
			}
			if !hasAttr(pe.attrs, `\HasChildren`) {
				pe.attrs = append(removeAttr(pe.attrs, `\HasNoChildren`), `\HasChildren`)
			}
			if in.Subscribed {
				pe.childSub = true
			}
		}
	}
	for _, e := range out {
		if !hasAttr(e.attrs, `\HasChildren`) && !hasAttr(e.attrs, `\HasNoChildren`) && !hasAttr(e.attrs, `\NoInferiors`) {
			e.attrs = append(e.attrs, `\HasNoChildren`)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if (out[i].storeName == "INBOX") != (out[j].storeName == "INBOX") {
			return out[i].storeName == "INBOX"
		}
		return out[i].storeName < out[j].storeName
	})
	return out, nil
}

func hasAttr(attrs []string, a string) bool {
	return slices.ContainsFunc(attrs, func(x string) bool { return strings.EqualFold(x, a) })
}

func removeAttr(attrs []string, a string) []string {
	return slices.DeleteFunc(attrs, func(x string) bool { return strings.EqualFold(x, a) })
}
