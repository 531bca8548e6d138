package imapd

import (
	"strings"
	"testing"
)

// TestSearchKeys runs every RFC 3501 6.4.4 search key against the
// transcript fixture (1: plain from Alice, unseen; 2: multipart from
// Carol, \Seen, encoded subject; 3: from dave, \Flagged $Important).
func TestSearchKeys(t *testing.T) {
	store := newMemStore()
	for _, m := range transcriptFixture {
		store.deliver("alice", "INBOX", m.flags, m.data)
	}
	ts := startServer(t, Options{AllowPlaintextAuth: true}, store)
	rc := dialRaw(t, ts.addr)
	rc.login()
	rc.send("s SELECT INBOX\r\n")
	rc.until("s OK")
	rc.send("t STORE 1 +FLAGS.SILENT (\\Answered \\Draft)\r\nu STORE 2 +FLAGS.SILENT (\\Deleted)\r\n")
	rc.until("u OK")
	cases := []struct{ query, want string }{
		{"ALL", "1 2 3"},
		{"ANSWERED", "1"},
		{"UNANSWERED", "2 3"},
		{"BCC nobody", ""},
		{"CC nobody", ""},
		{"TO alice@example.org", "2"},
		{"TO bob", "1"},
		{"FROM \"carol, c.\"", "2"},
		{"FROM DAVE", "3"},
		{"SUBJECT \"GRÜSSE\"", ""},
		{"SUBJECT \"GRÜßE\"", "2"},
		{"SUBJECT hello", "1"},
		{"BODY {7+}\r\nSCHÖNE", "2"},
		{"BODY haystack", "3"},
		{"BODY Hello", ""},
		{"TEXT hello", "1"},
		{"TEXT JVBERi", ""},
		{"HEADER MIME-Version 1.0", "2"},
		{"HEADER Message-ID \"\"", "1"},
		{"DELETED", "2"},
		{"UNDELETED", "1 3"},
		{"DRAFT", "1"},
		{"UNDRAFT", "2 3"},
		{"FLAGGED", "3"},
		{"UNFLAGGED", "1 2"},
		{"SEEN", "2"},
		{"UNSEEN", "1 3"},
		{"KEYWORD $Important", "3"},
		{"UNKEYWORD $Important", "1 2"},
		{"RECENT", "1 2 3"},
		{"NEW", "1 3"},
		{"OLD", ""},
		{"LARGER 200", "2"},
		{"SMALLER 150", "3"},
		{"BEFORE 1-Mar-2024", ""}, {"BEFORE 2-Mar-2024", "1 2 3"},
		{"ON 1-Mar-2024", "1 2 3"},
		{"SINCE 2-Mar-2024", ""},
		{"SENTBEFORE 5-Mar-2024", "1"},
		{"SENTON 5-Mar-2024", "2"},
		{"SENTSINCE \"5-Mar-2024\"", "2 3"},
		{"UID 2:*", "2 3"},
		{"2,3", "2 3"},
		{"*", "3"},
		{"NOT 1", "2 3"},
		{"OR 1 3", "1 3"},
		{"(SEEN DELETED) (OR FROM carol FROM dave)", "2"},
		{"OR (NOT SEEN) FLAGGED NOT ANSWERED", "3"},
		{"CHARSET US-ASCII FROM alice", "1"},
	}
	for _, c := range cases {
		rc.send("q SEARCH " + c.query + "\r\n")
		lines := rc.until("q ")
		want := strings.TrimSpace("* SEARCH " + c.want)
		if len(lines) != 2 || lines[0] != want || !strings.HasPrefix(lines[1], "q OK") {
			t.Errorf("SEARCH %s: got %q, want %q", c.query, lines, want)
		}
	}
}
