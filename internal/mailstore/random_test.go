package mailstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRandomOperations runs a seeded random mix of deliveries, appends,
// flag changes, expunges, copies, moves and changes by "another program"
// on the files, with two sessions. After every Poll a session's snapshot
// must equal what a fresh Store reads from disk.
func TestRandomOperations(t *testing.T) {
	ctx := context.Background()
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 99))
			s := NewStore(Options{})
			u := testUser(t, "")
			a := openAcct(t, s, u)
			if err := a.Create(ctx, "Other", ""); err != nil {
				t.Fatal(err)
			}
			root := filepath.Join(u.Home, "Maildir")
			sessions := make([]Mailbox, 2)
			for i := range sessions {
				mb, err := a.Select(ctx, "INBOX", false)
				if err != nil {
					t.Fatal(err)
				}
				defer mb.Close()
				sessions[i] = mb
			}
			flagsPool := []string{FlagSeen, FlagFlagged, FlagDeleted, FlagAnswered, FlagDraft, "Work", "$Junk"}
			pick := func(mb Mailbox) []uint32 {
				msgs := mb.Messages()
				var out []uint32
				for _, m := range msgs {
					if rng.IntN(3) == 0 {
						out = append(out, m.UID)
					}
				}
				return out
			}
			for step := 0; step < 150; step++ {
				mb := sessions[rng.IntN(2)]
				var err error
				switch op := rng.IntN(10); op {
				case 0, 1:
					err = s.Deliver(ctx, u, "INBOX", nil, strings.NewReader(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", step)))
				case 2:
					_, _, err = a.Append(ctx, "INBOX", []string{flagsPool[rng.IntN(len(flagsPool))]}, time.Time{}, strings.NewReader("Subject: a\r\n\r\ny\r\n"))
				case 3:
					_, _, err = mb.Store(ctx, pick(mb), FlagOp(rng.IntN(3)), []string{flagsPool[rng.IntN(len(flagsPool))]}, 0)
				case 4:
					_, err = mb.Expunge(ctx, nil)
				case 5:
					_, _, _, err = mb.Copy(ctx, pick(mb), "Other")
				case 6:
					_, _, _, err = mb.Move(ctx, pick(mb), "Other")
				case 7:
					// Another program flags or removes a file in cur/.
					ents, _ := os.ReadDir(filepath.Join(root, "cur"))
					if len(ents) > 0 {
						e := ents[rng.IntN(len(ents))]
						fn := parseFileName(e.Name())
						if rng.IntN(2) == 0 {
							os.Rename(filepath.Join(root, "cur", e.Name()), filepath.Join(root, "cur", curName(fn.Base, sortLetters(fn.Flags+"F"))))
						} else {
							os.Remove(filepath.Join(root, "cur", e.Name()))
						}
					}
				default:
					_, err = mb.Poll(ctx)
					if err == nil {
						checkAgainstDisk(t, u, mb, step)
					}
				}
				if err != nil {
					t.Fatalf("step %d: %v", step, err)
				}
			}
		})
	}
}

func checkAgainstDisk(t *testing.T, u User, mb Mailbox, step int) {
	t.Helper()
	fresh, err := openAcct(t, NewStore(Options{}), u).Select(context.Background(), "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	strip := func(fl []string) []string {
		out := slices.DeleteFunc(slices.Clone(fl), func(f string) bool { return f == FlagRecent })
		slices.Sort(out)
		return out
	}
	got, want := mb.Messages(), fresh.Messages()
	if !slices.Equal(uidsOf(got), uidsOf(want)) {
		t.Fatalf("step %d: session UIDs %v, disk %v", step, uidsOf(got), uidsOf(want))
	}
	for i := range got {
		if !slices.Equal(strip(got[i].Flags), strip(want[i].Flags)) || got[i].Size != want[i].Size {
			t.Fatalf("step %d: UID %d session %v/%d, disk %v/%d", step, got[i].UID, got[i].Flags, got[i].Size, want[i].Flags, want[i].Size)
		}
	}
	if mb.UIDNext() != fresh.UIDNext() {
		t.Fatalf("step %d: UIDNEXT %d, disk %d", step, mb.UIDNext(), fresh.UIDNext())
	}
}
