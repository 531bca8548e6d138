package lmtpd

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/transport"
)

// FuzzDotReader checks the DATA reader on any input: it never returns
// more than it was given plus the CRs it adds, and stops at the first
// end-of-data line.
func FuzzDotReader(f *testing.F) {
	f.Add([]byte("Subject: x\r\n\r\n..a\r\n.\r\n"), int64(0))
	f.Add([]byte("a\nb\n.\n"), int64(3))
	f.Add([]byte(strings.Repeat("y", 5000)+"\r\n.\r\nafter"), int64(0))
	f.Fuzz(func(t *testing.T, in []byte, limit int64) {
		d := &dotReader{r: bufio.NewReaderSize(bytes.NewReader(in), 16), limit: limit}
		out, err := io.ReadAll(d)
		if err == nil && !d.done {
			t.Fatalf("EOF without the end-of-data line")
		}
		if len(out) > 2*len(in) {
			t.Fatalf("output %d bytes from %d", len(out), len(in))
		}
		if limit > 0 && int64(len(out)) > limit {
			t.Fatalf("output %d bytes over limit %d", len(out), limit)
		}
	})
}

// FuzzSession plays arbitrary client input against a session: it must
// answer or close, never panic or hang.
func FuzzSession(f *testing.F) {
	f.Add("LHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<info@example.jp>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n")
	f.Add("LHLO x\r\nMAIL FROM:<\"q\\\"@b> SIZE=1 BODY=8BITMIME SMTPUTF8\r\nRCPT TO:<@r,@s:bob@example.jp>\r\nRSET\r\n")
	f.Add("STARTTLS\r\nVRFY\r\nEHLO x\r\n\x00\xff\r\n")
	f.Add("LHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.jp>\r\nBDAT 3\r\nabcBDAT 2 LAST\r\nde")
	dir := f.TempDir()
	mb := &transport.Mailbox{Users: users{dir}, Store: mailstore.NewStore(mailstore.Options{})}
	srv := New(Options{Hostname: "mx", Timeout: time.Second, MaxLineLength: 512}, mb)
	f.Fuzz(func(t *testing.T, in string) {
		client, server := net.Pipe()
		done := make(chan struct{})
		go func() {
			newSession(srv, server).serve(context.Background())
			close(done)
		}()
		go io.Copy(io.Discard, client)
		client.SetDeadline(time.Now().Add(5 * time.Second))
		client.Write([]byte(in))
		client.Close()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("session did not end")
		}
	})
}
