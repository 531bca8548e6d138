package transport

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

type mapTable map[string][]string

func (m mapTable) Lookup(_ context.Context, k string) ([]string, error) { return m[k], nil }

type downTable struct{}

func (downTable) Lookup(context.Context, string) ([]string, error) {
	return nil, errors.New("ldap down")
}

func TestVirtualMapsLookup(t *testing.T) {
	// Guide 001: result_format = %s/mailbox/ under virtual_mailbox_base = /,
	// uid and gid from the same map.
	mboxes := mapTable{"mail000@mailhost.example": {"/home/mail/mail000/mailbox/"}, "mbox@mailhost.example": {"var/mail/mbox"},
		"evil@mailhost.example": {"../../etc/"}, "@catch.example": {"catch/"}}
	uids := mapTable{"mail000@mailhost.example": {"20000"}, "mbox@mailhost.example": {"20000"}, "evil@mailhost.example": {"20000"},
		"@catch.example": {"50"}}
	for _, tc := range []struct {
		name    string
		v       *VirtualMaps
		rcpt    string
		path    string
		uid     int
		status  queue.Status
		dsn     string
		errText string
	}{
		{"guide 001", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: uids, GIDMaps: uids, MailboxBase: "/", MinimumUID: 100},
			"mail000@mailhost.example", "/home/mail/mail000/mailbox", 20000, 0, "", ""},
		{"extension", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: uids, GIDMaps: uids, MailboxBase: "/", MinimumUID: 100, Delimiter: "+"},
			"mail000+x@mailhost.example", "/home/mail/mail000/mailbox", 20000, 0, "", ""},
		{"static uid", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: mapTable{"@mailhost.example": {"5000"}}, GIDMaps: mapTable{"@mailhost.example": {"5000"}}, MailboxBase: "/srv", MinimumUID: 100},
			"mail000@mailhost.example", "/srv/home/mail/mail000/mailbox", 5000, 0, "", ""},
		{"unknown", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: uids, GIDMaps: uids, MailboxBase: "/"},
			"nobody@mailhost.example", "", 0, queue.StatusBounced, "5.1.1", "unknown user"},
		{"mbox refused", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: uids, GIDMaps: uids, MailboxBase: "/"},
			"mbox@mailhost.example", "", 0, queue.StatusDeferred, "4.3.5", "Maildir only"},
		{"dot dot refused", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: uids, GIDMaps: uids, MailboxBase: "/"},
			"evil@mailhost.example", "", 0, queue.StatusDeferred, "4.3.5", ".."},
		{"uid below minimum", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: uids, GIDMaps: uids, MailboxBase: "/", MinimumUID: 100},
			"x@catch.example", "", 0, queue.StatusDeferred, "4.3.5", "bad uid 50"},
		{"no uid", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: mapTable{}, GIDMaps: uids, MailboxBase: "/"},
			"mail000@mailhost.example", "", 0, queue.StatusDeferred, "4.3.5", "uid not found"},
		{"no gid map", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: uids, MailboxBase: "/"},
			"mail000@mailhost.example", "", 0, queue.StatusDeferred, "4.3.5", "virtual_gid_maps is not set"},
		{"bad uid", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: mapTable{"@mailhost.example": {"x"}}, GIDMaps: uids, MailboxBase: "/"},
			"mail000@mailhost.example", "", 0, queue.StatusDeferred, "4.3.5", "bad value"},
		{"maps down", &VirtualMaps{MailboxMaps: downTable{}, UIDMaps: uids, GIDMaps: uids, MailboxBase: "/"},
			"mail000@mailhost.example", "", 0, queue.StatusDeferred, "4.3.0", "ldap down"},
		{"uid maps down", &VirtualMaps{MailboxMaps: mboxes, UIDMaps: downTable{}, GIDMaps: uids, MailboxBase: "/"},
			"mail000@mailhost.example", "", 0, queue.StatusDeferred, "4.3.0", "ldap down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, res := tc.v.Lookup(context.Background(), tc.rcpt)
			if tc.dsn != "" {
				if res == nil || res.Status != tc.status || res.DSN != tc.dsn || !strings.Contains(res.Reply, tc.errText) {
					t.Fatalf("got %+v, want %v %s %q", res, tc.status, tc.dsn, tc.errText)
				}
				return
			}
			if res != nil {
				t.Fatalf("unexpected verdict %+v", res)
			}
			if u.MailLocation != "maildir:"+tc.path || u.UID != tc.uid || u.GID != tc.uid {
				t.Errorf("user %+v, want maildir:%s uid %d", u, tc.path, tc.uid)
			}
		})
	}
}

// TestVirtualMapsDelivers delivers through a real queue and store into
// a Maildir owned by the mapped uid (when run as root).
func TestVirtualMapsDelivers(t *testing.T) {
	dir := t.TempDir()
	uid := os.Getuid()
	if uid == 0 {
		uid = 20000
	}
	ids := mapTable{"@mailhost.example": {strconv.Itoa(uid)}}
	v := &VirtualMaps{
		Mailbox:     &Mailbox{Store: mailstore.NewStore(mailstore.Options{}), Name: "virtual"},
		MailboxMaps: mapTable{"mail000@mailhost.example": {"home/mail/mail000/mailbox/"}},
		UIDMaps:     ids, GIDMaps: ids, MailboxBase: dir,
	}
	q, err := queue.Open(filepath.Join(dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	env := &queue.Envelope{Sender: "s@example.org", Recipients: []queue.Recipient{{Address: "mail000@mailhost.example"}, {Address: "x@mailhost.example"}}}
	if err := q.Enqueue(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	results := make(chan []queue.Result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go q.Run(ctx, queue.AgentFunc(func(ctx context.Context, msg *queue.Message, rcpts []int) []queue.Result {
		r := v.Deliver(ctx, msg, rcpts, "")
		results <- r
		return r
	}))
	var res []queue.Result
	select {
	case res = <-results:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
	}
	if len(res) != 2 || res[0].Status != queue.StatusSent || res[1].Status != queue.StatusBounced || res[0].Transport != "virtual" {
		t.Fatalf("results %+v", res)
	}
	box := filepath.Join(dir, "home/mail/mail000/mailbox")
	entries, err := os.ReadDir(filepath.Join(box, "new"))
	if err != nil || len(entries) != 1 {
		t.Fatalf("new/: %v, %d entries", err, len(entries))
	}
	for _, p := range []string{box, filepath.Join(box, "new", entries[0].Name())} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != uid || int(st.Gid) != uid {
			t.Errorf("%s owned by %d:%d, want %d", p, st.Uid, st.Gid, uid)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}

// TestRouterDefersWhenDomainTableFails: a recipient whose class a
// domain table cannot decide is deferred, never handed to the default
// transport (which could send it off this host).
func TestRouterDefersWhenDomainTableFails(t *testing.T) {
	r := &Router{
		Domains:          &rewrite.Domains{VirtualAlias: rewrite.NewDomainList(nil, false).WithTables(downTable{})},
		DefaultTransport: "discard",
		Agents:           map[string]Agent{"discard": Discard{}},
	}
	msg := &queue.Message{Envelope: queue.Envelope{Recipients: []queue.Recipient{{Address: "info@example.org"}}}}
	res := r.Deliver(context.Background(), msg, []int{0})
	if len(res) != 1 || res[0].Status != queue.StatusDeferred || res[0].DSN != "4.3.0" || !strings.Contains(res[0].Reply, "ldap down") {
		t.Errorf("got %+v, want deferred 4.3.0", res)
	}
}
