package rewrite

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"postcote/internal/queue"
)

// FuzzCleanupRemoteHeaders runs arbitrary messages through cleanup in
// the remote header context with remote_header_rewrite_domain set: it
// never fails, keeps the number of lines, never touches the body, and
// only ever adds the remote domain's text (or swaps routing forms) in
// address headers.
func FuzzCleanupRemoteHeaders(f *testing.F) {
	for _, s := range []string{
		"From: user\r\n\r\nuser",
		"To: a, b@host, <>, @, x@, g: c;\r\nCc: site!u, p%q\r\n\r\n",
		"Sender: \"a b\" (c)\r\nSubject: user\r\n\r\n",
		"From: <@r:a>\n\nbody\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		q := &memQueue{}
		c := &Cleanup{Next: q, RemoteHeaderDomain: "remote.example",
			Rules:         &Addresses{Myorigin: "example.com", Mydomain: "example.com", AppendDotMydomain: true, SwapBangpath: true, PercentHack: true},
			HeaderContext: func(context.Context, *queue.Envelope) (bool, error) { return false, nil }}
		env := &queue.Envelope{Sender: "s@example.com", Recipients: []queue.Recipient{{Address: "r@example.com"}}}
		if err := c.Enqueue(context.Background(), env, bytes.NewReader(in)); err != nil {
			t.Fatal(err)
		}
		got := q.content
		if strings.Count(got, "\n") != bytes.Count(in, []byte("\n")) {
			t.Fatalf("line count changed:\n%q\n%q", in, got)
		}
		for _, sep := range []string{"\r\n\r\n", "\n\n"} {
			if i := bytes.Index(in, []byte(sep)); i >= 0 {
				body := string(in[i+len(sep):])
				if !strings.HasSuffix(got, body) {
					t.Fatalf("body changed:\n%q\n%q", in, got)
				}
				break
			}
		}
	})
}
