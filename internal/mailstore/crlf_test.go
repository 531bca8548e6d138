package mailstore

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCRLFFileSeek(t *testing.T) {
	stored := "Subject: a\n\nline1\r\nline2\n\nend"
	want := "Subject: a\r\n\r\nline1\r\nline2\r\n\r\nend"
	path := filepath.Join(t.TempDir(), "m")
	os.WriteFile(path, []byte(stored), 0o600)
	vs, err := countVSize(path)
	if err != nil || vs != int64(len(want)) {
		t.Fatalf("countVSize = %d %v, want %d", vs, err, len(want))
	}
	f, _ := openMessage(path)
	c := newCRLFFile(f, vs)
	defer c.Close()
	tests := []struct {
		off    int64
		whence int
		n      int
	}{
		{0, io.SeekStart, 5},
		{10, io.SeekStart, 4},  // "\n" after the CR owed: "a\r\n\r" boundary
		{11, io.SeekStart, 3},  // starts on the owed LF
		{-3, io.SeekEnd, 10},   // short read at the end
		{2, io.SeekStart, 100}, // backwards again
		{-1, io.SeekCurrent, 2},
	}
	pos := int64(0)
	for _, tt := range tests {
		got, err := c.Seek(tt.off, tt.whence)
		if err != nil {
			t.Fatal(err)
		}
		switch tt.whence {
		case io.SeekStart:
			pos = tt.off
		case io.SeekEnd:
			pos = int64(len(want)) + tt.off
		case io.SeekCurrent:
			pos += tt.off
		}
		if got != pos {
			t.Fatalf("Seek(%d,%d) = %d, want %d", tt.off, tt.whence, got, pos)
		}
		buf := make([]byte, tt.n)
		n, _ := io.ReadFull(c, buf)
		end := min(pos+int64(tt.n), int64(len(want)))
		if string(buf[:n]) != want[pos:end] {
			t.Errorf("at %d read %q, want %q", pos, buf[:n], want[pos:end])
		}
		pos += int64(n)
	}
	if _, err := c.Seek(-1, io.SeekStart); err == nil {
		t.Errorf("negative seek accepted")
	}
}

// TestDeleteWhileSelected: a session whose mailbox is deleted sees every
// message expunged, and its operations fail softly.
func TestDeleteWhileSelected(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(t, "")
	a := openAcct(t, s, u)
	if err := s.Deliver(ctx, u, "Box", nil, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	mb, err := a.Select(ctx, "Box", false)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if err := a.Delete(ctx, "Box"); err != nil {
		t.Fatal(err)
	}
	up, err := mb.Poll(ctx)
	if err != nil || !slices.Equal(up.Expunged, []uint32{1}) {
		t.Errorf("Poll = %+v %v", up, err)
	}
	if upd, _, err := mb.Store(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen}, 0); err != nil || len(upd) != 0 {
		t.Errorf("Store = %v %v", upd, err)
	}
	if _, err := a.Status(ctx, "Box"); !errors.Is(err, ErrNoMailbox) {
		t.Errorf("Status = %v", err)
	}
}

// TestRepairsAndForeignFiles: a Maildir missing new/ is repaired; sizes
// come from the uidlist's W/S fields when a name has none; a flag change
// made elsewhere meanwhile does not make STORE fail.
func TestRepairsAndForeignFiles(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(t, "")
	a := openAcct(t, s, u)
	root := filepath.Join(u.Home, "Maildir")
	os.WriteFile(filepath.Join(root, "cur", "1700000000.M1P1.other:2,S"), []byte("Subject: x\n\nbody\n"), 0o600)
	os.WriteFile(filepath.Join(root, uidListName), []byte("3 V42 N5\n4 W77 S16 :1700000000.M1P1.other\n"), 0o600)
	os.Remove(filepath.Join(root, "new"))
	mb, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if _, err := os.Stat(filepath.Join(root, "new")); err != nil {
		t.Errorf("new/ not repaired: %v", err)
	}
	m := mb.Messages()
	if len(m) != 1 || m[0].UID != 4 || m[0].Size != 77 || mb.UIDValidity() != 42 || mb.UIDNext() != 5 {
		t.Fatalf("messages %+v, V%d N%d", m, mb.UIDValidity(), mb.UIDNext())
	}
	// Another program flags it: our cached name is stale.
	os.Rename(filepath.Join(root, "cur", "1700000000.M1P1.other:2,S"), filepath.Join(root, "cur", "1700000000.M1P1.other:2,FS"))
	upd, _, err := mb.Store(ctx, []uint32{4}, FlagsAdd, []string{FlagAnswered}, 0)
	if err != nil || len(upd) != 1 || !slices.Equal(upd[0].Flags, []string{FlagFlagged, FlagAnswered, FlagSeen}) {
		t.Fatalf("Store = %+v %v", upd, err)
	}
	if _, err := os.Stat(filepath.Join(root, "cur", "1700000000.M1P1.other:2,FRS")); err != nil {
		t.Errorf("file not renamed: %v", err)
	}
}
