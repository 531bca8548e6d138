package imapd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Transcripts in testdata/*.txt are dialogs played against a live
// server: "C: " lines are sent (CRLF appended), "S: " lines must match
// the next line the server sends, where "<*>" matches any text. Lines
// starting with "#!" set options: "#!plaintext=no" (Dovecot's default
// disable_plaintext_auth), "#!separator=.", "#!maxline=N". "#" lines are
// comments. "!deliver MAILBOX" delivers sampleMessage to alice meanwhile.
//
// Every transcript starts with alice's INBOX holding the three messages
// of transcriptFixture.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			t.Parallel()
			runTranscript(t, f)
		})
	}
}

// transcriptFixture is alice's INBOX at the start of each transcript.
var transcriptFixture = []struct {
	flags []string
	data  string
}{
	{nil, sampleMessage},
	{[]string{`\Seen`}, "From: \"Carol, C.\" <carol@example.net>\r\n" +
		"To: alice@example.org, undisclosed-recipients:;\r\n" +
		"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n" +
		"Date: Tue, 5 Mar 2024 11:30:00 +0000\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"XX\"\r\n" +
		"\r\n" +
		"preamble\r\n" +
		"--XX\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: quoted-printable\r\n" +
		"\r\n" +
		"Sch=C3=B6ne Gr=C3=BC=C3=9Fe\r\n" +
		"--XX\r\n" +
		"Content-Type: application/pdf; name=\"a.pdf\"\r\n" +
		"Content-Disposition: attachment; filename=\"a.pdf\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n" +
		"\r\n" +
		"JVBERi0xLjQK\r\n" +
		"--XX--\r\n"},
	{[]string{`\Flagged`, "$Important"}, "From: dave@example.com\r\n" +
		"Subject: third\r\n" +
		"Date: Wed, 6 Mar 2024 09:00:00 -0500\r\n" +
		"\r\n" +
		"needle in a haystack\r\n"},
}

func runTranscript(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{AllowPlaintextAuth: true}
	lines := strings.Split(strings.ReplaceAll(string(raw), "\r\n", "\n"), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "#!") {
			continue
		}
		k, v, _ := strings.Cut(strings.TrimPrefix(l, "#!"), "=")
		switch k {
		case "plaintext":
			opts.AllowPlaintextAuth = v != "no"
		case "separator":
			opts.Separator = v
		case "maxline":
			var n int
			for _, c := range v {
				n = n*10 + int(c-'0')
			}
			opts.MaxLineLength = n
		default:
			t.Fatalf("unknown option %q", l)
		}
	}
	store := newMemStore()
	for i, m := range transcriptFixture {
		store.mu.Lock()
		mb := store.account("alice").mailboxes["INBOX"]
		mb.add(m.flags, time.Date(2024, 3, 4+i, 12, 0, 0, 0, time.UTC), []byte(m.data))
		store.mu.Unlock()
	}
	ts := startServer(t, opts, store)
	rc := dialRaw(t, ts.addr)
	for n, l := range lines {
		switch {
		case strings.HasPrefix(l, "C: "):
			rc.send(l[3:] + "\r\n")
		case strings.HasPrefix(l, "S: "):
			got := rc.line()
			if !wildcardMatch(l[3:], got) {
				t.Fatalf("%s:%d: want %q\n got %q", file, n+1, l[3:], got)
			}
		case strings.HasPrefix(l, "!deliver "):
			store.deliver("alice", strings.TrimPrefix(l, "!deliver "), nil, sampleMessage)
		case strings.HasPrefix(l, "!closed"):
			rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if got, err := rc.br.ReadString('\n'); err == nil {
				t.Fatalf("%s:%d: want connection closed, got %q", file, n+1, got)
			}
		case l == "" || strings.HasPrefix(l, "#"):
		default:
			t.Fatalf("%s:%d: bad transcript line %q", file, n+1, l)
		}
	}
}

// wildcardMatch matches s against pattern where "<*>" is any text.
func wildcardMatch(pattern, s string) bool {
	parts := strings.Split(pattern, "<*>")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
