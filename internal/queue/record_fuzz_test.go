package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"postcote/internal/maillog"
)

// sampleSegment is a valid segment with one record of each type.
func sampleSegment() []byte {
	env := &Envelope{Sender: "a@example.org", Arrival: time.Unix(1764064800, 0), Protocol: "ESMTP",
		Recipients: []Recipient{{Address: "b@example.net", DSNNotify: "FAILURE", DSNORcpt: "rfc822;b@example.net"}, {Address: "c@example.net"}}}
	id := ID("4jZFXc0000z1")
	m, _ := encodeMessage(id, env, flagWarned, time.Unix(1764065100, 0), 11, []byte("hello world"))
	var seg []byte
	seg = append(seg, m...)
	seg = append(seg, encodeUpdate(id, true, time.Unix(1764065400, 0), []rcptUpdate{{1, rcpt{Status: Delivered, Attempts: 1, DSN: "2.0.0", LastErr: "250 ok"}}})...)
	seg = append(seg, encodeSimple(recHold, id)...)
	seg = append(seg, encodeSimple(recRelease, id)...)
	seg = append(seg, encodeSimple(recRemove, id)...)
	return seg
}

// FuzzSegment feeds arbitrary bytes to the segment scanner and record
// decoder: they must neither panic nor loop.
func FuzzSegment(f *testing.F) {
	good := sampleSegment()
	f.Add(good)
	f.Add(good[:len(good)-5])
	bad := bytes.Clone(good)
	bad[20] ^= 1
	f.Add(bad)
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte("PCQ1"), 10))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := scanSegment(bytes.NewReader(data), int64(len(data)), func(off int64, typ byte, payload []byte) error {
			r, err := decodeRecord(typ, payload)
			if err == nil && r.typ == recMessage && r.flags&flagLarge == 0 {
				if r.contentOff+r.size > int64(len(data))-off+recHeaderSize+int64(len(payload)) {
					t.Fatalf("content outside record")
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		if res.end < 0 || res.end > int64(len(data)) {
			t.Fatalf("end %d outside 0..%d", res.end, len(data))
		}
	})
}

// FuzzOpenSegment writes arbitrary bytes as a spool's only segment and
// opens it: recovery must not panic, and the spool must stay usable.
func FuzzOpenSegment(f *testing.F) {
	f.Add(sampleSegment())
	f.Add(sampleSegment()[:40])
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "spool"), 0o700)
		os.WriteFile(filepath.Join(dir, "spool", "000000000001.seg"), data, 0o600)
		q, err := Open(dir, Options{Logger: maillog.Discard(), Hostname: "h", SegmentSize: 64 << 10})
		if err != nil {
			return // a clear error is fine; a panic is not
		}
		q.List()
		q.Close()
	})
}

// FuzzFindMessageID scans arbitrary headers for Message-ID.
func FuzzFindMessageID(f *testing.F) {
	f.Add([]byte("Message-ID: <a@b>\r\n\r\nbody"))
	f.Add([]byte("Subject: x\n message-id:\n\t<folded@x>\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := findMessageID(data)
		for i := 0; i < len(s); i++ {
			if s[i] < 0x20 {
				t.Fatalf("control character in %q", s)
			}
		}
	})
}
