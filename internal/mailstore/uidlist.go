package mailstore

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// uidListName is Dovecot's UID map, kept in the mailbox's control dir.
const uidListName = "dovecot-uidlist"

// uidList is a parsed dovecot-uidlist
// (https://doc.dovecot.org/2.3/admin_manual/mailbox_formats/maildir/):
//
//	3 V<uidvalidity> N<nextuid> G<guid>
//	<uid> [<key><value> ...] :<filename>
//
// Version 1 (Courier's courierimapuiddb) is "1 <uidvalidity> <nextuid>"
// with "<uid> <filename>" lines; postcote reads it and writes version 3.
type uidList struct {
	UIDValidity uint32
	NextUID     uint32 // the header's N, raised above the highest record
	GUID        string // 32 hex digits
	ExtraHdr    []string
	Recs        []uidRec // ascending UIDs
}

type uidRec struct {
	UID  uint32
	Ext  []string // extension fields such as "W1234", "S1200", kept as read
	Name string   // file name; Dovecot and postcote write the base (no ":2,")
}

// parseUIDList parses a whole dovecot-uidlist. A last line without its
// newline is a write cut short and is ignored.
func parseUIDList(data []byte) (*uidList, error) {
	ul := &uidList{}
	if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
		data = data[:i+1]
	} else {
		return nil, fmt.Errorf("dovecot-uidlist: no complete header line")
	}
	nl := bytes.IndexByte(data, '\n')
	version, err := ul.parseHeader(string(data[:nl]))
	if err != nil {
		return nil, err
	}
	if err := ul.parseRecords(data[nl+1:], version, 1); err != nil {
		return nil, err
	}
	return ul, nil
}

func (ul *uidList) parseHeader(line string) (int, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return 0, fmt.Errorf("dovecot-uidlist: empty header")
	}
	switch fields[0] {
	case "1":
		if len(fields) != 3 {
			return 0, fmt.Errorf("dovecot-uidlist: bad version 1 header %q", line)
		}
		v, err1 := strconv.ParseUint(fields[1], 10, 32)
		n, err2 := strconv.ParseUint(fields[2], 10, 32)
		if err1 != nil || err2 != nil {
			return 0, fmt.Errorf("dovecot-uidlist: bad version 1 header %q", line)
		}
		if v == 0 {
			return 0, fmt.Errorf("dovecot-uidlist: UIDVALIDITY 0")
		}
		ul.UIDValidity, ul.NextUID = uint32(v), uint32(n)
		return 1, nil
	case "3":
		for _, f := range fields[1:] {
			val := f[1:]
			switch f[0] {
			case 'V':
				v, err := strconv.ParseUint(val, 10, 32)
				if err != nil {
					return 0, fmt.Errorf("dovecot-uidlist: bad UIDVALIDITY %q", f)
				}
				ul.UIDValidity = uint32(v)
			case 'N':
				v, err := strconv.ParseUint(val, 10, 32)
				if err != nil {
					return 0, fmt.Errorf("dovecot-uidlist: bad next UID %q", f)
				}
				ul.NextUID = uint32(v)
			case 'G':
				ul.GUID = val
			default:
				ul.ExtraHdr = append(ul.ExtraHdr, f)
			}
		}
		if ul.UIDValidity == 0 {
			return 0, fmt.Errorf("dovecot-uidlist: header without UIDVALIDITY")
		}
		return 3, nil
	default:
		return 0, fmt.Errorf("dovecot-uidlist: unsupported version %q", fields[0])
	}
}

// parseRecords appends the record lines in data. prevUID is the UID the
// first record must exceed.
func (ul *uidList) parseRecords(data []byte, version int, minUID uint32) error {
	if len(ul.Recs) > 0 {
		minUID = ul.Recs[len(ul.Recs)-1].UID + 1
	}
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			break // cut short: ignore
		}
		line := string(data[:nl])
		data = data[nl+1:]
		if line == "" {
			continue
		}
		sp := strings.IndexByte(line, ' ')
		if sp <= 0 {
			return fmt.Errorf("dovecot-uidlist: bad record %q", line)
		}
		uid64, err := strconv.ParseUint(line[:sp], 10, 32)
		if err != nil || uid64 == 0 || uid64 == 0xffffffff {
			return fmt.Errorf("dovecot-uidlist: bad UID in %q", line)
		}
		uid := uint32(uid64)
		if uid < minUID {
			return fmt.Errorf("dovecot-uidlist: UIDs not ascending at %q", line)
		}
		rest := strings.TrimLeft(line[sp+1:], " ")
		rec := uidRec{UID: uid}
		if version == 3 {
			for !strings.HasPrefix(rest, ":") {
				if rest == "" {
					return fmt.Errorf("dovecot-uidlist: record without file name %q", line)
				}
				f, r, _ := strings.Cut(rest, " ")
				rec.Ext = append(rec.Ext, f)
				rest = strings.TrimLeft(r, " ")
			}
			rest = rest[1:]
		}
		if rest == "" || strings.ContainsAny(rest, "/\x00") {
			return fmt.Errorf("dovecot-uidlist: bad file name in %q", line)
		}
		rec.Name = rest
		ul.Recs = append(ul.Recs, rec)
		minUID = uid + 1
		if ul.NextUID <= uid {
			ul.NextUID = uid + 1
		}
	}
	return nil
}

// nextUID is the UID the next new message gets.
func (ul *uidList) nextUID() uint32 {
	n := ul.NextUID
	if len(ul.Recs) > 0 && ul.Recs[len(ul.Recs)-1].UID >= n {
		n = ul.Recs[len(ul.Recs)-1].UID + 1
	}
	if n == 0 {
		n = 1
	}
	return n
}

// marshal writes the list as version 3.
func (ul *uidList) marshal() []byte {
	var b bytes.Buffer
	b.Grow(64 + len(ul.Recs)*64)
	fmt.Fprintf(&b, "3 V%d N%d", ul.UIDValidity, ul.nextUID())
	if ul.GUID != "" {
		b.WriteString(" G" + ul.GUID)
	}
	for _, e := range ul.ExtraHdr {
		b.WriteString(" " + e)
	}
	b.WriteByte('\n')
	for _, r := range ul.Recs {
		appendRecord(&b, r)
	}
	return b.Bytes()
}

func appendRecord(b *bytes.Buffer, r uidRec) {
	b.WriteString(strconv.FormatUint(uint64(r.UID), 10))
	for _, e := range r.Ext {
		b.WriteByte(' ')
		b.WriteString(e)
	}
	b.WriteString(" :")
	b.WriteString(r.Name)
	b.WriteByte('\n')
}

// newGUID returns a random 128-bit mailbox GUID in hex, as Dovecot writes
// in the G field.
func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
