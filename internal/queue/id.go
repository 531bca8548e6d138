package queue

import (
	"fmt"
	"strings"
	"sync"
	"time"
)

// safeChars is Postfix's "safe" alphabet (src/util/safe_ultostr.c): the
// ten digits and the consonants in both cases, so that a queue ID never
// spells a word. Its order is its collation order, so IDs sort by time.
const safeChars = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"

// Long queue ID layout, as Postfix's src/global/mail_queue.h defines it
// for enable_long_queue_ids = yes.
const (
	idSecBase  = 52  // MQID_LG_SEC_BASE
	idSecPad   = 6   // MQID_LG_SEC_PAD: seconds, six or more characters
	idUsecBase = 52  // MQID_LG_USEC_BASE
	idUsecPad  = 4   // MQID_LG_USEC_PAD: microseconds, exactly four
	idSep      = 'z' // MQID_LG_INUM_SEP
	idInumBase = 51  // MQID_LG_INUM_BASE: no 'z' in the last part
)

// maxIDLen bounds an ID read from a client or the spool; Postfix's are 15–17.
const maxIDLen = 32

// idGen hands out long queue IDs. Postfix encodes the time the queue file
// was created plus its inode number; postcote has no file per message, so
// the time part is made strictly increasing per spool (a second ID in the
// same microsecond takes the next microsecond) and the inode part is a
// sequence number. The time part alone is therefore unique, also across
// restarts: Open seeds the generator with the newest ID found on disk.
type idGen struct {
	mu       sync.Mutex
	lastUsec int64
	seq      uint64
}

func (g *idGen) next(now time.Time) ID {
	g.mu.Lock()
	usec := now.UnixMicro()
	if usec <= g.lastUsec {
		usec = g.lastUsec + 1
	}
	g.lastUsec = usec
	g.seq++
	seq := g.seq
	g.mu.Unlock()
	return formatID(usec, seq)
}

// observe makes sure later IDs sort after id (used at recovery).
func (g *idGen) observe(id ID) {
	usec, ok := idTime(id)
	if !ok {
		return
	}
	g.mu.Lock()
	if usec > g.lastUsec {
		g.lastUsec = usec
	}
	g.mu.Unlock()
}

func formatID(usec int64, seq uint64) ID {
	var b strings.Builder
	b.WriteString(encodeSafe(uint64(usec/1e6), idSecBase, idSecPad))
	b.WriteString(encodeSafe(uint64(usec%1e6), idUsecBase, idUsecPad))
	b.WriteByte(idSep)
	b.WriteString(encodeSafe(seq, idInumBase, 1))
	return ID(b.String())
}

// encodeSafe writes v in base base with the safe alphabet, most
// significant digit first, left-padded with '0' to at least pad digits
// (Postfix's safe_ultostr).
func encodeSafe(v uint64, base uint64, pad int) string {
	var buf [24]byte
	i := len(buf)
	for v > 0 || i == len(buf) {
		i--
		buf[i] = safeChars[v%base]
		v /= base
	}
	for len(buf)-i < pad {
		i--
		buf[i] = '0'
	}
	return string(buf[i:])
}

func decodeSafe(s string, base uint64) (uint64, bool) {
	if s == "" || len(s) > 12 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(safeChars, s[i])
		if d < 0 || uint64(d) >= base {
			return 0, false
		}
		v = v*base + uint64(d)
	}
	return v, true
}

// idTime returns the microseconds since the epoch encoded in a long ID.
func idTime(id ID) (int64, bool) {
	s := string(id)
	sep := strings.LastIndexByte(s, idSep)
	if sep < idSecPad+idUsecPad {
		return 0, false
	}
	sec, ok1 := decodeSafe(s[:sep-idUsecPad], idSecBase)
	usec, ok2 := decodeSafe(s[sep-idUsecPad:sep], idUsecBase)
	if !ok1 || !ok2 || usec >= 1e6 || sec > 1<<40 {
		return 0, false
	}
	return int64(sec)*1e6 + int64(usec), true
}

// ValidID reports whether s can be a queue ID: 1 to 32 ASCII letters and
// digits (IDs name files under the spool, so nothing else is allowed).
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

func checkID(id ID) error {
	if !ValidID(string(id)) {
		return fmt.Errorf("queue: invalid queue ID %q", string(id))
	}
	return nil
}
