package smtpd

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// FuzzSession plays arbitrary client input against a whole session over
// an in-memory pipe: whatever arrives, the session must neither panic nor
// hang, and must end when the input does.
func FuzzSession(f *testing.F) {
	for _, s := range []string{
		"EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<user@example.com>\r\nDATA\r\nhi\r\n.\r\nQUIT\r\n",
		"EHLO x\r\nMAIL FROM:<>\r\nRCPT TO:<user@example.com>\r\nBDAT 3 LAST\r\nabcQUIT\r\n",
		"AUTH PLAIN\r\n*\r\nAUTH LOGIN dXNlcg==\r\ncGFzcw==\r\n",
		"HELO x\r\nMAIL FROM:<a@b> SIZE=1 BODY=8BITMIME RET=FULL ENVID=x+2B\r\nRCPT TO:<@a:b@c> NOTIFY=NEVER ORCPT=rfc822;x\r\n",
		"BDAT 99999999999\r\n", "\x00\xff\r\n\n\n", "GET / HTTP/1.0\r\n",
	} {
		f.Add([]byte(s))
	}
	opts := baseOptions()
	opts.SASLEnable = true
	opts.HardErrorLimit = 1000
	opts.Timeouts = Timeouts{Command: 2 * time.Second}
	srv, err := New(opts, &fakeQueue{}, newFakeAddrs(), fakeAuth{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, input []byte) {
		server, client := net.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			newSession(srv, server).serve(context.Background())
		}()
		go io.Copy(io.Discard, client)
		client.SetWriteDeadline(time.Now().Add(5 * time.Second))
		client.Write(input)
		client.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("session still running after the client closed; input %q", input)
		}
	})
}
