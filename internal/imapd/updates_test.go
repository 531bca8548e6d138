package imapd

import (
	"strings"
	"testing"
	"time"
)

// selectedPair logs two sessions of alice into INBOX (3 messages).
func selectedPair(t *testing.T, opts Options) (*testServer, *rawConn, *rawConn) {
	t.Helper()
	store := newMemStore()
	for _, m := range transcriptFixture {
		store.deliver("alice", "INBOX", m.flags, m.data)
	}
	opts.AllowPlaintextAuth = true
	ts := startServer(t, opts, store)
	var conns []*rawConn
	for range 2 {
		rc := dialRaw(t, ts.addr)
		rc.login()
		rc.send("s SELECT INBOX\r\n")
		rc.until("s OK")
		conns = append(conns, rc)
	}
	return ts, conns[0], conns[1]
}

func expectLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	for i := range want {
		if !wildcardMatch(want[i], got[i]) {
			t.Fatalf("line %d: got %q\nwant %q", i, got[i], want[i])
		}
	}
}

// TestExpungeNotDuringFetch: RFC 3501 7.4.1 forbids EXPUNGE responses
// during FETCH, STORE and SEARCH; the expunge waits for the next command
// that may carry it, and fetching the vanished message says so.
func TestExpungeNotDuringFetch(t *testing.T) {
	_, a, b := selectedPair(t, Options{})
	b.send("b1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\nb2 EXPUNGE\r\n")
	b.until("b2 OK")

	a.send("a1 FETCH 2 (UID)\r\n")
	expectLines(t, a.until("a1 "), "* 2 FETCH (UID 2)", "a1 OK Fetch completed.")
	a.send("a2 FETCH 1 (BODY.PEEK[HEADER.FIELDS (Subject)])\r\n")
	expectLines(t, a.until("a2 "), "a2 NO [EXPUNGEISSUED] Some messages were expunged before they could be fetched.")
	a.send("a3 SEARCH ALL\r\n")
	expectLines(t, a.until("a3 "), "* SEARCH 1 2 3", "a3 OK Search completed.")
	a.send("a4 UID SEARCH ALL\r\n")
	// UID SEARCH may carry the EXPUNGE (after its result).
	expectLines(t, a.until("a4 "), "* SEARCH 1 2 3", "* 1 EXPUNGE", "a4 OK Search completed.")
	a.send("a5 NOOP\r\n")
	expectLines(t, a.until("a5 "), "a5 OK Noop completed.")
}

// TestOthersFlagsAndNewMail: flag changes by another session arrive as
// unsolicited FETCH, new mail as EXISTS/RECENT, after any command.
func TestOthersFlagsAndNewMail(t *testing.T) {
	_, a, b := selectedPair(t, Options{})
	b.send("b1 STORE 2 FLAGS (\\Answered)\r\n")
	b.until("b1 OK")
	b.send("b2 APPEND INBOX {3+}\r\nabc\r\n")
	b.until("b2 OK")
	a.send("a1 NOOP\r\n")
	expectLines(t, a.until("a1 "),
		`* 2 FETCH (UID 2 FLAGS (\Answered<*>))`,
		"* 4 EXISTS",
		"* 3 RECENT",
		"a1 OK Noop completed.")
}

// TestIdlePollAndKeepalive: during IDLE, changes made behind the store's
// back (another program) are found by the poll timer, and "* OK Still
// here" keeps the connection alive.
func TestIdlePollAndKeepalive(t *testing.T) {
	ts, a, _ := selectedPair(t, Options{PollInterval: 20 * time.Millisecond, IdleKeepalive: 30 * time.Millisecond})
	store := ts.store.(*memStore)
	a.send("i IDLE\r\n")
	if l := a.line(); l != "+ idling" {
		t.Fatalf("got %q", l)
	}
	// A change without notification, as another program would make.
	store.mu.Lock()
	mb := store.accounts["alice"].mailboxes["INBOX"]
	mb.msgs = append(mb.msgs, &memMsg{uid: mb.uidNext, data: []byte(sampleMessage), date: time.Now()})
	mb.uidNext++
	store.mu.Unlock()
	sawExists, sawKeepalive := false, false
	for !sawExists || !sawKeepalive {
		switch l := a.line(); {
		case l == "* 4 EXISTS":
			sawExists = true
		case l == "* OK Still here":
			sawKeepalive = true
		case strings.HasSuffix(l, " RECENT"):
		default:
			t.Fatalf("unexpected %q", l)
		}
	}
	a.send("DONE\r\n")
	for {
		if l := a.line(); strings.HasPrefix(l, "i ") {
			if l != "i OK Idle completed." {
				t.Fatalf("got %q", l)
			}
			break
		}
	}
}

// TestExpungeSequenceNumbers: each EXPUNGE carries the number the
// message has after the earlier ones left (RFC 3501 7.4.1).
func TestExpungeSequenceNumbers(t *testing.T) {
	store := newMemStore()
	for range 5 {
		store.deliver("alice", "INBOX", nil, sampleMessage)
	}
	ts := startServer(t, Options{AllowPlaintextAuth: true}, store)
	rc := dialRaw(t, ts.addr)
	rc.login()
	rc.send("s SELECT INBOX\r\n")
	rc.until("s OK")
	rc.send("t STORE 2,4:5 +FLAGS.SILENT (\\Deleted)\r\n")
	rc.until("t OK")
	rc.send("u EXPUNGE\r\n")
	expectLines(t, rc.until("u "), "* 2 EXPUNGE", "* 3 EXPUNGE", "* 3 EXPUNGE", "u OK Expunge completed.")
	rc.send("v FETCH 1:* UID\r\n")
	expectLines(t, rc.until("v "), "* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "v OK Fetch completed.")
}
