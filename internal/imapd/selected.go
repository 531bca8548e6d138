package imapd

import (
	"context"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"

	"postcote/internal/mailstore"
)

// selected is the session's view of its selected mailbox: the message
// list that gives sequence numbers (RFC 3501 2.3.1.2). It changes only
// through the session's own commands and through sendUpdates, so
// sequence numbers never shift under the client between responses.
type selected struct {
	mbox     mailstore.Mailbox
	name     string // store name
	readOnly bool
	msgs     []mailstore.MessageInfo
	// keywords are the keywords announced in FLAGS so far.
	keywords []string
	// pending holds UIDs expunged by others and not yet announced:
	// EXPUNGE responses are not allowed during FETCH, STORE and SEARCH
	// (RFC 3501 7.4.1), so the messages keep their sequence numbers
	// until a command that may carry EXPUNGE.
	pending []uint32
}

// index returns the position of uid in msgs, or -1.
func (sel *selected) index(uid uint32) int {
	i := sort.Search(len(sel.msgs), func(i int) bool { return sel.msgs[i].UID >= uid })
	if i < len(sel.msgs) && sel.msgs[i].UID == uid {
		return i
	}
	return -1
}

// noteKeywords adds the keywords among flags to the announced set and
// reports whether there were new ones.
func (sel *selected) noteKeywords(flags []string) bool {
	added := false
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) && !slices.Contains(sel.keywords, f) {
			sel.keywords = append(sel.keywords, f)
			added = true
		}
	}
	if added {
		sort.Strings(sel.keywords)
	}
	return added
}

// writeFlags writes the FLAGS and PERMANENTFLAGS responses (RFC 3501
// 7.2.6, 7.1), at SELECT and again when a new keyword appears.
func (s *session) writeFlags() {
	flags := append(slices.Clone(systemFlags), s.sel.keywords...)
	s.w.WriteString("* FLAGS ")
	s.w.flags(flags)
	s.w.WriteString("\r\n")
	if s.sel.readOnly {
		s.w.untagged("OK [PERMANENTFLAGS ()] Read-only mailbox.")
		return
	}
	s.w.WriteString("* OK [PERMANENTFLAGS ")
	s.w.flags(append(flags, `\*`))
	s.w.WriteString("] Flags permitted.\r\n")
}

func (sel *selected) isPending(uid uint32) bool { return slices.Contains(sel.pending, uid) }

func (sel *selected) lastUID() uint32 {
	if len(sel.msgs) == 0 {
		return 0
	}
	return sel.msgs[len(sel.msgs)-1].UID
}

// resolve turns a sequence set (or UID set when uid) into ascending
// indexes into msgs. A message number beyond the mailbox is a client
// error (BAD); UIDs that do not exist are ignored (RFC 3501 6.4.8).
func (sel *selected) resolve(set seqSet, uid bool) ([]int, error) {
	var idx []int
	n := uint32(len(sel.msgs))
	if !uid {
		for i, r := range set.resolve(n) {
			if n == 0 && (set[i].lo == 0 || set[i].hi == 0) {
				continue
			}
			if r.hi > n || r.lo == 0 {
				return nil, badSyntax("Invalid messageset")
			}
			for k := r.lo; k <= r.hi; k++ {
				idx = append(idx, int(k-1))
			}
			if len(idx) > 4*len(sel.msgs)+maxSeqSetRanges {
				idx = dedupeInts(idx)
			}
		}
		return dedupeInts(idx), nil
	}
	if n == 0 {
		return nil, nil
	}
	for _, r := range set.resolve(sel.lastUID()) {
		i := sort.Search(len(sel.msgs), func(i int) bool { return sel.msgs[i].UID >= r.lo })
		for ; i < len(sel.msgs) && sel.msgs[i].UID <= r.hi; i++ {
			idx = append(idx, i)
		}
	}
	return dedupeInts(idx), nil
}

func dedupeInts(v []int) []int {
	sort.Ints(v)
	return slices.Compact(v)
}

// applyUpdate merges a Poll result into the view and writes the
// untagged responses RFC 3501 7 describes: EXPUNGE (when allowed),
// FETCH FLAGS for others' flag changes, EXISTS and RECENT for new mail.
func (s *session) applyUpdate(u mailstore.Update, allowExpunge bool) {
	sel := s.sel
	for _, uid := range u.Expunged {
		if sel.index(uid) >= 0 && !sel.isPending(uid) {
			sel.pending = append(sel.pending, uid)
		}
	}
	newKeywords := false
	for _, info := range u.Changed {
		newKeywords = sel.noteKeywords(info.Flags) || newKeywords
	}
	for _, info := range u.New {
		newKeywords = sel.noteKeywords(info.Flags) || newKeywords
	}
	if newKeywords {
		s.writeFlags()
	}
	for _, info := range u.Changed {
		i := sel.index(info.UID)
		if i < 0 || slices.Equal(sel.msgs[i].Flags, info.Flags) {
			continue
		}
		sel.msgs[i].Flags = info.Flags
		sel.msgs[i].ModSeq = info.ModSeq
		s.writeFlagsFetch(i, true)
	}
	if allowExpunge {
		s.flushExpunges()
	}
	before := len(sel.msgs)
	for _, info := range u.New {
		if sel.index(info.UID) >= 0 {
			continue
		}
		if info.UID > sel.lastUID() {
			sel.msgs = append(sel.msgs, info)
			continue
		}
		i := sort.Search(len(sel.msgs), func(i int) bool { return sel.msgs[i].UID > info.UID })
		sel.msgs = slices.Insert(sel.msgs, i, info)
	}
	if len(sel.msgs) != before {
		s.w.untagged("%d EXISTS", len(sel.msgs))
		s.w.untagged("%d RECENT", sel.recent())
	}
}

// flushExpunges announces pending expunges, each with the sequence
// number it has at that moment (RFC 3501 7.4.1).
func (s *session) flushExpunges() {
	sel := s.sel
	uids := sortUint32(sel.pending)
	sel.pending = nil
	s.removeUIDs(uids)
}

// removeUIDs drops messages from the view, writing "* n EXPUNGE" for
// each one present, with the sequence number it has once the ones
// before it are gone (RFC 3501 7.4.1). One pass, so expunging thousands
// of messages stays linear.
func (s *session) removeUIDs(uids []uint32) {
	sel := s.sel
	if len(uids) == 0 {
		return
	}
	gone := make(map[uint32]bool, len(uids))
	for _, uid := range uids {
		gone[uid] = true
	}
	kept := sel.msgs[:0]
	removed := 0
	for i, m := range sel.msgs {
		if !gone[m.UID] {
			kept = append(kept, m)
			continue
		}
		s.w.untagged("%d EXPUNGE", i+1-removed)
		removed++
	}
	clear(sel.msgs[len(kept):])
	sel.msgs = kept
	if removed > 0 && len(sel.pending) > 0 {
		sel.pending = slices.DeleteFunc(sel.pending, func(uid uint32) bool { return gone[uid] })
	}
}

func (sel *selected) recent() int {
	n := 0
	for _, m := range sel.msgs {
		if slices.Contains(m.Flags, mailstore.FlagRecent) {
			n++
		}
	}
	return n
}

// sendUpdates polls the mailbox and writes what changed.
func (s *session) sendUpdates(ctx context.Context, allowExpunge bool) error {
	if s.sel == nil {
		return nil
	}
	u, err := s.sel.mbox.Poll(ctx)
	if err != nil {
		return err
	}
	s.applyUpdate(u, allowExpunge)
	return nil
}

// writeFlagsFetch writes "* n FETCH (UID u FLAGS (...))" for msgs[i].
func (s *session) writeFlagsFetch(i int, withUID bool) {
	m := s.sel.msgs[i]
	s.w.WriteString("* ")
	s.w.uint(uint32(i + 1))
	s.w.WriteString(" FETCH (")
	if withUID {
		s.w.WriteString("UID ")
		s.w.uint(m.UID)
		s.w.WriteByte(' ')
	}
	s.w.WriteString("FLAGS ")
	s.w.flags(m.Flags)
	s.w.WriteString(")\r\n")
}

var systemFlags = []string{mailstore.FlagAnswered, mailstore.FlagFlagged, mailstore.FlagDeleted, mailstore.FlagSeen, mailstore.FlagDraft}

// cmdSelect is SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2).
func (s *session) cmdSelect(c *command, p *parser) (status, error) {
	if err := p.sp(); err != nil {
		return status{}, err
	}
	name, err := p.astring()
	if err != nil {
		return status{}, err
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	ctx := s.ctx
	if s.sel != nil {
		// RFC 3501 6.3.1: the previous mailbox is closed without
		// expunging; RFC 7162 3.2.11 announces it with [CLOSED].
		s.sel.mbox.Close()
		s.sel = nil
		s.state = stateAuth
		s.w.untagged("OK [CLOSED] Previous mailbox closed.")
	}
	storeName, err := s.storeName(name)
	if err != nil {
		return no("CANNOT", err.Error()), nil
	}
	readOnly := c.name == "EXAMINE"
	mbox, err := s.account.Select(ctx, storeName, readOnly)
	if err != nil {
		return s.storeError(err, name), nil
	}
	sel := &selected{mbox: mbox, name: storeName, readOnly: mbox.ReadOnly()}
	sel.msgs = slices.Clone(mbox.Messages())
	s.sel = sel
	s.state = stateSelected

	firstUnseen := 0
	for i, m := range sel.msgs {
		sel.noteKeywords(m.Flags)
		if firstUnseen == 0 && !slices.Contains(m.Flags, mailstore.FlagSeen) {
			firstUnseen = i + 1
		}
	}
	s.writeFlags()
	s.w.untagged("%d EXISTS", len(sel.msgs))
	s.w.untagged("%d RECENT", sel.recent())
	if firstUnseen > 0 {
		s.w.untagged("OK [UNSEEN %d] First unseen.", firstUnseen)
	}
	s.w.untagged("OK [UIDVALIDITY %d] UIDs valid", mbox.UIDValidity())
	s.w.untagged("OK [UIDNEXT %d] Predicted next UID", mbox.UIDNext())
	if sel.readOnly {
		return okCode("READ-ONLY", "Examine completed."), nil
	}
	return okCode("READ-WRITE", "Select completed."), nil
}

// cmdClose is CLOSE (RFC 3501 6.4.2: silent expunge when read-write) and
// UNSELECT (RFC 3691: no expunge).
func (s *session) cmdClose(c *command, p *parser) (status, error) {
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	sel := s.sel
	var expErr error
	if c.name == "CLOSE" && !sel.readOnly {
		_, expErr = sel.mbox.Expunge(s.ctx, nil)
	}
	sel.mbox.Close()
	s.sel = nil
	s.state = stateAuth
	if expErr != nil {
		s.opts.Logger.Printf(s.logName(), "Error: CLOSE expunge of %s: %v", sel.name, expErr)
	}
	if c.name == "CLOSE" {
		return ok("Close completed."), nil
	}
	return ok("Unselect completed."), nil
}

// cmdExpunge is EXPUNGE (RFC 3501 6.4.3) and UID EXPUNGE (RFC 4315 2.1).
func (s *session) cmdExpunge(c *command, p *parser) (status, error) {
	var uids []uint32
	if c.uid {
		if err := p.sp(); err != nil {
			return status{}, err
		}
		set, err := s.seqSetArg(p)
		if err != nil {
			return status{}, err
		}
		idx, err := s.sel.resolve(set, true)
		if err != nil {
			return status{}, err
		}
		uids = make([]uint32, 0, len(idx))
		for _, i := range idx {
			uids = append(uids, s.sel.msgs[i].UID)
		}
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	if s.sel.readOnly {
		return no("", "Mailbox is read-only."), nil
	}
	if c.uid && len(uids) == 0 {
		return ok("Expunge completed."), nil
	}
	removed, err := s.sel.mbox.Expunge(s.ctx, uids)
	if err != nil {
		return s.storeError(err, s.sel.name), nil
	}
	s.removeUIDs(sortUint32(slices.Clone(removed)))
	return ok("Expunge completed."), nil
}

// seqSetArg reads a sequence-set atom.
func (s *session) seqSetArg(p *parser) (seqSet, error) {
	a, err := p.readWhile(func(b byte) bool { return (b >= '0' && b <= '9') || b == ':' || b == ',' || b == '*' })
	if err != nil {
		return nil, err
	}
	return parseSeqSet(a)
}

// cmdStore is STORE (RFC 3501 6.4.6) and UID STORE.
func (s *session) cmdStore(c *command, p *parser) (status, error) {
	if err := p.sp(); err != nil {
		return status{}, err
	}
	set, err := s.seqSetArg(p)
	if err != nil {
		return status{}, err
	}
	if err := p.sp(); err != nil {
		return status{}, err
	}
	item, err := p.atom()
	if err != nil {
		return status{}, err
	}
	item = strings.ToUpper(item)
	silent := strings.HasSuffix(item, ".SILENT")
	item = strings.TrimSuffix(item, ".SILENT")
	var op mailstore.FlagOp
	switch item {
	case "FLAGS":
		op = mailstore.FlagsReplace
	case "+FLAGS":
		op = mailstore.FlagsAdd
	case "-FLAGS":
		op = mailstore.FlagsRemove
	default:
		return status{}, badSyntax("Invalid STORE data item")
	}
	if err := p.sp(); err != nil {
		return status{}, err
	}
	var flags []string
	if b, _ := p.peek(); b == '(' {
		if flags, err = p.flagList(); err != nil {
			return status{}, err
		}
	} else {
		for {
			f, err := p.flag()
			if err != nil {
				return status{}, err
			}
			flags = append(flags, f)
			if p.atEOL() {
				break
			}
			if err := p.sp(); err != nil {
				return status{}, err
			}
		}
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	if flags, err = canonicalFlags(flags); err != nil {
		return status{}, err
	}
	idx, err := s.sel.resolve(set, c.uid)
	if err != nil {
		return status{}, err
	}
	if s.sel.readOnly {
		return no("", "Mailbox is read-only."), nil
	}
	uids := make([]uint32, 0, len(idx))
	expunged := false
	for _, i := range idx {
		uid := s.sel.msgs[i].UID
		if s.sel.isPending(uid) {
			expunged = true
			continue
		}
		uids = append(uids, uid)
	}
	if len(uids) > 0 {
		updated, _, err := s.sel.mbox.Store(s.ctx, uids, op, flags, 0)
		if err != nil && !errors.Is(err, mailstore.ErrNoSuchMessage) {
			return s.storeError(err, s.sel.name), nil
		}
		if err != nil {
			expunged = true
		}
		newKeywords := false
		for _, info := range updated {
			newKeywords = s.sel.noteKeywords(info.Flags) || newKeywords
		}
		if newKeywords {
			s.writeFlags()
		}
		for _, info := range updated {
			i := s.sel.index(info.UID)
			if i < 0 {
				continue
			}
			s.sel.msgs[i].Flags = info.Flags
			s.sel.msgs[i].ModSeq = info.ModSeq
			if !silent {
				s.writeFlagsFetch(i, c.uid)
			}
		}
	}
	if expunged {
		// RFC 2180 4.2.1: the others were stored.
		return no("EXPUNGEISSUED", "Some of the messages no longer exist."), nil
	}
	return ok("Store completed."), nil
}

// canonicalFlags checks client flags: system flags are spelled as RFC
// 3501 2.3.2 does, \Recent and unknown system flags are refused.
func canonicalFlags(flags []string) ([]string, error) {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if strings.HasPrefix(f, `\`) {
			i := slices.IndexFunc(systemFlags, func(sf string) bool { return strings.EqualFold(sf, f) })
			if i < 0 {
				return nil, badSyntax("Invalid system flag %s", f)
			}
			f = systemFlags[i]
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// cmdCopy is COPY (RFC 3501 6.4.7) with COPYUID (RFC 4315 3) and MOVE
// (RFC 6851 3.1).
func (s *session) cmdCopy(c *command, p *parser) (status, error) {
	if err := p.sp(); err != nil {
		return status{}, err
	}
	set, err := s.seqSetArg(p)
	if err != nil {
		return status{}, err
	}
	if err := p.sp(); err != nil {
		return status{}, err
	}
	dest, err := p.astring()
	if err != nil {
		return status{}, err
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	idx, err := s.sel.resolve(set, c.uid)
	if err != nil {
		return status{}, err
	}
	verb := "Copy"
	if c.name == "MOVE" {
		verb = "Move"
		if s.sel.readOnly {
			return no("", "Mailbox is read-only."), nil
		}
	}
	if len(idx) == 0 {
		return ok("No messages found."), nil
	}
	destName, err := s.storeName(dest)
	if err != nil {
		return no("CANNOT", err.Error()), nil
	}
	uids := make([]uint32, 0, len(idx))
	for _, i := range idx {
		uids = append(uids, s.sel.msgs[i].UID)
	}
	ctx := s.ctx
	var validity uint32
	var src, dst []uint32
	if c.name == "MOVE" {
		validity, src, dst, err = s.sel.mbox.Move(ctx, uids, destName)
	} else {
		validity, src, dst, err = s.sel.mbox.Copy(ctx, uids, destName)
	}
	if err != nil {
		if errors.Is(err, mailstore.ErrNoMailbox) {
			return no("TRYCREATE", "Mailbox doesn't exist: "+dest), nil
		}
		return s.storeError(err, dest), nil
	}
	code := ""
	if len(src) > 0 && len(src) == len(dst) {
		code = "COPYUID " + strconv.FormatUint(uint64(validity), 10) + " " + formatUIDSet(src) + " " + formatUIDSet(dst)
	}
	if c.name == "MOVE" {
		if code != "" {
			s.w.untagged("OK [%s] Moved UIDs.", code)
		}
		s.removeUIDs(sortUint32(slices.Clone(src)))
		return ok("Move completed."), nil
	}
	return okCode(code, verb+" completed."), nil
}
