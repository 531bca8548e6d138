package smtpd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTranscripts plays every testdata/*.txt dialog against a live
// server. "C: text" lines are sent (consecutive ones in one write, as a
// pipelining client does), "S: pattern" lines must match the server's
// next line, with "*" matching any run of characters; "S: <closed>"
// expects the connection closed. "#! sasl" turns AUTH on (without TLS);
// other "#" lines are comments.
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
	opts := baseOptions()
	lines := strings.Split(strings.TrimRight(script, "\n"), "\n")
	for _, l := range lines {
		if l == "#! sasl" {
			opts.SASLEnable = true
		}
	}
	ts := startServer(t, opts)
	c := dial(t, ts.addr)
	var pending []string
	flush := func() {
		if len(pending) > 0 {
			c.send(pending...)
			pending = nil
		}
	}
	for n, l := range lines {
		switch {
		case strings.HasPrefix(l, "#"):
		case l == "C:" || strings.HasPrefix(l, "C: "):
			pending = append(pending, strings.TrimPrefix(strings.TrimPrefix(l, "C:"), " "))
		case l == "S: <closed>":
			flush()
			if !c.closed() {
				t.Fatalf("line %d: connection still open", n+1)
			}
		case strings.HasPrefix(l, "S: "):
			flush()
			got, err := c.r.ReadString('\n')
			if err != nil {
				t.Fatalf("line %d: read: %v", n+1, err)
			}
			got = strings.TrimSuffix(got, "\r\n")
			if want := l[3:]; !match(want, got) {
				t.Fatalf("line %d: server said %q, want %q", n+1, got, want)
			}
		default:
			t.Fatalf("line %d: cannot parse %q", n+1, l)
		}
	}
	flush()
}
