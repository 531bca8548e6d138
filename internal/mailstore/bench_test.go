package mailstore

import (
	"bytes"
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// msg5k is a 5 KiB message.
var msg5k = func() []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: bench\r\n\r\n")
	for b.Len() < 5<<10 {
		b.WriteString(strings.Repeat("x", 70) + "\r\n")
	}
	return b.Bytes()
}()

// BenchmarkDeliver: sequential deliveries of 5 KiB messages, each
// durable (file fsync, directory fsync, uidlist fsync) before the next.
func BenchmarkDeliver(b *testing.B) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(b, "")
	b.SetBytes(int64(len(msg5k)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Deliver(ctx, u, "INBOX", nil, bytes.NewReader(msg5k)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkDeliverConcurrent10: ten deliveries in flight to the same
// mailbox; they share directory and uidlist fsyncs (group commit).
func BenchmarkDeliverConcurrent10(b *testing.B) {
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(b, "")
	b.SetBytes(int64(len(msg5k)))
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan struct{})
	for w := 0; w < 10; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if err := s.Deliver(ctx, u, "INBOX", nil, bytes.NewReader(msg5k)); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := 0; i < b.N; i++ {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// bigMailbox makes a mailbox of n messages quickly: the files are placed
// without fsync and given UIDs by one scan, the way a migrated Maildir
// would arrive.
func bigMailbox(b *testing.B, n int) (*MaildirStore, User) {
	b.Helper()
	ctx := context.Background()
	s := NewStore(Options{})
	u := testUser(b, "")
	a, err := s.open(ctx, u)
	if err != nil {
		b.Fatal(err)
	}
	bp, _ := a.box("INBOX")
	for i := 0; i < n; i++ {
		name := s.newBase(timeNowForBench()) + ",S=5200,W=5300:2,S"
		if err := writeFileQuick(bp.Dir+"/cur/"+name, msg5k); err != nil {
			b.Fatal(err)
		}
	}
	mb, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		b.Fatal(err)
	}
	if len(mb.Messages()) != n {
		b.Fatalf("%d messages", len(mb.Messages()))
	}
	mb.Close()
	return s, u
}

// BenchmarkSelect10k: open and select a 10,000-message mailbox from a
// fresh Store (reads dovecot-uidlist, the index and the directories).
func BenchmarkSelect10k(b *testing.B) {
	if testing.Short() {
		b.Skip("slow setup")
	}
	_, u := bigMailbox(b, 10000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := NewStore(Options{})
		a, err := s.Open(ctx, u)
		if err != nil {
			b.Fatal(err)
		}
		mb, err := a.Select(ctx, "INBOX", true)
		if err != nil {
			b.Fatal(err)
		}
		if len(mb.Messages()) != 10000 {
			b.Fatal("wrong count")
		}
		mb.Close()
	}
}

// BenchmarkPollNoChange10k: Poll of a quiet 10,000-message mailbox.
func BenchmarkPollNoChange10k(b *testing.B) {
	if testing.Short() {
		b.Skip("slow setup")
	}
	s, u := bigMailbox(b, 10000)
	ctx := context.Background()
	a, _ := s.Open(ctx, u)
	mb, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		b.Fatal(err)
	}
	defer mb.Close()
	time.Sleep(100 * time.Millisecond) // let the directories' mtimes settle (see settled)
	mb.Poll(ctx)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		up, err := mb.Poll(ctx)
		if err != nil || len(up.New)+len(up.Changed)+len(up.Expunged) != 0 {
			b.Fatal(err, up)
		}
	}
}

// BenchmarkStatus10k: STATUS of a quiet 10,000-message mailbox that a
// session holds open.
func BenchmarkStatus10k(b *testing.B) {
	if testing.Short() {
		b.Skip("slow setup")
	}
	s, u := bigMailbox(b, 10000)
	ctx := context.Background()
	a, _ := s.Open(ctx, u)
	mb, _ := a.Select(ctx, "INBOX", false)
	defer mb.Close()
	time.Sleep(100 * time.Millisecond)
	mb.Poll(ctx)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st, err := a.Status(ctx, "INBOX"); err != nil || st.Messages != 10000 {
			b.Fatal(err)
		}
	}
}

func timeNowForBench() time.Time { return time.Now() }

func writeFileQuick(path string, data []byte) error { return os.WriteFile(path, data, 0o600) }

// BenchmarkPollExternalChange10k: Poll after another program changed the
// flags of one message of a 10,000-message mailbox: a full rescan.
func BenchmarkPollExternalChange10k(b *testing.B) {
	if testing.Short() {
		b.Skip("slow setup")
	}
	s, u := bigMailbox(b, 10000)
	ctx := context.Background()
	a, _ := s.Open(ctx, u)
	mb, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		b.Fatal(err)
	}
	defer mb.Close()
	v := mb.(*view)
	v.mb.mu.Lock()
	m := v.mb.msgs[0]
	dir := v.mb.paths.Dir + "/cur/"
	from, to := m.name, curName(m.base, "FS")
	v.mb.mu.Unlock()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := os.Rename(dir+from, dir+to); err != nil {
			b.Fatal(err)
		}
		from, to = to, from
		up, err := mb.Poll(ctx)
		if err != nil || len(up.Changed) != 1 {
			b.Fatal(err, up)
		}
	}
}
