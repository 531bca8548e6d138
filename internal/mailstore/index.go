package mailstore

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// indexName is postcote's own per-mailbox cache, kept beside
// dovecot-uidlist (or under INDEX=):
//
//	postcote-index 1 V<uidvalidity> H<highestmodseq> C<clean: 0 or 1>
//	<uid> <modseq> <internaldate-unix-nanos> <vsize> <letters or "-">
//
// It is a cache in Dovecot's sense: delete it and nothing is lost. UIDs
// come from dovecot-uidlist and flags from the file names. What only the
// index knows is each message's MODSEQ; when it is missing, or a message's
// flags on disk differ from what it recorded (another program changed
// them, or this process died before writing it), the message gets a new
// MODSEQ of max(HIGHESTMODSEQ+1, the current time in microseconds). The
// time floor keeps MODSEQs rising across a lost index: a CONDSTORE client
// that remembered HIGHESTMODSEQ X asks CHANGEDSINCE X and gets every
// message whose state it cannot know (RFC 7162 3.1.1: mod-sequences only
// grow), as long as fewer than a million changes per second were made
// since the old base, which no mailbox sees.
//
// The C field closes the last gap, a flag changed and changed back
// before a crash: C1 is written when the last user of the mailbox lets
// go, and before this process hands out its first new MODSEQ it rewrites
// the index with C0. An index found with C0 was left by a process that
// died while it could have shown MODSEQs the index does not know, so
// HIGHESTMODSEQ then restarts from the time floor as well.
const indexName = "postcote-index"

// indexWriteInterval bounds how often a busy mailbox rewrites its index.
const indexWriteInterval = 5 * time.Second

type indexEntry struct {
	modseq  uint64
	date    int64
	vsize   int64
	letters string
}

type indexFile struct {
	uidValidity uint32
	highest     uint64
	clean       bool
	entries     map[uint32]indexEntry
}

// parseIndex reads a postcote-index; any damage makes it unusable (it is
// a cache, rebuilt from the Maildir).
func parseIndex(data []byte) (*indexFile, error) {
	lines := bytes.Split(data, []byte("\n"))
	if len(lines) < 2 || len(lines[len(lines)-1]) != 0 {
		return nil, fmt.Errorf("postcote-index: truncated")
	}
	hdr := strings.Fields(string(lines[0]))
	if (len(hdr) != 4 && len(hdr) != 5) || hdr[0] != "postcote-index" || hdr[1] != "1" || !strings.HasPrefix(hdr[2], "V") || !strings.HasPrefix(hdr[3], "H") {
		return nil, fmt.Errorf("postcote-index: bad header")
	}
	v, err1 := strconv.ParseUint(hdr[2][1:], 10, 32)
	h, err2 := strconv.ParseUint(hdr[3][1:], 10, 63)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("postcote-index: bad header")
	}
	ix := &indexFile{uidValidity: uint32(v), highest: h, entries: make(map[uint32]indexEntry, len(lines))}
	if len(hdr) == 5 {
		switch hdr[4] {
		case "C1":
			ix.clean = true
		case "C0":
		default:
			return nil, fmt.Errorf("postcote-index: bad header")
		}
	}
	for _, l := range lines[1 : len(lines)-1] {
		f := strings.Fields(string(l))
		if len(f) != 5 {
			return nil, fmt.Errorf("postcote-index: bad line %q", l)
		}
		uid, e1 := strconv.ParseUint(f[0], 10, 32)
		ms, e2 := strconv.ParseUint(f[1], 10, 63)
		date, e3 := strconv.ParseInt(f[2], 10, 64)
		vs, e4 := strconv.ParseInt(f[3], 10, 64)
		if e1 != nil || e2 != nil || e3 != nil || e4 != nil || uid == 0 || ms > h {
			return nil, fmt.Errorf("postcote-index: bad line %q", l)
		}
		letters := f[4]
		if letters == "-" {
			letters = ""
		}
		ix.entries[uint32(uid)] = indexEntry{modseq: ms, date: date, vsize: vs, letters: letters}
	}
	return ix, nil
}

// marshalIndex writes the state of mb. mb.mu is held.
func (mb *mbox) marshalIndex(clean bool) []byte {
	var b bytes.Buffer
	b.Grow(64 + 48*len(mb.msgs))
	c := 0
	if clean {
		c = 1
	}
	fmt.Fprintf(&b, "postcote-index 1 V%d H%d C%d\n", mb.uidValidity, mb.highestModSeq, c)
	for _, m := range mb.msgs {
		l := m.letters
		if l == "" {
			l = "-"
		}
		fmt.Fprintf(&b, "%d %d %d %d %s\n", m.uid, m.modseq, m.date, m.vsize, l)
	}
	return b.Bytes()
}

// loadIndex reads the index file of mb, or returns nil.
func (mb *mbox) loadIndex() *indexFile {
	if mb.paths.Index == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(mb.paths.Index, indexName))
	if err != nil {
		return nil
	}
	ix, err := parseIndex(data)
	if err != nil {
		return nil
	}
	return ix
}

// writeIndex saves the cache when it changed, at most every
// indexWriteInterval unless forced. clean says no MODSEQ beyond what it
// records can have been shown (see C above). It is written atomically
// (temporary file and rename) but not fsynced: losing it costs only
// MODSEQ precision. mb.mu is held.
func (mb *mbox) writeIndex(force, clean bool) {
	if mb.paths.Index == "" || !mb.exists || (!mb.indexDirty && mb.indexClean == clean) {
		return
	}
	if !force && time.Since(mb.indexWritten) < indexWriteInterval {
		return
	}
	if err := mb.own.mkdirAll(mb.paths.Index); err != nil {
		return
	}
	path := filepath.Join(mb.paths.Index, indexName)
	tmp := fmt.Sprintf("%s.tmp.%d", path, mb.s.pid)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	_, werr := f.Write(mb.marshalIndex(clean))
	cerr := f.Close()
	if werr != nil || cerr != nil || mb.own.chown(tmp) != nil || os.Rename(tmp, path) != nil {
		os.Remove(tmp)
		return
	}
	mb.indexDirty = false
	mb.indexClean = clean
	mb.indexWritten = time.Now()
}

// bumpModSeq returns a new MODSEQ for a change made now, first marking
// the index on disk unclean if it said clean. mb.mu is held.
func (mb *mbox) bumpModSeq() uint64 {
	if mb.indexClean {
		mb.writeIndex(true, false)
		mb.indexClean = false
	}
	mb.highestModSeq++
	return mb.highestModSeq
}

// modseqFloor is the MODSEQ a change found on disk gets when the index
// cannot vouch for it.
func modseqFloor(highest uint64) uint64 {
	t := uint64(time.Now().UnixMicro())
	if t > highest {
		return t
	}
	return highest + 1
}
