package imapd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"postcote/internal/mailstore"
)

// searchKey is one node of a parsed SEARCH program (RFC 3501 6.4.4).
type searchKey struct {
	op    string // upper-case key name; AND for a parenthesised list
	str   string // string argument (also the flag of KEYWORD)
	field string // HEADER field name
	date  time.Time
	num   int64
	set   seqSet
	sub   []*searchKey
}

// maxSearchDepth bounds nesting of NOT, OR and parentheses.
const maxSearchDepth = 100

// cmdSearch is SEARCH (RFC 3501 6.4.4) and UID SEARCH (6.4.8).
func (s *session) cmdSearch(c *command, p *parser) (status, error) {
	if err := p.sp(); err != nil {
		return status{}, err
	}
	var keys []*searchKey
	first := true
	for {
		k, err := parseSearchKey(p, 0, first)
		if err != nil {
			return status{}, err
		}
		if first && k.op == "CHARSET" {
			first = false
			cs := strings.ToUpper(k.str)
			if cs != "UTF-8" && cs != "US-ASCII" {
				if err := p.discardLine(); err != nil {
					return status{}, err
				}
				return no("BADCHARSET (UTF-8 US-ASCII)", "Unsupported charset"), nil
			}
			if err := p.sp(); err != nil {
				return status{}, err
			}
			continue
		}
		first = false
		keys = append(keys, k)
		if p.atEOL() {
			break
		}
		if err := p.sp(); err != nil {
			return status{}, err
		}
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	prog := &searchKey{op: "AND", sub: keys}
	ctx := s.ctx
	var hits []uint32
	for i := range s.sel.msgs {
		sm := &searchMsg{s: s, ctx: ctx, i: i}
		match, err := s.evalSearch(prog, sm)
		if err != nil {
			return s.storeError(err, s.sel.name), nil
		}
		if match {
			if c.uid {
				hits = append(hits, s.sel.msgs[i].UID)
			} else {
				hits = append(hits, uint32(i+1))
			}
		}
	}
	s.w.WriteString("* SEARCH")
	for _, h := range hits {
		s.w.WriteByte(' ')
		s.w.uint(h)
	}
	s.w.WriteString("\r\n")
	return ok("Search completed."), nil
}

// parseSearchKey reads one search-key; "CHARSET x" is returned as a key
// for the caller to check.
func parseSearchKey(p *parser, depth int, charsetOK bool) (*searchKey, error) {
	if depth > maxSearchDepth {
		return nil, badSyntax("Search program nested too deeply")
	}
	b, err := p.peek()
	if err != nil {
		return nil, err
	}
	if b == '(' {
		k := &searchKey{op: "AND"}
		p.readByte()
		for {
			sub, err := parseSearchKey(p, depth+1, false)
			if err != nil {
				return nil, err
			}
			k.sub = append(k.sub, sub)
			c, err := p.readByte()
			if err != nil {
				return nil, err
			}
			if c == ')' {
				return k, nil
			}
			if c != ' ' {
				return nil, badSyntax("expected space or )")
			}
		}
	}
	if (b >= '0' && b <= '9') || b == '*' || b == '$' {
		if b == '$' {
			return nil, badSyntax("SEARCHRES is not supported")
		}
		a, err := p.readWhile(func(b byte) bool { return (b >= '0' && b <= '9') || b == ':' || b == ',' || b == '*' })
		if err != nil {
			return nil, err
		}
		set, err := parseSeqSet(a)
		if err != nil {
			return nil, err
		}
		return &searchKey{op: "SEQ", set: set}, nil
	}
	name, err := p.atom()
	if err != nil {
		return nil, err
	}
	k := &searchKey{op: strings.ToUpper(name)}
	arg := func() (string, error) {
		if err := p.sp(); err != nil {
			return "", err
		}
		return p.astring()
	}
	switch k.op {
	case "ALL", "ANSWERED", "DELETED", "DRAFT", "FLAGGED", "NEW", "OLD", "RECENT", "SEEN",
		"UNANSWERED", "UNDELETED", "UNDRAFT", "UNFLAGGED", "UNSEEN":
	case "CHARSET":
		// RFC 3501 6.4.4: only before the first search key.
		if !charsetOK {
			return nil, badSyntax("CHARSET must come first")
		}
		k.str, err = arg()
	case "BCC", "BODY", "CC", "FROM", "SUBJECT", "TEXT", "TO":
		k.str, err = arg()
	case "KEYWORD", "UNKEYWORD":
		if err = p.sp(); err == nil {
			k.str, err = p.atom()
		}
	case "HEADER":
		if k.field, err = arg(); err == nil {
			k.str, err = arg()
		}
	case "BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE":
		var ds string
		if ds, err = arg(); err == nil {
			k.date, err = parseSearchDate(ds)
		}
	case "LARGER", "SMALLER":
		if err = p.sp(); err == nil {
			var n uint64
			n, err = p.number64()
			k.num = int64(n)
		}
	case "UID":
		if err = p.sp(); err == nil {
			var a string
			a, err = p.readWhile(func(b byte) bool { return (b >= '0' && b <= '9') || b == ':' || b == ',' || b == '*' })
			if err == nil {
				k.set, err = parseSeqSet(a)
			}
		}
	case "NOT":
		if err = p.sp(); err == nil {
			var sub *searchKey
			sub, err = parseSearchKey(p, depth+1, false)
			k.sub = []*searchKey{sub}
		}
	case "OR":
		for range 2 {
			if err = p.sp(); err != nil {
				break
			}
			var sub *searchKey
			if sub, err = parseSearchKey(p, depth+1, false); err != nil {
				break
			}
			k.sub = append(k.sub, sub)
		}
	default:
		return nil, badSyntax("Unknown search key %s", name)
	}
	if err != nil {
		return nil, err
	}
	return k, nil
}

// parseSearchDate parses RFC 3501 date: d?d-Mon-yyyy.
func parseSearchDate(s string) (time.Time, error) {
	t, err := time.Parse("2-Jan-2006", s)
	if err != nil {
		return time.Time{}, badSyntax("Invalid search date")
	}
	return t, nil
}

// civil returns t's calendar date in its own zone, as a UTC midnight, so
// dates compare "disregarding time and timezone" (RFC 3501 6.4.4).
func civil(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// searchMsg loads a message's content lazily for the text keys.
type searchMsg struct {
	s      *session
	ctx    context.Context
	i      int
	loaded int // 0 nothing, 1 header, 2 full
	data   []byte
	tree   *part
	gone   bool
}

// load reads the header (full false) or the whole message.
func (sm *searchMsg) load(full bool) error {
	want := 1
	if full {
		want = 2
	}
	if sm.loaded >= want || sm.gone {
		return nil
	}
	uid := sm.s.sel.msgs[sm.i].UID
	r, size, err := sm.s.sel.mbox.Open(sm.ctx, uid)
	if err != nil {
		if errors.Is(err, mailstore.ErrNoSuchMessage) {
			sm.gone = true
			return nil
		}
		return fmt.Errorf("open message %d: %w", uid, err)
	}
	defer r.Close()
	if full {
		data := make([]byte, 0, size)
		buf := make([]byte, 32*1024)
		for {
			n, err := r.Read(buf)
			data = append(data, buf[:n]...)
			if err != nil {
				break
			}
		}
		sm.data, sm.tree, sm.loaded = data, parseMessage(data), 2
		return nil
	}
	h, err := readHeader(r)
	if err != nil {
		return fmt.Errorf("read message %d: %w", uid, err)
	}
	sm.data = h
	sm.tree = &part{end: len(h)}
	sm.tree.fields, sm.tree.bodyStart = parseHeader(h, 0, len(h))
	sm.loaded = 1
	return nil
}

// evalSearch evaluates key against message sm.i.
func (s *session) evalSearch(k *searchKey, sm *searchMsg) (bool, error) {
	m := s.sel.msgs[sm.i]
	has := func(f string) bool { return slices.Contains(m.Flags, f) }
	switch k.op {
	case "AND":
		for _, sub := range k.sub {
			ok, err := s.evalSearch(sub, sm)
			if err != nil || !ok {
				return false, err
			}
		}
		return true, nil
	case "OR":
		for _, sub := range k.sub {
			ok, err := s.evalSearch(sub, sm)
			if err != nil || ok {
				return ok, err
			}
		}
		return false, nil
	case "NOT":
		ok, err := s.evalSearch(k.sub[0], sm)
		return !ok, err
	case "ALL":
		return true, nil
	case "ANSWERED":
		return has(mailstore.FlagAnswered), nil
	case "DELETED":
		return has(mailstore.FlagDeleted), nil
	case "DRAFT":
		return has(mailstore.FlagDraft), nil
	case "FLAGGED":
		return has(mailstore.FlagFlagged), nil
	case "SEEN":
		return has(mailstore.FlagSeen), nil
	case "RECENT":
		return has(mailstore.FlagRecent), nil
	case "NEW":
		return has(mailstore.FlagRecent) && !has(mailstore.FlagSeen), nil
	case "OLD":
		return !has(mailstore.FlagRecent), nil
	case "UNANSWERED":
		return !has(mailstore.FlagAnswered), nil
	case "UNDELETED":
		return !has(mailstore.FlagDeleted), nil
	case "UNDRAFT":
		return !has(mailstore.FlagDraft), nil
	case "UNFLAGGED":
		return !has(mailstore.FlagFlagged), nil
	case "UNSEEN":
		return !has(mailstore.FlagSeen), nil
	case "KEYWORD":
		return slices.ContainsFunc(m.Flags, func(f string) bool { return strings.EqualFold(f, k.str) }), nil
	case "UNKEYWORD":
		return !slices.ContainsFunc(m.Flags, func(f string) bool { return strings.EqualFold(f, k.str) }), nil
	case "LARGER":
		return m.Size > k.num, nil
	case "SMALLER":
		return m.Size < k.num, nil
	case "BEFORE":
		return civil(m.InternalDate).Before(k.date), nil
	case "ON":
		return civil(m.InternalDate).Equal(k.date), nil
	case "SINCE":
		return !civil(m.InternalDate).Before(k.date), nil
	case "SEQ":
		n := uint32(len(s.sel.msgs))
		return inSet(k.set, n, uint32(sm.i+1)), nil
	case "UID":
		return inSet(k.set, s.sel.lastUID(), m.UID), nil
	case "SENTBEFORE", "SENTON", "SENTSINCE":
		if err := sm.load(false); err != nil || sm.gone {
			return false, err
		}
		v, ok := sm.tree.headerValue(sm.data, "Date")
		if !ok {
			return false, nil
		}
		t, err := parseMessageDate(v)
		if err != nil {
			return false, nil
		}
		d := civil(t)
		switch k.op {
		case "SENTBEFORE":
			return d.Before(k.date), nil
		case "SENTON":
			return d.Equal(k.date), nil
		}
		return !d.Before(k.date), nil
	case "FROM", "TO", "CC", "BCC", "SUBJECT", "HEADER":
		if err := sm.load(false); err != nil || sm.gone {
			return false, err
		}
		field := k.field
		if k.op != "HEADER" {
			field = k.op
		}
		return headerContains(sm.data, sm.tree, field, k.str), nil
	case "BODY", "TEXT":
		if err := sm.load(true); err != nil || sm.gone {
			return false, err
		}
		needle := foldCase(k.str)
		if k.op == "TEXT" {
			for _, f := range sm.tree.fields {
				if strings.Contains(foldCase(decodeHeaderValue(fieldValue(sm.data, f))), needle) ||
					strings.Contains(foldCase(f.name), needle) {
					return true, nil
				}
			}
		}
		return bodyContains(sm.data, sm.tree, needle), nil
	}
	return false, fmt.Errorf("search key %s not evaluated", k.op)
}

// inSet reports whether n is in set, "*" standing for max.
func inSet(set seqSet, max, n uint32) bool {
	if max == 0 {
		return false
	}
	for _, r := range set.resolve(max) {
		if n >= r.lo && n <= r.hi {
			return true
		}
	}
	return false
}

// headerContains matches a header field's decoded value (RFC 2047 words
// decoded, case-insensitive). An empty needle matches any message that
// has the field (RFC 3501 6.4.4 HEADER).
func headerContains(data []byte, p *part, field, needle string) bool {
	needle = foldCase(needle)
	for _, f := range p.fields {
		if !strings.EqualFold(f.name, field) {
			continue
		}
		if needle == "" {
			return true
		}
		if strings.Contains(foldCase(decodeHeaderValue(fieldValue(data, f))), needle) {
			return true
		}
	}
	return false
}

// bodyContains searches the decoded text of every text part (transfer
// encoding and charset undone) and the headers of encapsulated messages.
func bodyContains(data []byte, p *part, needle string) bool {
	switch {
	case p.isMultipart():
		for _, c := range p.children {
			if bodyContains(data, c, needle) {
				return true
			}
		}
		return false
	case p.msg != nil:
		for _, f := range p.msg.fields {
			if strings.Contains(foldCase(decodeHeaderValue(fieldValue(data, f))), needle) {
				return true
			}
		}
		return bodyContains(data, p.msg, needle)
	case p.isText() || len(p.fields) == 0:
		text := decodeBody(data, p)
		return strings.Contains(foldCase(text), needle)
	}
	return false
}
