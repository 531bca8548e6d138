package lmtpd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTranscripts plays every testdata/*.txt dialog against a live
// server. "C: text" lines are sent (consecutive ones in one write, as a
// pipelining client does; "C: ." ends DATA), "S: pattern" lines must
// match the server's next line, "*" matching any run of characters;
// "S: <closed>" expects the connection closed. "#! maxsize N" sets the
// message size limit; other "#" lines are comments. After the dialog,
// "M: user count" lines check how many messages each INBOX holds.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			playTranscript(t, string(data))
		})
	}
}

func playTranscript(t *testing.T, script string) {
	var opts Options
	lines := strings.Split(strings.TrimRight(script, "\n"), "\n")
	for _, l := range lines {
		if n, ok := strings.CutPrefix(l, "#! maxsize "); ok {
			for _, c := range n {
				opts.MaxMessageSize = opts.MaxMessageSize*10 + int64(c-'0')
			}
		}
	}
	ts := startServer(t, opts)
	c := dial(t, ts.addr)
	var pending strings.Builder
	for i, l := range lines {
		switch {
		case l == "C:" || strings.HasPrefix(l, "C: "):
			pending.WriteString(strings.TrimPrefix(l[2:], " ") + "\r\n")
		case strings.HasPrefix(l, "S: "):
			if pending.Len() > 0 {
				c.send(pending.String())
				pending.Reset()
			}
			if got := c.line(); !match(l[3:], got) {
				t.Fatalf("line %d: got %q, want %q", i+1, got, l[3:])
			}
		case strings.HasPrefix(l, "M: "):
			var user string
			var want int
			f := strings.Fields(l[3:])
			user = f[0]
			for _, ch := range f[1] {
				want = want*10 + int(ch-'0')
			}
			if got := len(ts.inbox(t, user)); got != want {
				t.Errorf("line %d: %s has %d messages, want %d", i+1, user, got, want)
			}
		case l == "" || strings.HasPrefix(l, "#"):
		default:
			t.Fatalf("line %d: bad transcript line %q", i+1, l)
		}
	}
	if pending.Len() > 0 {
		c.send(pending.String())
	}
}
