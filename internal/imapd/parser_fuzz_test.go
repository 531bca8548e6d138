package imapd

import (
	"context"
	"io"
	"net"
	"postcote/internal/maillog"
	"testing"
	"time"
)

// FuzzCommand feeds arbitrary client input to a live session (logged in
// by the seeds' first line) and checks it ends cleanly: no panic, no
// hang after the client closes.
func FuzzCommand(f *testing.F) {
	login := "a LOGIN alice secret\r\nb SELECT INBOX\r\n"
	for _, seed := range []string{
		"c FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)]<0.10> BODYSTRUCTURE)\r\n",
		"c UID SEARCH CHARSET UTF-8 OR (FROM {3+}\r\nbob) NOT 2:* HEADER x \"\"\r\n",
		"c STORE 1:* +FLAGS.SILENT (\\Deleted $x)\r\nd EXPUNGE\r\n",
		"c APPEND INBOX (\\Seen) \" 1-Jan-2024 00:00:00 +0000\" {5+}\r\nabcde\r\n",
		"c LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (* %) RETURN (STATUS (MESSAGES))\r\n",
		"c IDLE\r\nDONE\r\nd COPY 1 Trash\r\ne MOVE 2:3 INBOX\r\n",
		"c AUTHENTICATE PLAIN\r\n*\r\n",
		"c FETCH 1 BODY[1.2.3.MIME]\r\nd FETCH * (BODY[TEXT]<4294967296.1>)\r\n",
	} {
		f.Add(login + seed)
	}
	f.Fuzz(func(t *testing.T, input string) {
		store := newMemStore()
		for _, m := range transcriptFixture {
			store.deliver("alice", "INBOX", m.flags, m.data)
		}
		srv := New(Options{AllowPlaintextAuth: true, AuthFailureDelay: -1, MaxLineLength: 4096,
			Logger: newTestLogger(&maillog.Buffer{})}, store, testChecker{}, testUsers{root: t.TempDir()})
		server, client := net.Pipe()
		sess := newSession(srv, server)
		done := make(chan struct{})
		go func() { sess.serve(context.Background()); close(done) }()
		go io.Copy(io.Discard, client)
		go func() {
			client.Write([]byte(input))
			client.Close()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("session did not end for input %q", input)
		}
	})
}

// FuzzSeqSet checks sequence-set parsing and resolution.
func FuzzSeqSet(f *testing.F) {
	for _, s := range []string{"1", "1:*", "*:4,7", "2,4:6,*", "0", "4294967295:1"} {
		f.Add(s, uint32(10))
	}
	f.Fuzz(func(t *testing.T, s string, max uint32) {
		set, err := parseSeqSet(s)
		if err != nil {
			return
		}
		for _, r := range set.resolve(max) {
			if r.lo > r.hi {
				t.Fatalf("range %v not ordered", r)
			}
		}
	})
}
