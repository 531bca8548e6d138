package imapd

import (
	"context"
	"fmt"
	"postcote/internal/maillog"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/mailstore"
)

// benchMailbox fills alice's INBOX with n messages.
func benchMailbox(n int) *memStore {
	store := newMemStore()
	store.mu.Lock()
	mb := store.account("alice").mailboxes["INBOX"]
	for i := 0; i < n; i++ {
		msg := strings.Replace(transcriptFixture[1].data, "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=", fmt.Sprintf("Subject: message %d", i), 1)
		mb.add(nil, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Minute), []byte(msg))
	}
	store.mu.Unlock()
	return store
}

func benchFetch(b *testing.B, cacheSize int) {
	const n = 10000
	ts := startServer(b, Options{AllowPlaintextAuth: true, StructureCacheSize: cacheSize}, benchMailbox(n))
	rc := dialRaw(b, ts.addr)
	rc.login()
	rc.send("s SELECT INBOX\r\n")
	rc.until("s OK")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rc.c.SetDeadline(time.Now().Add(time.Minute))
		rc.send("f FETCH 1:* (FLAGS ENVELOPE)\r\n")
		lines := rc.until("f ")
		if len(lines) != n+1 || !strings.HasPrefix(lines[n], "f OK") {
			b.Fatalf("got %d lines, last %q", len(lines), lines[len(lines)-1])
		}
	}
}

// BenchmarkFetchEnvelope is FETCH 1:* (FLAGS ENVELOPE) on a 10,000
// message mailbox with the structure cache warm after the first round.
func BenchmarkFetchEnvelope(b *testing.B) { benchFetch(b, 0) }

// BenchmarkFetchEnvelopeUncached is the same with a one-entry cache, so
// every header is read and parsed again.
func BenchmarkFetchEnvelopeUncached(b *testing.B) { benchFetch(b, 1) }

// BenchmarkSelect is SELECT of a 10,000 message mailbox.
func BenchmarkSelect(b *testing.B) {
	ts := startServer(b, Options{AllowPlaintextAuth: true}, benchMailbox(10000))
	rc := dialRaw(b, ts.addr)
	rc.login()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rc.c.SetDeadline(time.Now().Add(time.Minute))
		rc.send("s SELECT INBOX\r\n")
		rc.until("s OK")
	}
}

// BenchmarkFetchEnvelopeMaildir is FETCH 1:* (FLAGS ENVELOPE) on a
// 10,000 message Maildir (the real store); with -benchtime 1x the
// structure cache is cold. It reports the first SELECT's time too.
func BenchmarkFetchEnvelopeMaildir(b *testing.B) {
	const n = 10000
	root := b.TempDir()
	store := mailstore.NewStore(mailstore.Options{Hostname: "bench"})
	u, _ := testUsers{root: root}.LookupUser(context.Background(), "imap", "alice")
	acct, err := store.Open(context.Background(), u)
	if err != nil {
		b.Fatal(err)
	}
	// Concurrent appends let the store group its fsyncs.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				msg := strings.Replace(transcriptFixture[1].data, "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=", fmt.Sprintf("Subject: message %d", i), 1)
				if _, _, err := acct.Append(context.Background(), "INBOX", nil, time.Time{}, strings.NewReader(msg)); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	ts := serveWith(b, New(Options{AllowPlaintextAuth: true, Logger: newTestLogger(&maillog.Buffer{})}, store, testChecker{}, testUsers{root: root}))
	rc := dialRaw(b, ts.addr)
	rc.login()
	start := time.Now()
	rc.c.SetDeadline(time.Now().Add(time.Minute))
	rc.send("s SELECT INBOX\r\n")
	rc.until("s OK")
	selectTime := time.Since(start)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rc.c.SetDeadline(time.Now().Add(time.Minute))
		rc.send("f FETCH 1:* (FLAGS ENVELOPE)\r\n")
		lines := rc.until("f ")
		if len(lines) != n+1 {
			b.Fatalf("got %d lines", len(lines))
		}
	}
	b.ReportMetric(float64(selectTime.Milliseconds()), "select-ms")
}
