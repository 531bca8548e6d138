package queue

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// Record framing (see doc.go):
//
//	magic   uint32 big-endian  recMagic
//	type    uint8              recMessage … recRemove
//	length  uint32 big-endian  payload length
//	crc     uint32 big-endian  CRC-32C of type, length and payload
//	payload [length]byte
const (
	recMagic      = 0x50435131 // "PCQ1"
	recHeaderSize = 13
	// maxRecord bounds a record's payload; a larger length is corruption.
	// Inline content is at most largeThreshold, so real records are far
	// smaller.
	maxRecord = 64 << 20
)

// Record types.
const (
	recMessage = 1 // a message: envelope, state and (inline) content
	recUpdate  = 2 // per-recipient results and the next retry time
	recHold    = 3 // put on hold (postsuper -h)
	recRelease = 4 // released from hold (postsuper -H)
	recRemove  = 5 // done: delivered, bounced or deleted
)

// Message record flags.
const (
	flagHeld   = 1 << 0
	flagWarned = 1 << 1
	flagLarge  = 1 << 2
)

const recVersion = 1

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// record is one decoded log record. Content is never held here: a message
// record's body stays on disk and is located by contentOff.
type record struct {
	typ byte
	id  ID

	// recMessage
	env       Envelope
	flags     uint64
	nextRetry time.Time
	size      int64
	// contentOff is the offset of inline content from the record start.
	contentOff int64

	// recUpdate
	updates []rcptUpdate
}

// rcptUpdate is the new state of one recipient.
type rcptUpdate struct {
	idx int
	rcpt
}

// rcpt is the part of a Recipient that delivery changes.
type rcpt struct {
	Status     RecipientStatus
	Attempts   int
	LastErr    string
	DSN        string
	Diagnostic string
	RemoteMTA  string
}

func (r *Recipient) state() rcpt {
	return rcpt{r.Status, r.Attempts, r.LastErr, r.DSN, r.Diagnostic, r.RemoteMTA}
}

func (r *Recipient) setState(s rcpt) {
	r.Status, r.Attempts, r.LastErr = s.Status, s.Attempts, s.LastErr
	r.DSN, r.Diagnostic, r.RemoteMTA = s.DSN, s.Diagnostic, s.RemoteMTA
}

// frame wraps payload in a record header.
func frame(dst []byte, typ byte, payload []byte) []byte {
	var h [recHeaderSize]byte
	binary.BigEndian.PutUint32(h[0:4], recMagic)
	h[4] = typ
	binary.BigEndian.PutUint32(h[5:9], uint32(len(payload)))
	c := crc32.Update(0, crcTable, h[4:9])
	c = crc32.Update(c, crcTable, payload)
	binary.BigEndian.PutUint32(h[9:13], c)
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// encodeMessage returns a framed message record and the offset of the
// content within it. content is nil for a large message kept in its own
// file.
func encodeMessage(id ID, env *Envelope, flags uint64, nextRetry time.Time, size int64, content []byte) ([]byte, int64) {
	var m enc
	m.byte(recVersion)
	m.str(string(id))
	m.uvarint(flags)
	m.time(nextRetry)
	m.varint(size)
	m.str(env.Sender)
	m.time(env.Arrival)
	m.str(env.ClientName)
	m.str(env.ClientAddr)
	m.str(env.Helo)
	m.str(env.Protocol)
	m.str(env.AuthUser)
	m.str(env.BodyType)
	m.bool(env.SMTPUTF8)
	m.str(env.DSNRet)
	m.str(env.DSNEnvID)
	m.uvarint(uint64(len(env.Recipients)))
	for i := range env.Recipients {
		r := &env.Recipients[i]
		m.str(r.Address)
		m.str(r.OrigAddress)
		m.str(r.DSNNotify)
		m.str(r.DSNORcpt)
		m.rcptState(r.state())
	}
	var p enc
	p.b = make([]byte, 0, binary.MaxVarintLen64+len(m.b)+len(content))
	p.uvarint(uint64(len(m.b)))
	p.b = append(p.b, m.b...)
	off := int64(recHeaderSize + len(p.b))
	p.b = append(p.b, content...)
	return frame(nil, recMessage, p.b), off
}

func encodeUpdate(id ID, warned bool, nextRetry time.Time, ups []rcptUpdate) []byte {
	var m enc
	m.byte(recVersion)
	m.str(string(id))
	var fl uint64
	if warned {
		fl |= flagWarned
	}
	m.uvarint(fl)
	m.time(nextRetry)
	m.uvarint(uint64(len(ups)))
	for _, u := range ups {
		m.uvarint(uint64(u.idx))
		m.rcptState(u.rcpt)
	}
	return frame(nil, recUpdate, m.b)
}

func encodeSimple(typ byte, id ID) []byte {
	var m enc
	m.byte(recVersion)
	m.str(string(id))
	return frame(nil, typ, m.b)
}

// decodeRecord parses a payload whose CRC has been checked. It never
// panics: a malformed payload yields an error.
func decodeRecord(typ byte, payload []byte) (*record, error) {
	r := &record{typ: typ}
	d := dec{b: payload}
	switch typ {
	case recMessage:
		n := d.uvarint()
		if d.err != nil || n > uint64(len(d.b)) {
			return nil, errors.New("bad message header length")
		}
		hdrLen := len(payload) - len(d.b)
		meta := dec{b: d.b[:n]}
		r.contentOff = int64(recHeaderSize + hdrLen + int(n))
		inline := int64(len(d.b)) - int64(n)
		meta.version()
		r.id = ID(meta.str())
		r.flags = meta.uvarint()
		r.nextRetry = meta.time()
		r.size = meta.varint()
		e := &r.env
		e.ID = r.id
		e.Sender = meta.str()
		e.Arrival = meta.time()
		e.ClientName = meta.str()
		e.ClientAddr = meta.str()
		e.Helo = meta.str()
		e.Protocol = meta.str()
		e.AuthUser = meta.str()
		e.BodyType = meta.str()
		e.SMTPUTF8 = meta.bool()
		e.DSNRet = meta.str()
		e.DSNEnvID = meta.str()
		nr := meta.count()
		if meta.err == nil {
			e.Recipients = make([]Recipient, 0, nr)
		}
		for i := 0; i < nr && meta.err == nil; i++ {
			var rc Recipient
			rc.Address = meta.str()
			rc.OrigAddress = meta.str()
			rc.DSNNotify = meta.str()
			rc.DSNORcpt = meta.str()
			rc.setState(meta.rcptState())
			e.Recipients = append(e.Recipients, rc)
		}
		if meta.err != nil {
			return nil, meta.err
		}
		if r.size < 0 || (r.flags&flagLarge == 0 && r.size != inline) || (r.flags&flagLarge != 0 && inline != 0) {
			return nil, errors.New("content length does not match record")
		}
	case recUpdate:
		d.version()
		r.id = ID(d.str())
		r.flags = d.uvarint()
		r.nextRetry = d.time()
		n := d.count()
		for i := 0; i < n && d.err == nil; i++ {
			idx := d.uvarint()
			st := d.rcptState()
			if idx > 1<<20 {
				d.err = errors.New("recipient index out of range")
			}
			r.updates = append(r.updates, rcptUpdate{int(idx), st})
		}
	case recHold, recRelease, recRemove:
		d.version()
		r.id = ID(d.str())
	default:
		return nil, fmt.Errorf("unknown record type %d", typ)
	}
	if d.err != nil {
		return nil, d.err
	}
	if !ValidID(string(r.id)) {
		return nil, fmt.Errorf("invalid queue ID %q", string(r.id))
	}
	return r, nil
}

// scanResult says how a segment scan ended.
type scanResult struct {
	end     int64 // offset just past the last good record before damage
	damaged bool  // a bad record was found at end
	// resumed is true when good records were found after the damage
	// (corruption in the middle, not a torn tail).
	resumed bool
	badErr  error // what was wrong at end
	// zeroTail: the data ends in zeros up to the file's end (space
	// preallocated for appends), which is not damage.
	zeroTail bool
}

// scanSegment reads records from r (size bytes) and calls fn for each
// record whose frame and CRC are good, with its offset. On a bad frame it
// looks ahead for the next good record and carries on from there, so that
// records after a damaged spot are not lost. fn's error stops the scan.
func scanSegment(r io.ReaderAt, size int64, fn func(off int64, typ byte, payload []byte) error) (scanResult, error) {
	var res scanResult
	off := int64(0)
	buf := make([]byte, 0, 64<<10)
	first := true
	for off < size {
		typ, payload, n, err := readRecord(r, off, size, &buf)
		if err != nil {
			if allZero(r, off, size) {
				res.zeroTail = true
				if first {
					res.end = off
				}
				return res, nil
			}
			if first {
				res.end, res.damaged, res.badErr = off, true, err
				first = false
			}
			next, ok := resync(r, off+1, size, &buf)
			if !ok {
				return res, nil
			}
			res.resumed = true
			off = next
			continue
		}
		if err := fn(off, typ, payload); err != nil {
			return res, err
		}
		off += n
		if first {
			res.end = off
		}
	}
	return res, nil
}

// allZero reports whether bytes [off, size) of r are all zero.
func allZero(r io.ReaderAt, off, size int64) bool {
	var buf [32 << 10]byte
	for off < size {
		n := int64(len(buf))
		if size-off < n {
			n = size - off
		}
		if _, err := r.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return false
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return false
			}
		}
		off += n
	}
	return true
}

// readRecord reads and checks one record at off.
func readRecord(r io.ReaderAt, off, size int64, buf *[]byte) (byte, []byte, int64, error) {
	if size-off < recHeaderSize {
		return 0, nil, 0, errors.New("truncated record header")
	}
	var h [recHeaderSize]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		return 0, nil, 0, fmt.Errorf("read record header: %w", err)
	}
	if binary.BigEndian.Uint32(h[0:4]) != recMagic {
		return 0, nil, 0, errors.New("bad record magic")
	}
	length := int64(binary.BigEndian.Uint32(h[5:9]))
	if length > maxRecord {
		return 0, nil, 0, fmt.Errorf("record length %d too large", length)
	}
	if length > size-off-recHeaderSize {
		return 0, nil, 0, errors.New("truncated record")
	}
	if int64(cap(*buf)) < length {
		*buf = make([]byte, length)
	}
	p := (*buf)[:length]
	if _, err := r.ReadAt(p, off+recHeaderSize); err != nil {
		return 0, nil, 0, fmt.Errorf("read record: %w", err)
	}
	c := crc32.Update(0, crcTable, h[4:9])
	c = crc32.Update(c, crcTable, p)
	if c != binary.BigEndian.Uint32(h[9:13]) {
		return 0, nil, 0, errors.New("record CRC mismatch")
	}
	return h[4], p, recHeaderSize + length, nil
}

// resync looks for the next offset ≥ from where a good record starts.
func resync(r io.ReaderAt, from, size int64, buf *[]byte) (int64, bool) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, from, size-from), 64<<10)
	var magic [4]byte
	binary.BigEndian.PutUint32(magic[:], recMagic)
	match := 0
	pos := from
	for {
		c, err := br.ReadByte()
		if err != nil {
			return 0, false
		}
		pos++
		switch {
		case c == magic[match]:
			match++
		case c == magic[0]:
			match = 1
		default:
			match = 0
		}
		if match == 4 {
			start := pos - 4
			if _, _, _, err := readRecord(r, start, size, buf); err == nil {
				return start, true
			}
			match = 0
		}
	}
}

// enc builds a payload.
type enc struct{ b []byte }

func (e *enc) byte(c byte)      { e.b = append(e.b, c) }
func (e *enc) uvarint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) varint(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) str(s string)     { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *enc) bool(v bool)      { e.b = append(e.b, b2i(v)) }
func (e *enc) time(t time.Time) { e.varint(timeToNano(t)) }
func (e *enc) rcptState(s rcpt) {
	e.uvarint(uint64(s.Status))
	e.uvarint(uint64(s.Attempts))
	e.str(s.LastErr)
	e.str(s.DSN)
	e.str(s.Diagnostic)
	e.str(s.RemoteMTA)
}

func b2i(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func timeToNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// dec reads a payload; the first error sticks and later reads return zero
// values.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(msg string) {
	if d.err == nil {
		d.err = errors.New(msg)
	}
}

func (d *dec) version() {
	if len(d.b) == 0 || d.b[0] != recVersion {
		d.fail("unknown record version")
		return
	}
	d.b = d.b[1:]
}

func (d *dec) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a list length, bounded by the bytes left (each element
// takes at least one byte), so a corrupt count cannot allocate much.
func (d *dec) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail("list length exceeds record")
		return 0
	}
	return int(n)
}

func (d *dec) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string exceeds record")
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *dec) bool() bool {
	if d.err != nil {
		return false
	}
	if len(d.b) == 0 {
		d.fail("truncated record")
		return false
	}
	v := d.b[0] != 0
	d.b = d.b[1:]
	return v
}

func (d *dec) time() time.Time {
	v := d.varint()
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, v)
}

func (d *dec) rcptState() rcpt {
	var s rcpt
	st := d.uvarint()
	if st > uint64(Bounced) {
		d.fail("bad recipient status")
	}
	s.Status = RecipientStatus(st)
	at := d.uvarint()
	if at > 1<<30 {
		d.fail("bad attempt count")
	}
	s.Attempts = int(at)
	s.LastErr = d.str()
	s.DSN = d.str()
	s.Diagnostic = d.str()
	s.RemoteMTA = d.str()
	return s
}
