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
	"sync"
	"testing"
	"time"
)

func uidsOf(msgs []MessageInfo) []uint32 {
	var out []uint32
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

func names(t *testing.T, a Account) []string {
	t.Helper()
	list, err := a.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range list {
		s := l.Name
		for _, at := range l.Attributes {
			if at == `\Noselect` || at == `\NonExistent` || strings.HasPrefix(at, `\`) && at != `\HasChildren` && at != `\HasNoChildren` {
				s += " " + at
			}
		}
		if l.Subscribed {
			s += " +sub"
		}
		out = append(out, s)
	}
	return out
}

// TestMailboxOps runs the account operations on every layout.
func TestMailboxOps(t *testing.T) {
	layouts := []struct {
		name, extra string
		folder      func(home, name string) string // where a folder's Maildir is
	}{
		{"maildir++", "", func(h, n string) string { return filepath.Join(h, "Maildir", "."+strings.ReplaceAll(n, "/", ".")) }},
		{"fs", ":LAYOUT=fs", func(h, n string) string { return filepath.Join(h, "Maildir", n) }},
		{"fs-dirname", ":LAYOUT=fs:DIRNAME=mAildir", func(h, n string) string { return filepath.Join(h, "Maildir", n, "mAildir") }},
		{"control-index", ":CONTROL=~/control:INDEX=~/index", func(h, n string) string { return filepath.Join(h, "Maildir", "."+strings.ReplaceAll(n, "/", ".")) }},
		{"memory-index", ":INDEX=MEMORY", func(h, n string) string { return filepath.Join(h, "Maildir", "."+strings.ReplaceAll(n, "/", ".")) }},
	}
	for _, lay := range layouts {
		t.Run(lay.name, func(t *testing.T) {
			ctx := context.Background()
			s := NewStore(Options{})
			u := testUser(t, lay.extra)
			a := openAcct(t, s, u)
			if err := a.Create(ctx, "Archive/2024", ""); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(lay.folder(u.Home, "Archive/2024"), "cur")); err != nil {
				t.Fatalf("folder not where Dovecot puts it: %v", err)
			}
			if err := a.Create(ctx, "Sent/", `\sent`); err != nil {
				t.Fatal(err)
			}
			if err := a.Create(ctx, "Sent", ""); !errors.Is(err, ErrMailboxExists) {
				t.Errorf("second Create = %v", err)
			}
			if err := a.Create(ctx, "INBOX", ""); !errors.Is(err, ErrMailboxExists) {
				t.Errorf("Create INBOX = %v", err)
			}
			if err := a.Create(ctx, "../escape", ""); !errors.Is(err, ErrBadName) {
				t.Errorf("Create ../escape = %v", err)
			}
			if err := a.Subscribe(ctx, "Sent"); err != nil {
				t.Fatal(err)
			}
			if err := a.Subscribe(ctx, "Gone"); err != nil {
				t.Fatal(err)
			}
			want := []string{"INBOX", "Archive \\Noselect", "Archive/2024", "Sent \\Sent +sub", "Gone \\NonExistent +sub"}
			if got := names(t, a); !slices.Equal(got, want) {
				t.Errorf("List = %q, want %q", got, want)
			}
			if err := a.Unsubscribe(ctx, "Gone"); err != nil {
				t.Fatal(err)
			}
			if err := a.Delete(ctx, "Archive"); !errors.Is(err, ErrHasChildren) {
				t.Errorf("Delete \\Noselect parent = %v", err)
			}
			if err := a.Delete(ctx, "Nope"); !errors.Is(err, ErrNoMailbox) {
				t.Errorf("Delete missing = %v", err)
			}
			if err := a.Delete(ctx, "inbox"); !errors.Is(err, ErrInbox) {
				t.Errorf("Delete INBOX = %v", err)
			}

			// Messages, then copy/move between folders.
			for i := 0; i < 3; i++ {
				if err := s.Deliver(ctx, u, "INBOX", nil, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\n%d\r\n", i, i))); err != nil {
					t.Fatal(err)
				}
			}
			in, err := a.Select(ctx, "INBOX", false)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			if _, _, err := in.Store(ctx, []uint32{1}, FlagsReplace, []string{FlagSeen, "Project"}, 0); err != nil {
				t.Fatal(err)
			}
			uv, src, dst, err := in.Copy(ctx, []uint32{1, 2, 99}, "Archive/2024")
			if err != nil {
				t.Fatal(err)
			}
			st, _ := a.Status(ctx, "Archive/2024")
			if !slices.Equal(src, []uint32{1, 2}) || !slices.Equal(dst, []uint32{1, 2}) || uv != st.UIDValidity || st.Messages != 2 || st.Unseen != 1 {
				t.Errorf("Copy = %d %v %v, status %+v", uv, src, dst, st)
			}
			_, src, dst, err = in.Move(ctx, []uint32{3}, "Sent")
			if err != nil || !slices.Equal(src, []uint32{3}) || !slices.Equal(dst, []uint32{1}) {
				t.Fatalf("Move = %v %v %v", src, dst, err)
			}
			if got := uidsOf(in.Messages()); !slices.Equal(got, []uint32{1, 2}) {
				t.Errorf("INBOX after move = %v", got)
			}
			if _, _, _, err := in.Copy(ctx, []uint32{1}, "Nope"); !errors.Is(err, ErrNoMailbox) {
				t.Errorf("Copy to missing = %v", err)
			}
			arch, err := a.Select(ctx, "Archive/2024", true)
			if err != nil {
				t.Fatal(err)
			}
			m := arch.Messages()
			if len(m) != 2 || !slices.Contains(m[0].Flags, "Project") || !slices.Contains(m[0].Flags, FlagSeen) || readAll(t, arch, 2) != "Subject: 1\r\n\r\n1\r\n" {
				t.Errorf("copied messages %+v", m)
			}
			if !m[0].InternalDate.Equal(in.Messages()[0].InternalDate) {
				t.Errorf("copy lost the internal date")
			}
			arch.Close()

			// Rename with children, then delete.
			if err := a.Rename(ctx, "Archive", "Old"); err != nil {
				t.Fatal(err)
			}
			if err := a.Rename(ctx, "Sent", "Old/2024"); !errors.Is(err, ErrMailboxExists) {
				t.Errorf("Rename onto existing = %v", err)
			}
			if err := a.Rename(ctx, "Old", "Old/x"); !errors.Is(err, ErrBadName) {
				t.Errorf("Rename under itself = %v", err)
			}
			if err := a.Rename(ctx, "Sent", "Outbox"); err != nil {
				t.Fatal(err)
			}
			st, err = a.Status(ctx, "Old/2024")
			if err != nil || st.Messages != 2 {
				t.Errorf("Status after rename = %+v %v", st, err)
			}
			// Like Dovecot, RENAME leaves the subscriptions alone.
			want = []string{"INBOX", "Old \\Noselect", "Old/2024", "Outbox \\Sent", "Sent \\NonExistent +sub"}
			if got := names(t, a); !slices.Equal(got, want) {
				t.Errorf("List after rename = %q, want %q", got, want)
			}
			if err := a.Delete(ctx, "Old/2024"); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Status(ctx, "Old/2024"); !errors.Is(err, ErrNoMailbox) {
				t.Errorf("Status after delete = %v", err)
			}
			// Renaming INBOX moves its messages and leaves it empty.
			if err := a.Rename(ctx, "INBOX", "Saved"); err != nil {
				t.Fatal(err)
			}
			if st, _ := a.Status(ctx, "Saved"); st.Messages != 2 {
				t.Errorf("Saved has %d", st.Messages)
			}
			up, err := in.Poll(ctx)
			if err != nil || !slices.Equal(up.Expunged, []uint32{1, 2}) {
				t.Errorf("INBOX session after rename: %+v %v", up, err)
			}
			if st, _ := a.Status(ctx, "INBOX"); st.Messages != 0 || st.UIDNext != 4 {
				t.Errorf("INBOX after rename: %+v", st)
			}
		})
	}
}

// TestConcurrentDeliveries: many deliveries and sessions at once lose
// nothing and never share a UID.
func TestConcurrentDeliveries(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(t, "")
	a := openAcct(t, s, u)
	const writers, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+10)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				var err error
				if i%3 == 0 {
					_, _, err = a.Append(ctx, "INBOX", []string{FlagSeen, fmt.Sprintf("kw%d", w)}, time.Time{}, strings.NewReader(testMsg))
				} else {
					err = s.Deliver(ctx, u, "INBOX", nil, strings.NewReader(testMsg))
				}
				if err != nil {
					errs <- err
				}
			}
		}(w)
	}
	if err := a.Create(ctx, "Archive", ""); err != nil {
		t.Fatal(err)
	}
	// A session moves messages away meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		mb, err := a.Select(ctx, "INBOX", false)
		if err != nil {
			errs <- err
			return
		}
		defer mb.Close()
		for i := 0; i < 15; i++ {
			if _, err := mb.Poll(ctx); err != nil {
				errs <- err
				return
			}
			if msgs := mb.Messages(); len(msgs) > 0 {
				if _, _, _, err := mb.Move(ctx, []uint32{msgs[0].UID}, "Archive"); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	// Sessions poll and flag meanwhile.
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func(r int) {
			defer wg.Done()
			mb, err := a.Select(ctx, "INBOX", false)
			if err != nil {
				errs <- err
				return
			}
			defer mb.Close()
			for i := 0; i < 20; i++ {
				if _, err := mb.Poll(ctx); err != nil {
					errs <- err
					return
				}
				msgs := mb.Messages()
				if len(msgs) > 0 {
					if _, _, err := mb.Store(ctx, []uint32{msgs[len(msgs)-1].UID}, FlagsAdd, []string{FlagFlagged}, 0); err != nil {
						errs <- err
						return
					}
				}
			}
		}(r)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	a2 := openAcct(t, NewStore(Options{}), u)
	mb, err := a2.Select(ctx, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	arch, err := a2.Select(ctx, "Archive", true)
	if err != nil {
		t.Fatal(err)
	}
	defer arch.Close()
	// Every UID given out is in INBOX or was moved to Archive; none twice.
	got := uidsOf(mb.Messages())
	if len(got)+len(arch.Messages()) != writers*each {
		t.Errorf("INBOX %d + Archive %d messages, want %d", len(got), len(arch.Messages()), writers*each)
	}
	if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) || (len(got) > 0 && got[len(got)-1] > writers*each) {
		t.Errorf("INBOX UIDs = %v", got)
	}
	if au := uidsOf(arch.Messages()); len(au) > 0 && (au[0] != 1 || au[len(au)-1] != uint32(len(au))) {
		t.Errorf("Archive UIDs = %v", au)
	}
}

// TestCrashSafety: a delivery that fails before the rename leaves nothing
// in new/ or cur/; stale tmp files go after 36 hours.
func TestCrashSafety(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(t, "")
	a := openAcct(t, s, u)
	root := filepath.Join(u.Home, "Maildir")
	// A reader failing half-way: the delivery fails and leaves no trace.
	err := s.Deliver(ctx, u, "INBOX", nil, io.MultiReader(strings.NewReader("Subject: half\r\n"), errReader{}))
	if err == nil {
		t.Fatal("Deliver with a failing reader succeeded")
	}
	for _, sub := range []string{"tmp", "new", "cur"} {
		if ents, _ := os.ReadDir(filepath.Join(root, sub)); len(ents) != 0 {
			t.Errorf("%s/ holds %d files", sub, len(ents))
		}
	}
	// What a killed process leaves: a file in tmp/. It is no message; an
	// old one is removed, a fresh one kept.
	old := filepath.Join(root, "tmp", "1.M1P1Q1.host")
	fresh := filepath.Join(root, "tmp", "2.M1P1Q1.host")
	os.WriteFile(old, []byte("Subject: partial"), 0o600)
	os.WriteFile(fresh, []byte("Subject: partial"), 0o600)
	past := time.Now().Add(-37 * time.Hour)
	os.Chtimes(old, past, past)
	mb, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if len(mb.Messages()) != 0 {
		t.Errorf("tmp file became a message")
	}
	if _, err := os.Stat(old); !os.IsNotExist(err) {
		t.Errorf("stale tmp file kept: %v", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh tmp file removed: %v", err)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection lost") }

// TestExternalChanges: files moved in or out by another program, and a
// lost index, are picked up by Poll.
func TestExternalChanges(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(t, "")
	a := openAcct(t, s, u)
	root := filepath.Join(u.Home, "Maildir")
	for i := 0; i < 2; i++ {
		if err := s.Deliver(ctx, u, "", nil, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
	}
	mb, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	hms := mb.HighestModSeq()
	// An admin drops a file into new/ (no sizes in its name), changes
	// the flags of message 1 and deletes message 2.
	os.WriteFile(filepath.Join(root, "new", "1700000000.admin.host"), []byte("Subject: x\n\nbody\n"), 0o600)
	cur, _ := os.ReadDir(filepath.Join(root, "cur"))
	var n1 string
	for _, e := range cur {
		fn := parseFileName(e.Name())
		if mb.(*view).mb.byBase[fn.Base].uid == 1 {
			n1 = e.Name()
			os.Rename(filepath.Join(root, "cur", e.Name()), filepath.Join(root, "cur", curName(fn.Base, "FS")))
		} else {
			os.Remove(filepath.Join(root, "cur", e.Name()))
		}
	}
	if n1 == "" {
		t.Fatal("message 1 not found")
	}
	up, err := mb.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(up.Expunged, []uint32{2}) || len(up.New) != 1 || up.New[0].UID != 3 || up.New[0].Size != int64(len("Subject: x\r\n\r\nbody\r\n")) {
		t.Errorf("Poll = %+v", up)
	}
	if len(up.Changed) != 1 || !slices.Equal(up.Changed[0].Flags, []string{FlagFlagged, FlagSeen, FlagRecent}) || up.Changed[0].ModSeq <= hms {
		t.Errorf("Changed = %+v", up.Changed)
	}
	if got := readAll(t, mb, 3); got != "Subject: x\r\n\r\nbody\r\n" {
		t.Errorf("content %q", got)
	}
	// Poll with nothing changed reports nothing.
	if up, _ := mb.Poll(ctx); len(up.New)+len(up.Changed)+len(up.Expunged) != 0 {
		t.Errorf("idle Poll = %+v", up)
	}
	highest := mb.HighestModSeq()
	mb.Close()

	// The index is a cache: delete it and UIDs and flags survive, and
	// MODSEQs start above any shown before.
	os.Remove(filepath.Join(root, indexName))
	mb2, err := openAcct(t, NewStore(Options{}), u).Select(ctx, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	defer mb2.Close()
	m := mb2.Messages()
	if !slices.Equal(uidsOf(m), []uint32{1, 3}) || !slices.Equal(m[0].Flags, []string{FlagFlagged, FlagSeen}) {
		t.Errorf("after index loss: %+v", m)
	}
	if mb2.HighestModSeq() <= highest || m[0].ModSeq <= highest {
		t.Errorf("MODSEQ went down: %d <= %d", mb2.HighestModSeq(), highest)
	}
}

// TestIndexSurvivesRestart: MODSEQs stay when the index is there.
func TestIndexSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	u := testUser(t, "")
	s := NewStore(Options{})
	if err := s.Deliver(ctx, u, "", nil, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	a := openAcct(t, s, u)
	mb, _ := a.Select(ctx, "INBOX", false)
	mb.Store(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen}, 0)
	want := mb.Messages()[0].ModSeq
	hms := mb.HighestModSeq()
	mb.Close()
	mb, err := openAcct(t, NewStore(Options{}), u).Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if got := mb.Messages()[0].ModSeq; got != want || mb.HighestModSeq() < hms {
		t.Errorf("modseq %d (want %d), highest %d (was %d)", got, want, mb.HighestModSeq(), hms)
	}
}

func TestEnsureMailboxes(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	a := openAcct(t, s, testUser(t, ""))
	boxes := []AutoMailbox{
		{Name: "Drafts", SpecialUse: `\Drafts`, Auto: "subscribe"},
		{Name: "Junk", SpecialUse: `\Junk`, Auto: "create"},
		{Name: "Trash", SpecialUse: `\Trash`, Auto: "no"},
	}
	for i := 0; i < 2; i++ { // twice: idempotent
		if err := EnsureMailboxes(ctx, a, boxes); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"INBOX", "Drafts \\Drafts +sub", "Junk \\Junk"}
	if got := names(t, a); !slices.Equal(got, want) {
		t.Errorf("List = %q, want %q", got, want)
	}
	if err := EnsureMailboxes(ctx, a, []AutoMailbox{{Name: "X", Auto: "always"}}); err == nil {
		t.Errorf("bad auto accepted")
	}
}

// TestOwnership: run as root with a user's uid/gid, everything the store
// makes belongs to the user, folders 0700 and files 0600.
func TestOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	ctx := context.Background()
	u := testUser(t, "")
	u.UID, u.GID = 12345, 12346
	s := NewStore(Options{})
	if err := s.Deliver(ctx, u, "Lists/Go", []string{"$Important"}, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	a := openAcct(t, s, u)
	if err := a.Subscribe(ctx, "Lists/Go"); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(filepath.Join(u.Home, "Maildir"), func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st := statOwner(info)
		if st[0] != 12345 || st[1] != 12346 {
			t.Errorf("%s owned by %v", p, st)
		}
		if info.IsDir() && info.Mode().Perm() != 0o700 {
			t.Errorf("%s mode %v", p, info.Mode().Perm())
		}
		if !info.IsDir() && info.Mode().Perm()&0o077 != 0 && !strings.HasPrefix(info.Name(), "dovecot-uidvalidity.") {
			t.Errorf("%s mode %v", p, info.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestIndexAfterCrash: a process that dies after showing MODSEQs its
// index does not record (a flag set and cleared again) leaves a C0
// index; the next one starts HIGHESTMODSEQ above what was shown.
func TestIndexAfterCrash(t *testing.T) {
	ctx := context.Background()
	u := testUser(t, "")
	s := NewStore(Options{})
	if err := s.Deliver(ctx, u, "", nil, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	mb, _ := openAcct(t, s, u).Select(ctx, "INBOX", false)
	mb.Close() // clean: C1
	idx := filepath.Join(u.Home, "Maildir", indexName)
	if b, _ := os.ReadFile(idx); !strings.Contains(string(b), " C1\n") {
		t.Fatalf("index after close: %q", b)
	}
	crashed, _ := openAcct(t, NewStore(Options{}), u).Select(ctx, "INBOX", false)
	defer crashed.Close()
	crashed.Store(ctx, []uint32{1}, FlagsAdd, []string{FlagSeen}, 0)
	up, _, _ := crashed.Store(ctx, []uint32{1}, FlagsRemove, []string{FlagSeen}, 0)
	shown := up[0].ModSeq
	if b, _ := os.ReadFile(idx); !strings.Contains(string(b), " C0\n") {
		t.Fatalf("index while changing: %q", b)
	}
	// The process "dies" here: a new one reads the C0 index.
	after, err := openAcct(t, NewStore(Options{}), u).Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	if after.HighestModSeq() <= shown {
		t.Errorf("HIGHESTMODSEQ %d not above %d shown before the crash", after.HighestModSeq(), shown)
	}
	up, _, _ = after.Store(ctx, []uint32{1}, FlagsAdd, []string{FlagFlagged}, 0)
	if up[0].ModSeq <= shown {
		t.Errorf("new MODSEQ %d not above %d", up[0].ModSeq, shown)
	}
}

// TestSymlinksRefused: links a user with a shell puts into the Maildir
// never make the server read other files or folders.
func TestSymlinksRefused(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(t, "")
	a := openAcct(t, s, u)
	root := filepath.Join(u.Home, "Maildir")
	secret := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secret, []byte("Subject: secret\n\nshadow\n"), 0o600)
	if err := os.Symlink(secret, filepath.Join(root, "cur", "1700000000.M1P1.evil,S=24:2,S")); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	for _, sub := range []string{"cur", "new", "tmp"} {
		os.Mkdir(filepath.Join(other, sub), 0o700)
	}
	if err := os.Symlink(other, filepath.Join(root, ".Evil")); err != nil {
		t.Fatal(err)
	}
	mb, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if n := len(mb.Messages()); n != 0 {
		t.Errorf("symlinked message listed (%d)", n)
	}
	if _, err := a.Select(ctx, "Evil", false); !errors.Is(err, ErrNoMailbox) {
		t.Errorf("Select of symlinked folder = %v", err)
	}
	if got := names(t, a); !slices.Equal(got, []string{"INBOX"}) {
		t.Errorf("List = %v", got)
	}
}

// TestUIDValidityChange: a uidlist recreated by another program ends the
// session's snapshot with ErrUIDValidityChanged.
func TestUIDValidityChange(t *testing.T) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(t, "")
	if err := s.Deliver(ctx, u, "", nil, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	mb, err := openAcct(t, s, u).Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	os.Remove(filepath.Join(u.Home, "Maildir", uidListName))
	if _, err := mb.Poll(ctx); !errors.Is(err, ErrUIDValidityChanged) {
		t.Errorf("Poll = %v", err)
	}
}

// TestUIDListCutShort: a dovecot-uidlist whose last line was cut by a
// crash is rewritten, not appended to.
func TestUIDListCutShort(t *testing.T) {
	ctx := context.Background()
	u := testUser(t, "")
	if err := NewStore(Options{}).Deliver(ctx, u, "", nil, strings.NewReader(testMsg)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(u.Home, "Maildir", uidListName)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("2 :1700000000.M1P9Q9.half")
	f.Close()
	s := NewStore(Options{})
	for i := 0; i < 2; i++ {
		if err := s.Deliver(ctx, u, "", nil, strings.NewReader(testMsg)); err != nil {
			t.Fatal(err)
		}
	}
	data, _ := os.ReadFile(path)
	ul, err := parseUIDList(data)
	if err != nil || len(ul.Recs) != 3 || strings.Contains(string(data), "half") {
		t.Fatalf("uidlist after cut line: %v\n%s", err, data)
	}
	mb, _ := openAcct(t, NewStore(Options{}), u).Select(ctx, "INBOX", true)
	defer mb.Close()
	if got := uidsOf(mb.Messages()); !slices.Equal(got, []uint32{1, 2, 3}) {
		t.Errorf("UIDs %v", got)
	}
}
