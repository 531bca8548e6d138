package imapd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"postcote/internal/mailstore"
)

// maxHeaderRead bounds a header read on its own (ENVELOPE, HEADER).
const maxHeaderRead = 4 << 20

// cmdFetch is FETCH (RFC 3501 6.4.5) and UID FETCH (6.4.8).
func (s *session) cmdFetch(c *command, p *parser) (status, error) {
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
	items, err := parseFetchItems(p)
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
	if c.uid && !slices.ContainsFunc(items, func(it fetchItem) bool { return it.kind == fetchUID }) {
		// RFC 3501 6.4.8: UID FETCH always returns the UID.
		items = append([]fetchItem{{kind: fetchUID, label: "UID"}}, items...)
	}
	ctx := s.ctx
	addFlags := make(map[int]bool)
	if !s.sel.readOnly && slices.ContainsFunc(items, fetchItem.setsSeen) {
		var uids []uint32
		for _, i := range idx {
			m := s.sel.msgs[i]
			if !slices.Contains(m.Flags, mailstore.FlagSeen) && !s.sel.isPending(m.UID) {
				uids = append(uids, m.UID)
			}
		}
		if len(uids) > 0 {
			updated, _, err := s.sel.mbox.Store(ctx, uids, mailstore.FlagsAdd, []string{mailstore.FlagSeen}, 0)
			if err != nil && !errors.Is(err, mailstore.ErrNoSuchMessage) {
				return s.storeError(err, s.sel.name), nil
			}
			for _, info := range updated {
				if i := s.sel.index(info.UID); i >= 0 {
					s.sel.msgs[i].Flags = info.Flags
					s.sel.msgs[i].ModSeq = info.ModSeq
					addFlags[i] = true
				}
			}
		}
	}
	if slices.ContainsFunc(items, func(it fetchItem) bool { return it.kind == fetchFlags }) {
		// FLAGS already carries the implicit \Seen change; otherwise it
		// is appended to the message's response.
		clear(addFlags)
	}
	missing := false
	for _, i := range idx {
		ok, err := s.fetchOne(ctx, i, items, addFlags[i])
		var sf storeFailure
		if errors.As(err, &sf) {
			// Nothing of this message was written: the command fails
			// cleanly.
			return s.storeError(sf.err, s.sel.name), nil
		}
		if err != nil {
			return status{}, err
		}
		if !ok {
			missing = true
		}
	}
	if missing {
		// RFC 2180 4.1.2: the rest was returned.
		return no("EXPUNGEISSUED", "Some messages were expunged before they could be fetched."), nil
	}
	return ok("Fetch completed."), nil
}

// msgContent is what fetchOne loaded of one message.
type msgContent struct {
	reader io.ReadSeekCloser
	size   int64
	data   []byte // whole message, when parsed
	header []byte // header only, when that was enough
	tree   *part
}

func (mc *msgContent) close() {
	if mc.reader != nil {
		mc.reader.Close()
	}
}

// fetchOne writes the FETCH response of message index i. It returns
// false when the message vanished from the store meanwhile.
func (s *session) fetchOne(ctx context.Context, i int, items []fetchItem, withFlags bool) (bool, error) {
	m := s.sel.msgs[i]
	key := structureKey{user: s.user, mailbox: s.sel.name, uidValidity: s.sel.mbox.UIDValidity(), uid: m.UID}
	cached, _ := s.srv.cache.get(key)

	// Work out how much of the message is needed.
	needFull, needHeader, needReader := false, false, false
	for _, it := range items {
		switch {
		case it.kind == fetchEnvelope:
			if cached.envelope == nil {
				needHeader = true
			}
		case it.kind == fetchBody:
			needFull = needFull || cached.body == nil
		case it.kind == fetchBodyStructure:
			needFull = needFull || cached.bodyStructure == nil
		case it.wholeMessage():
			needReader = true
		case it.headerOnly():
			needHeader = true
		case it.kind == fetchSection || it.kind == fetchRFC822Text:
			needFull = true
		}
	}
	var mc msgContent
	defer mc.close()
	if needFull || needHeader || needReader {
		r, size, err := s.sel.mbox.Open(ctx, m.UID)
		if err != nil {
			if errors.Is(err, mailstore.ErrNoSuchMessage) {
				return false, nil
			}
			return false, storeFailure{fmt.Errorf("open message %d: %w", m.UID, err)}
		}
		mc.reader, mc.size = r, size
		switch {
		case needFull:
			data, err := io.ReadAll(io.LimitReader(r, size))
			if err != nil {
				return false, storeFailure{fmt.Errorf("read message %d: %w", m.UID, err)}
			}
			mc.data = data
			mc.tree = parseMessage(data)
			st := structure{
				envelope:      envelope(data, mc.tree),
				body:          bodyStructure(data, mc.tree, false),
				bodyStructure: bodyStructure(data, mc.tree, true),
			}
			s.srv.cache.put(key, st)
			cached = st
		case needHeader:
			h, err := readHeader(r)
			if err != nil {
				return false, storeFailure{fmt.Errorf("read message %d: %w", m.UID, err)}
			}
			mc.header = h
			mc.tree = &part{}
			mc.tree.fields, mc.tree.bodyStart = parseHeader(h, 0, len(h))
			mc.tree.end = len(h)
			if cached.envelope == nil {
				cached.envelope = envelope(h, mc.tree)
				s.srv.cache.put(key, structure{envelope: cached.envelope})
			}
		}
	}

	w := s.w
	w.WriteString("* ")
	w.uint(uint32(i + 1))
	w.WriteString(" FETCH (")
	for k, it := range items {
		if k > 0 {
			w.WriteByte(' ')
		}
		w.WriteString(it.label)
		w.WriteByte(' ')
		switch it.kind {
		case fetchFlags:
			w.flags(m.Flags)
		case fetchUID:
			w.uint(m.UID)
		case fetchInternalDate:
			w.WriteString(`"` + m.InternalDate.Format("02-Jan-2006 15:04:05 -0700") + `"`)
		case fetchSize:
			fmt.Fprintf(w, "%d", m.Size)
		case fetchEnvelope:
			w.Write(cached.envelope)
		case fetchBody:
			w.Write(cached.body)
		case fetchBodyStructure:
			w.Write(cached.bodyStructure)
		default:
			if err := s.writeSection(&mc, it); err != nil {
				return false, err
			}
		}
	}
	if withFlags {
		w.WriteString(" FLAGS ")
		w.flags(m.Flags)
	}
	w.WriteString(")\r\n")
	return true, nil
}

// writeSection writes the value of a body section item.
func (s *session) writeSection(mc *msgContent, it fetchItem) error {
	w := s.w
	if it.wholeMessage() && mc.data == nil {
		// Stream the stored message as it is.
		if _, err := mc.reader.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("rewind message: %w", err)
		}
		fmt.Fprintf(w, "{%d}\r\n", mc.size)
		if _, err := io.CopyN(w, mc.reader, mc.size); err != nil {
			// The literal is cut short: the stream is lost.
			return fmt.Errorf("message shorter than its size: %w", err)
		}
		return nil
	}
	data := mc.data
	if data == nil {
		data = mc.header
	}
	var sec section
	switch it.kind {
	case fetchRFC822:
	case fetchRFC822Header:
		sec.specifier = "HEADER"
	case fetchRFC822Text:
		sec.specifier = "TEXT"
	default:
		sec = it.sec
	}
	b, _ := sectionBytes(data, mc.tree, sec)
	if it.partial {
		if it.offset >= int64(len(b)) {
			b = nil
		} else {
			b = b[it.offset:]
			if it.count < int64(len(b)) {
				b = b[:it.count]
			}
		}
	}
	w.literalBytes(b)
	return nil
}

// readHeader reads up to and including the blank line after the header.
func readHeader(r io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(r, 8192)
	var out []byte
	for len(out) < maxHeaderRead {
		line, err := br.ReadSlice('\n')
		out = append(out, line...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(line) == 1 || (len(line) == 2 && line[0] == '\r') {
			return out, nil
		}
	}
	return out, nil
}

// resolvePart finds the part a section path names (RFC 3501 6.4.5) the
// way Dovecot does: numbers index multipart children; 1 names a
// non-multipart part itself, and a path may only go on below it when it
// is a message/rfc822, whose encapsulated message is then entered.
func resolvePart(root *part, path []int) *part {
	cur := root
	for k, n := range path {
		last := k == len(path)-1
		if cur.isMultipart() && len(cur.children) > 0 {
			if n > len(cur.children) {
				return nil
			}
			cur = cur.children[n-1]
		} else if n != 1 || (!last && cur.msg == nil) {
			return nil
		}
		if !last && cur.msg != nil {
			cur = cur.msg
		}
	}
	return cur
}

// sectionBytes returns the octets of a section. A part that does not
// exist is empty, as Dovecot answers it; false only means the message's
// data was not loaded for it.
func sectionBytes(data []byte, root *part, sec section) ([]byte, bool) {
	p := root
	if len(sec.path) > 0 {
		if p = resolvePart(root, sec.path); p == nil {
			return nil, true
		}
	}
	m := p
	if len(sec.path) > 0 && sec.specifier != "" && sec.specifier != "MIME" {
		// HEADER and TEXT of a part are those of the message it
		// encapsulates; other parts have none.
		if p.msg == nil {
			return nil, true
		}
		m = p.msg
	}
	switch sec.specifier {
	case "":
		if len(sec.path) == 0 {
			return data[p.hdrStart:p.end], true
		}
		return data[p.bodyStart:p.end], true
	case "MIME":
		return data[p.hdrStart:p.bodyStart], true
	case "HEADER":
		return data[m.hdrStart:m.bodyStart], true
	case "TEXT":
		return data[m.bodyStart:m.end], true
	case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
		not := sec.specifier == "HEADER.FIELDS.NOT"
		var out bytes.Buffer
		for _, f := range m.fields {
			match := slices.ContainsFunc(sec.fields, func(n string) bool { return strings.EqualFold(n, f.name) })
			if match != not {
				out.Write(data[f.start:f.end])
				if b := out.Bytes(); len(b) > 0 && b[len(b)-1] != '\n' {
					out.WriteString("\r\n")
				}
			}
		}
		out.WriteString("\r\n")
		return out.Bytes(), true
	}
	return nil, false
}

// storeFailure is a store error met before any of the response was
// written: answered with NO instead of ending the connection.
type storeFailure struct{ err error }

func (e storeFailure) Error() string { return e.err.Error() }
func (e storeFailure) Unwrap() error { return e.err }
