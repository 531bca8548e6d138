package mailstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testUser returns a user whose Maildir is in a temporary directory.
func testUser(t testing.TB, extra string) User {
	t.Helper()
	home := t.TempDir()
	return User{Name: "u@example.org", Home: home, MailLocation: "maildir:~/Maildir" + extra, UID: -1, GID: -1}
}

func openAcct(t testing.TB, s *MaildirStore, u User) Account {
	t.Helper()
	a, err := s.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return a
}

const testMsg = "From: a@example.org\r\nSubject: hello\r\n\r\nbody line\r\n"

func readAll(t testing.TB, mb Mailbox, uid uint32) string {
	t.Helper()
	r, n, err := mb.Open(context.Background(), uid)
	if err != nil {
		t.Fatalf("Open(%d): %v", uid, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != n {
		t.Errorf("Open(%d) size %d, read %d", uid, n, len(b))
	}
	return string(b)
}

func TestDeliverSelectAppend(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{Hostname: "host.example"})
	u := testUser(t, "")
	if err := s.Deliver(ctx, u, "INBOX", nil, strings.NewReader(testMsg)); err != nil {
		t.Fatalf("Deliver: %v", err)
	}
	a := openAcct(t, s, u)
	mb, err := a.Select(ctx, "inbox", false)
	if err != nil {
		t.Fatalf("Select: %v", err)
	}
	defer mb.Close()
	msgs := mb.Messages()
	if len(msgs) != 1 || msgs[0].UID != 1 {
		t.Fatalf("Messages = %+v", msgs)
	}
	if !slices.Contains(msgs[0].Flags, FlagRecent) {
		t.Errorf("first session should see \\Recent: %v", msgs[0].Flags)
	}
	if msgs[0].Size != int64(len(testMsg)) {
		t.Errorf("Size = %d, want %d", msgs[0].Size, len(testMsg))
	}
	if got := readAll(t, mb, 1); got != testMsg {
		t.Errorf("content = %q", got)
	}
	// On disk: LF line ends, Dovecot's name with S= and W=, moved to cur/.
	ents, _ := os.ReadDir(filepath.Join(u.Home, "Maildir", "cur"))
	if len(ents) != 1 {
		t.Fatalf("cur has %d files", len(ents))
	}
	fn := parseFileName(ents[0].Name())
	if fn.Size != int64(len(strings.ReplaceAll(testMsg, "\r\n", "\n"))) || fn.VSize != int64(len(testMsg)) || !fn.HasInfo {
		t.Errorf("file name %q", ents[0].Name())
	}
	if !strings.Contains(fn.Base, ".host.example") || !strings.Contains(fn.Base, ".M") {
		t.Errorf("base %q", fn.Base)
	}

	uv, uid, err := a.Append(ctx, "INBOX", []string{FlagSeen, "$Forwarded"}, time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), strings.NewReader(testMsg))
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if uv != mb.UIDValidity() || uid != 2 {
		t.Errorf("Append = %d %d", uv, uid)
	}
	select {
	case <-mb.Changes():
	default:
		t.Errorf("no change signal after Append")
	}
	up, err := mb.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(up.New) != 1 || up.New[0].UID != 2 || !up.New[0].InternalDate.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("Poll = %+v", up)
	}
	if !slices.Contains(up.New[0].Flags, FlagSeen) || !slices.Contains(up.New[0].Flags, "$Forwarded") {
		t.Errorf("flags %v", up.New[0].Flags)
	}
	if got := mb.(KeywordLister).Keywords(); !slices.Equal(got, []string{"$Forwarded"}) {
		t.Errorf("Keywords = %v", got)
	}
	kw, _ := os.ReadFile(filepath.Join(u.Home, "Maildir", "dovecot-keywords"))
	if string(kw) != "0 $Forwarded\n" {
		t.Errorf("dovecot-keywords = %q", kw)
	}
	ul, _ := os.ReadFile(filepath.Join(u.Home, "Maildir", "dovecot-uidlist"))
	if !strings.HasPrefix(string(ul), fmt.Sprintf("3 V%d N", uv)) || strings.Count(string(ul), "\n") != 3 {
		t.Errorf("dovecot-uidlist = %q", ul)
	}
	st, err := a.Status(ctx, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if st.Messages != 2 || st.Unseen != 1 || st.UIDNext != 3 || st.UIDValidity != uv || st.Recent != 0 {
		t.Errorf("Status = %+v", st)
	}
}

func TestStoreExpungeTwoSessions(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(t, "")
	for i := 0; i < 3; i++ {
		if err := s.Deliver(ctx, u, "", nil, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
	}
	a := openAcct(t, s, u)
	m1, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	m2, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	for _, m := range m2.Messages() {
		if slices.Contains(m.Flags, FlagRecent) {
			t.Errorf("second session got \\Recent")
		}
	}
	hms := m1.HighestModSeq()
	upd, failed, err := m1.Store(ctx, []uint32{2}, FlagsAdd, []string{FlagDeleted, FlagSeen, "Work"}, 0)
	if err != nil || len(failed) != 0 || len(upd) != 1 {
		t.Fatalf("Store = %v %v %v", upd, failed, err)
	}
	if upd[0].ModSeq <= hms {
		t.Errorf("modseq %d not above %d", upd[0].ModSeq, hms)
	}
	// UNCHANGEDSINCE below the message's MODSEQ fails.
	_, failed, err = m1.Store(ctx, []uint32{2}, FlagsRemove, []string{FlagSeen}, hms)
	if err != nil || !slices.Equal(failed, []uint32{2}) {
		t.Errorf("conditional store: failed=%v err=%v", failed, err)
	}
	select {
	case <-m2.Changes():
	default:
		t.Errorf("m2 not signalled")
	}
	up, err := m2.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Changed) != 1 || up.Changed[0].UID != 2 || !slices.Contains(up.Changed[0].Flags, "Work") {
		t.Fatalf("m2 Poll = %+v", up)
	}
	if up, _ := m1.Poll(ctx); len(up.Changed)+len(up.New)+len(up.Expunged) != 0 {
		t.Errorf("m1 sees its own change: %+v", up)
	}
	gone, err := m1.Expunge(ctx, nil)
	if err != nil || !slices.Equal(gone, []uint32{2}) {
		t.Fatalf("Expunge = %v %v", gone, err)
	}
	if len(m1.Messages()) != 2 {
		t.Errorf("m1 has %d", len(m1.Messages()))
	}
	// m2 keeps its snapshot until it polls.
	if len(m2.Messages()) != 3 {
		t.Errorf("m2 snapshot changed before Poll")
	}
	up, _ = m2.Poll(ctx)
	if !slices.Equal(up.Expunged, []uint32{2}) || len(m2.Messages()) != 2 {
		t.Errorf("m2 Poll after expunge = %+v", up)
	}
	if _, _, err := m2.Open(ctx, 2); !errors.Is(err, ErrNoSuchMessage) {
		t.Errorf("Open expunged = %v", err)
	}
	// A new session: UIDNEXT stays 4, UIDs are never reused.
	if err := s.Deliver(ctx, u, "", nil, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	s2 := NewStore(Options{})
	m3, err := openAcct(t, s2, u).Select(ctx, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	defer m3.Close()
	var uids []uint32
	for _, m := range m3.Messages() {
		uids = append(uids, m.UID)
	}
	if !slices.Equal(uids, []uint32{1, 3, 4}) || m3.UIDNext() != 5 {
		t.Errorf("uids %v next %d", uids, m3.UIDNext())
	}
	if _, _, err := m3.Store(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen}, 0); !errors.Is(err, ErrReadOnly) {
		t.Errorf("Store on EXAMINE = %v", err)
	}
}
