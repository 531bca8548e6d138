package transport

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postcote/internal/config/postfixconf"
	"postcote/internal/lookup"
	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
	"postcote/internal/userdb"
)

// fakeForward records forwarded messages (the cleanup stage).
type fakeForward struct {
	mu   sync.Mutex
	n    int
	envs []*queue.Envelope
	data []string
	err  error
}

func (f *fakeForward) NewID() queue.ID {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	return queue.ID(fmt.Sprintf("FWD%d", f.n))
}

func (f *fakeForward) Enqueue(_ context.Context, env *queue.Envelope, content io.Reader) error {
	if f.err != nil {
		return f.err
	}
	b, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.envs = append(f.envs, env)
	f.data = append(f.data, string(b))
	return nil
}

// localEnv is a test system: passwd file, homes, spool, aliases.
type localEnv struct {
	dir      string
	uid, gid int // the users' ids: unprivileged ones when running as root
	local    *Local
	fwd      *fakeForward
	homes    map[string]string
}

func newLocalEnv(t testing.TB, aliases map[string][]string) *localEnv {
	t.Helper()
	dir := t.TempDir()
	if processIsRoot() {
		// Commands run as the test users must reach their homes.
		os.Chmod(filepath.Dir(dir), 0o755)
		os.Chmod(dir, 0o755)
	}
	e := &localEnv{dir: dir, uid: os.Getuid(), gid: os.Getgid(), fwd: &fakeForward{}, homes: map[string]string{}}
	if processIsRoot() {
		e.uid, e.gid = 42424, 42424
	}
	var pw strings.Builder
	fmt.Fprintf(&pw, "# test passwd\nroot:x:0:0:root:%s:/bin/sh\n", filepath.Join(dir, "root"))
	for i, name := range []string{"demo", "other", "nobody"} {
		home := filepath.Join(dir, "home", name)
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		uid := e.uid + i
		if !processIsRoot() {
			uid = e.uid
		}
		if err := os.Lchown(home, uid, e.gid); err != nil && processIsRoot() {
			t.Fatal(err)
		}
		e.homes[name] = home
		fmt.Fprintf(&pw, "%s:x:%d:%d:%s user:%s:/bin/sh\n", name, uid, e.gid, name, home)
	}
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(pw.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(dir, "spool")
	if err := os.Mkdir(spool, 0o1777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(spool, 0o1777)
	var tbl rewrite.Table
	if aliases != nil {
		tbl = mapTable(aliases)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e.local = &Local{
		Mailbox:             &Mailbox{Store: mailstore.NewStore(mailstore.Options{Hostname: "test"}), Name: "local"},
		Aliases:             tbl,
		Domains:             &rewrite.Domains{Local: rewrite.NewDomainList([]string{"examplehost.example.com", "localhost"}, false)},
		Forward:             e.fwd,
		Passwd:              userdb.NewSystemIDs(filepath.Join(dir, "passwd"), filepath.Join(dir, "group")),
		MailSpoolDirectory:  spool,
		MailboxSizeLimit:    51200000,
		AllowCommands:       []string{"alias", "forward"},
		AllowFiles:          []string{"alias", "forward"},
		CommandTimeLimit:    10 * time.Second,
		Delimiter:           "+",
		Myorigin:            "examplehost.example.com",
		DoubleBounceSender:  "double-bounce",
		OwnerRequestSpecial: true,
		LockWait:            time.Second,
		Now:                 func() time.Time { return now },
	}
	return e
}

// writeOwned writes a file owned by the test user name.
func (e *localEnv) writeOwned(t *testing.T, name, rel, data string) string {
	t.Helper()
	p := filepath.Join(e.homes[name], rel)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if processIsRoot() {
		uid := e.uid
		if name == "other" {
			uid++
		} else if name == "nobody" {
			uid += 2
		}
		if err := os.Chown(p, uid, e.gid); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

const localMsg = "Subject: hello\r\nFrom: a@example.org\r\n\r\nFrom the start\r\nbody\r\n"

func (e *localEnv) deliver(t testing.TB, rcpt, content string) queue.Result {
	t.Helper()
	env := &queue.Envelope{ID: "TESTID", Sender: "sender@example.org", Recipients: []queue.Recipient{{Address: rcpt, OrigAddress: rcpt}}}
	src := messageSource{open: func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }, size: int64(len(content))}
	return e.local.deliverOne(context.Background(), &queue.Message{ID: env.ID, Envelope: *env, Size: src.size}, src, env.Recipients[0])
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func maildirFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "new"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, readFile(t, filepath.Join(dir, "new", e.Name())))
	}
	return out
}

// TestLocalGuide004 delivers to root of guide 004 (alias_maps =
// hash:/etc/aliases with "root: localuser", home_mailbox = Maildir/)
// through the real hash: table and the mail store.
func TestLocalGuide004(t *testing.T) {
	e := newLocalEnv(t, nil)
	aliases := filepath.Join(e.dir, "aliases")
	src := "# See man 5 aliases for format\nroot: demo\nmailer-daemon: postmaster\nabuse: root\nhostmaster: root\npostmaster: root\nnobody: root\nwebmaster: root\nwww: root\n"
	if err := os.WriteFile(aliases, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lookup.BuildIndex(aliases, lookup.FormatAliases, true, func(string) {}); err != nil {
		t.Fatal(err)
	}
	tbl, err := lookup.Open("hash:"+aliases, lookup.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.local.Aliases = tbl
	e.local.HomeMailbox = "Maildir/"
	for _, rcpt := range []string{"root@examplehost.example.com", "abuse@localhost", "Postmaster@examplehost.example.com"} {
		if r := e.deliver(t, rcpt, localMsg); r.Status != queue.StatusSent {
			t.Fatalf("%s: %+v", rcpt, r)
		}
	}
	md := filepath.Join(e.homes["demo"], "Maildir")
	got := maildirFiles(t, md)
	if len(got) != 3 {
		t.Fatalf("%d messages in %s, want 3", len(got), md)
	}
	for _, m := range got {
		if !strings.Contains(m, "Delivered-To: demo@examplehost.example.com") || !strings.Contains(m, "Return-Path: <sender@example.org>") || !strings.Contains(m, "\nFrom the start") {
			t.Errorf("message:\n%s", m)
		}
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(md, "new"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o777 != 0o700 || (processIsRoot() && int(st.Uid) != e.uid) {
		t.Errorf("Maildir/new mode %o uid %d, want 0700 uid %d", st.Mode&0o777, st.Uid, e.uid)
	}
}

func TestLocalMboxSpool(t *testing.T) {
	e := newLocalEnv(t, nil)
	if r := e.deliver(t, "demo+tag@examplehost.example.com", localMsg); r.Status != queue.StatusSent {
		t.Fatalf("%+v", r)
	}
	if r := e.deliver(t, "demo@localhost", "Subject: two\n\nno final newline"); r.Status != queue.StatusSent {
		t.Fatalf("%+v", r)
	}
	p := filepath.Join(e.local.MailSpoolDirectory, "demo")
	want := "From sender@example.org  Fri Jan  2 03:04:05 2026\n" +
		"Return-Path: <sender@example.org>\nX-Original-To: demo+tag@examplehost.example.com\nDelivered-To: demo+tag@examplehost.example.com\n" +
		"Subject: hello\nFrom: a@example.org\n\n>From the start\nbody\n\n" +
		"From sender@example.org  Fri Jan  2 03:04:05 2026\n" +
		"Return-Path: <sender@example.org>\nX-Original-To: demo@localhost\nDelivered-To: demo@localhost\n" +
		"Subject: two\n\nno final newline\n\n"
	if got := readFile(t, p); got != want {
		t.Errorf("mbox:\n%q\nwant\n%q", got, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || (processIsRoot() && int(fi.Sys().(*syscall.Stat_t).Uid) != e.uid) {
		t.Errorf("mbox mode %v owner %d", fi.Mode(), fi.Sys().(*syscall.Stat_t).Uid)
	}
	if _, err := os.Stat(p + ".lock"); !os.IsNotExist(err) {
		t.Errorf("dot-lock left behind: %v", err)
	}
}

func TestLocalResults(t *testing.T) {
	aliases := map[string][]string{
		"root":        {"demo"},
		"list":        {"demo, remote@elsewhere.example"},
		"owner-list":  {"demo"},
		"loop1":       {"loop2"},
		"loop2":       {"loop1"},
		"tofile":      {"/FILE"},
		"tocmd":       {`"|echo $RECIPIENT $SENDER $LOCAL > $HOME/cmd.out"`},
		"tempfail":    {"|exit 75"},
		"nouser":      {"|exit 67"},
		"unknownexit": {"|exit 3"},
		"slow":        {"|sleep 5"},
		"remote":      {"someone@elsewhere.example"},
	}
	for _, tc := range []struct {
		name   string
		rcpt   string
		setup  func(t *testing.T, e *localEnv)
		msg    string
		status queue.Status
		dsn    string
		reply  string
		check  func(t *testing.T, e *localEnv)
	}{
		{name: "unknown user", rcpt: "nosuch@localhost", status: queue.StatusBounced, dsn: "5.1.1", reply: `unknown user: "nosuch"`},
		{name: "luser_relay", rcpt: "nosuch+x@localhost", setup: func(t *testing.T, e *localEnv) { e.local.LuserRelay = "$user@relay.example" },
			status: queue.StatusSent, reply: "forwarded as FWD1", check: func(t *testing.T, e *localEnv) {
				if len(e.fwd.envs) != 1 || e.fwd.envs[0].Recipients[0].Address != "nosuch@relay.example" {
					t.Errorf("forwarded %+v", e.fwd.envs)
				}
			}},
		{name: "double-bounce discarded", rcpt: "double-bounce@localhost", status: queue.StatusSent, reply: "discarded"},
		{name: "delivered-to loop", rcpt: "demo@localhost", msg: "Delivered-To: other@x\r\nDelivered-To:\r\n DEMO@localhost\r\n\r\nhi\r\n",
			status: queue.StatusBounced, dsn: "5.4.6", reply: "mail forwarding loop for demo@localhost"},
		{name: "alias loop", rcpt: "loop1@localhost", status: queue.StatusBounced, dsn: "5.4.6"},
		{name: "mbox full", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) {
			e.local.MailboxSizeLimit = 100
			if err := os.WriteFile(filepath.Join(e.local.MailSpoolDirectory, "demo"), []byte("From x  Thu Jan  1 00:00:00 2026\n\nold\n\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if processIsRoot() {
				os.Chown(filepath.Join(e.local.MailSpoolDirectory, "demo"), e.uid, e.gid)
			}
		}, msg: localMsg + strings.Repeat("x", 100), status: queue.StatusBounced, dsn: "5.2.2", reply: "mailbox full", check: func(t *testing.T, e *localEnv) {
			if got := readFile(t, filepath.Join(e.local.MailSpoolDirectory, "demo")); got != "From x  Thu Jan  1 00:00:00 2026\n\nold\n\n" {
				t.Errorf("mbox not restored: %q", got)
			}
		}},
		{name: "maildir over limit", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) {
			e.local.MailboxSizeLimit, e.local.HomeMailbox = 10, "Maildir/"
		}, status: queue.StatusBounced, dsn: "5.2.2", reply: "mailbox full"},
		{name: "spool maildir", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) { e.local.MailSpoolDirectory += "/" },
			status: queue.StatusSent, reply: "delivered to maildir", check: func(t *testing.T, e *localEnv) {
				if got := maildirFiles(t, filepath.Join(e.local.MailSpoolDirectory, "demo")); len(got) != 1 {
					t.Errorf("spool Maildir holds %d messages", len(got))
				}
			}},
		{name: "home mbox", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) { e.local.HomeMailbox = "Mailbox" },
			status: queue.StatusSent, check: func(t *testing.T, e *localEnv) {
				if got := readFile(t, filepath.Join(e.homes["demo"], "Mailbox")); !strings.Contains(got, ">From the start") {
					t.Errorf("Mailbox: %q", got)
				}
			}},
		{name: "mbox is a symlink", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) {
			os.Symlink(filepath.Join(e.dir, "passwd"), filepath.Join(e.local.MailSpoolDirectory, "demo"))
		}, status: queue.StatusDeferred, dsn: "4.2.0", reply: "symbolic link"},
		{name: "alias to file", rcpt: "tofile@localhost", setup: func(t *testing.T, e *localEnv) {
			e.local.Aliases = mapTable{"tofile": {filepath.Join(e.dir, "spool", "archive")}}
		}, status: queue.StatusSent, check: func(t *testing.T, e *localEnv) {
			if got := readFile(t, filepath.Join(e.dir, "spool", "archive")); !strings.HasPrefix(got, "From sender@example.org ") {
				t.Errorf("file: %q", got)
			}
		}},
		{name: "file not allowed", rcpt: "tofile@localhost", setup: func(t *testing.T, e *localEnv) { e.local.AllowFiles = []string{"forward"} },
			status: queue.StatusBounced, dsn: "5.7.1", reply: "mail to file is restricted"},
		{name: "alias command", rcpt: "tocmd+ext@localhost", status: queue.StatusSent, check: func(t *testing.T, e *localEnv) {
			if got := readFile(t, filepath.Join(e.homes["nobody"], "cmd.out")); got != "tocmd+ext@localhost sender@example.org tocmd+ext\n" {
				t.Errorf("command saw %q", got)
			}
		}},
		{name: "command not allowed", rcpt: "tocmd@localhost", setup: func(t *testing.T, e *localEnv) { e.local.AllowCommands = nil },
			status: queue.StatusBounced, dsn: "5.7.1", reply: "mail to command is restricted"},
		{name: "EX_TEMPFAIL", rcpt: "tempfail@localhost", status: queue.StatusDeferred, dsn: "4.3.0", reply: "Command died with status 75"},
		{name: "EX_NOUSER", rcpt: "nouser@localhost", status: queue.StatusBounced, dsn: "5.1.1", reply: "user unknown"},
		{name: "other exit", rcpt: "unknownexit@localhost", status: queue.StatusDeferred, dsn: "4.3.0", reply: "unknown mail system error 3"},
		{name: "command time limit", rcpt: "slow@localhost", setup: func(t *testing.T, e *localEnv) { e.local.CommandTimeLimit = 200 * time.Millisecond },
			status: queue.StatusBounced, dsn: "5.3.0", reply: "Command time limit exceeded"},
		{name: "remote alias", rcpt: "remote@localhost", status: queue.StatusSent, reply: "forwarded as FWD1", check: func(t *testing.T, e *localEnv) {
			if len(e.fwd.data) != 1 || !strings.HasPrefix(e.fwd.data[0], "Delivered-To: remote@localhost\r\nSubject: hello") || e.fwd.envs[0].Sender != "sender@example.org" {
				t.Errorf("forwarded %q %+v", e.fwd.data, e.fwd.envs)
			}
		}},
		{name: "forward fails", rcpt: "remote@localhost", setup: func(t *testing.T, e *localEnv) { e.fwd.err = fmt.Errorf("queue full") },
			status: queue.StatusDeferred, dsn: "4.3.0", reply: "queue full"},
		{name: "list with owner", rcpt: "list@localhost", status: queue.StatusSent, check: func(t *testing.T, e *localEnv) {
			if len(e.fwd.envs) != 1 || e.fwd.envs[0].Sender != "owner-list@examplehost.example.com" {
				t.Errorf("forwarded %+v", e.fwd.envs)
			}
			if got := readFile(t, filepath.Join(e.local.MailSpoolDirectory, "demo")); !strings.Contains(got, "Return-Path: <owner-list@examplehost.example.com>") {
				t.Errorf("mbox: %q", got)
			}
		}},
		{name: "dot forward", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) {
			e.writeOwned(t, "demo", ".forward", "# comment\nfar@elsewhere.example, \\demo\n")
		}, status: queue.StatusSent, check: func(t *testing.T, e *localEnv) {
			if len(e.fwd.envs) != 1 || e.fwd.envs[0].Recipients[0].Address != "far@elsewhere.example" || !strings.HasPrefix(e.fwd.data[0], "Delivered-To: demo@localhost\r\n") {
				t.Errorf("forwarded %+v %q", e.fwd.envs, e.fwd.data)
			}
			if got := readFile(t, filepath.Join(e.local.MailSpoolDirectory, "demo")); !strings.Contains(got, "Delivered-To: demo@localhost") {
				t.Errorf("mbox: %q", got)
			}
		}},
		{name: "dot forward with extension", rcpt: "demo+lists@localhost", setup: func(t *testing.T, e *localEnv) {
			e.writeOwned(t, "demo", ".forward", "far@elsewhere.example\n")
			e.writeOwned(t, "demo", ".forward+lists", "other\n")
		}, status: queue.StatusSent, check: func(t *testing.T, e *localEnv) {
			if len(e.fwd.envs) != 0 {
				t.Errorf("used .forward instead of .forward+lists: %+v", e.fwd.envs)
			}
			if got := readFile(t, filepath.Join(e.local.MailSpoolDirectory, "other")); !strings.Contains(got, "Delivered-To: other@examplehost.example.com") {
				t.Errorf("other's mbox: %q", got)
			}
		}},
		{name: "dot forward command", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) {
			e.writeOwned(t, "demo", ".forward", "\"|cat > $HOME/piped\"\n")
		}, status: queue.StatusSent, check: func(t *testing.T, e *localEnv) {
			if got := readFile(t, filepath.Join(e.homes["demo"], "piped")); !strings.HasPrefix(got, "From sender@example.org ") || !strings.Contains(got, "\nFrom the start") {
				t.Errorf("piped %q", got)
			}
		}},
		{name: "dot forward loop", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) {
			e.writeOwned(t, "demo", ".forward", "other\n")
			e.writeOwned(t, "other", ".forward", "demo@examplehost.example.com\n")
		}, status: queue.StatusBounced, dsn: "5.4.6", reply: "mail forwarding loop"},
		{name: "mailbox_command", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) {
			e.local.MailboxCommand = "cat > $HOME/lda; test \"$USER\" = demo"
		}, status: queue.StatusSent, check: func(t *testing.T, e *localEnv) {
			if got := readFile(t, filepath.Join(e.homes["demo"], "lda")); !strings.Contains(got, "Delivered-To: demo@localhost") {
				t.Errorf("lda got %q", got)
			}
		}},
		{name: "alias table down", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) { e.local.Aliases = downTable{} },
			status: queue.StatusDeferred, dsn: "4.3.0", reply: "alias database unavailable"},
		{name: "passwd unreadable", rcpt: "demo@localhost", setup: func(t *testing.T, e *localEnv) {
			e.local.Passwd = userdb.NewSystemIDs(filepath.Join(e.dir, "nope"), "")
		},
			status: queue.StatusDeferred, dsn: "4.3.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLocalEnv(t, aliases)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			msg := tc.msg
			if msg == "" {
				msg = localMsg
			}
			r := e.deliver(t, tc.rcpt, msg)
			if r.Status != tc.status || (tc.dsn != "" && r.DSN != tc.dsn) || !strings.Contains(r.Reply, tc.reply) {
				t.Fatalf("got %v %s %q, want %v %s %q", r.Status, r.DSN, r.Reply, tc.status, tc.dsn, tc.reply)
			}
			if tc.check != nil {
				tc.check(t, e)
			}
		})
	}
}

// TestLocalAgent runs the agent under the queue: results per recipient
// and the transport name in the log fields.
func TestLocalAgent(t *testing.T) {
	e := newLocalEnv(t, map[string][]string{"root": {"demo"}})
	q, err := queue.Open(filepath.Join(e.dir, "q"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	env := &queue.Envelope{ID: q.NewID(), Sender: "s@example.org", Recipients: []queue.Recipient{{Address: "root@localhost"}, {Address: "ghost@localhost"}}}
	if err := q.Enqueue(context.Background(), env, strings.NewReader(localMsg)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan []queue.Result, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, queue.AgentFunc(func(ctx context.Context, msg *queue.Message, rcpts []int) []queue.Result {
			rs := e.local.Deliver(ctx, msg, rcpts, "examplehost.example.com")
			select {
			case got <- rs:
			default:
			}
			return rs
		}))
	}()
	var rs []queue.Result
	select {
	case rs = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	cancel()
	<-done
	if len(rs) != 2 || rs[0].Status != queue.StatusSent || rs[1].Status != queue.StatusBounced || rs[0].Transport != "local" || rs[0].Relay != "local" {
		t.Fatalf("results %+v", rs)
	}
	if got := readFile(t, filepath.Join(e.local.MailSpoolDirectory, "demo")); !strings.Contains(got, "Delivered-To: demo@examplehost.example.com") {
		t.Errorf("mbox %q", got)
	}
}

func TestExpandLocal(t *testing.T) {
	vars := map[string]string{"home": "/h/u", "user": "u", "extension": "", "recipient_delimiter": "+"}
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{
		{"$home/.forward${recipient_delimiter}${extension}", "/h/u/.forward+", false},
		{"$home/.forward", "/h/u/.forward", true},
		{"${extension?$home/.forward+$extension}", "", true},
		{"${extension:none}", "none", true},
		{"$$home", "$home", true},
		{"$(home)/x", "/h/u/x", true},
		{"${unclosed", "${unclosed", true},
	} {
		out, ok := expandLocal(tc.in, vars)
		if out != tc.out || ok != tc.ok {
			t.Errorf("expandLocal(%q) = %q, %v; want %q, %v", tc.in, out, ok, tc.out, tc.ok)
		}
	}
}

func TestNewLocal(t *testing.T) {
	cf := "myhostname = mx.example.com\nmyorigin = example.com\nhome_mailbox = Maildir/\nmailbox_size_limit = 1000\n" +
		"allow_mail_to_commands = alias\nluser_relay = $user@other.example\ncommand_time_limit = 2m\nrecipient_delimiter = +\n"
	m, err := postfixconf.ParseMainBytes("main.cf", []byte(cf))
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLocal(m, nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.HomeMailbox != "Maildir/" || l.MailboxSizeLimit != 1000 || l.Myorigin != "example.com" || l.LuserRelay != "$user@other.example" ||
		l.CommandTimeLimit != 2*time.Minute || strings.Join(l.AllowCommands, ",") != "alias" || strings.Join(l.AllowFiles, ",") != "alias,forward" ||
		l.DefaultPrivs != "nobody" || l.DoubleBounceSender != "double-bounce" || !l.OwnerRequestSpecial || l.MailSpoolDirectory != "/var/mail" ||
		strings.Join(l.ForwardPath, "|") != "$home/.forward${recipient_delimiter}${extension}|$home/.forward" {
		t.Errorf("%+v", l)
	}
	for _, bad := range []string{"allow_mail_to_files = alias, pipes\n", "local_command_shell = sh\n", "command_time_limit = soon\n"} {
		m, err := postfixconf.ParseMainBytes("main.cf", []byte(bad))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewLocal(m, nil, nil, nil, nil); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSplitForwardPath(t *testing.T) {
	for in, want := range map[string]string{
		"$home/.forward${recipient_delimiter}${extension}, $home/.forward": "$home/.forward${recipient_delimiter}${extension}|$home/.forward",
		"${extension?$home/a, $home/b} /x":                                 "${extension?$home/a, $home/b}|/x",
		"":                                                                 "",
	} {
		if got := strings.Join(splitForwardPath(in), "|"); got != want {
			t.Errorf("splitForwardPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalDefaultPrivsMissing(t *testing.T) {
	e := newLocalEnv(t, map[string][]string{"cmd": {"|true"}})
	e.local.DefaultPrivs = "ghost"
	if r := e.deliver(t, "cmd@localhost", localMsg); r.Status != queue.StatusDeferred || r.DSN != "4.3.5" || !strings.Contains(r.Reply, `default_privs user "ghost"`) {
		t.Errorf("%+v", r)
	}
}

// passAgent stands for the LMTP agent behind mailbox_transport.
type passAgent struct {
	nexthop string
	envs    []queue.Envelope
}

func (a *passAgent) Deliver(_ context.Context, msg *queue.Message, rcpts []int, nexthop string) []queue.Result {
	a.nexthop = nexthop
	a.envs = append(a.envs, msg.Envelope)
	return []queue.Result{{Rcpt: rcpts[0], Status: queue.StatusSent, DSN: "2.0.0", Reply: "250 2.0.0 Ok", Relay: "private/dovecot-lmtp"}}
}

func TestLocalMailboxTransport(t *testing.T) {
	e := newLocalEnv(t, map[string][]string{"root": {"demo"}, "nobody": {"/dev/null"}})
	lmtp := &passAgent{}
	e.local.MailboxTransport = "lmtp:unix:private/dovecot-lmtp"
	e.local.Agents = map[string]Agent{"lmtp": lmtp}
	for _, rcpt := range []string{"root@localhost", "ghost@localhost"} {
		if r := e.deliver(t, rcpt, localMsg); r.Status != queue.StatusSent || r.Relay != "private/dovecot-lmtp" {
			t.Fatalf("%s: %+v", rcpt, r)
		}
	}
	if lmtp.nexthop != "unix:private/dovecot-lmtp" || len(lmtp.envs) != 2 ||
		lmtp.envs[0].Recipients[0].Address != "demo@examplehost.example.com" || lmtp.envs[0].Sender != "sender@example.org" ||
		lmtp.envs[1].Recipients[0].Address != "ghost@localhost" {
		t.Errorf("passed %q %+v", lmtp.nexthop, lmtp.envs)
	}
	// Aliases still apply before the mailbox transport.
	if r := e.deliver(t, "nobody@localhost", localMsg); r.Status != queue.StatusSent || r.Reply != "delivered to file: /dev/null" || len(lmtp.envs) != 2 {
		t.Errorf("/dev/null: %+v", r)
	}
	e.local.Agents = nil
	if r := e.deliver(t, "demo@localhost", localMsg); r.Status != queue.StatusDeferred || !strings.Contains(r.Reply, "mail transport unavailable") {
		t.Errorf("no agent: %+v", r)
	}
}

// TestLocalFilePermissions: a spool like /var/mail (root's, mode 0775)
// still takes the user's mailbox, created by the agent; a /file
// destination is written only where its user could write it.
func TestLocalFilePermissions(t *testing.T) {
	if !processIsRoot() {
		t.Skip("permission emulation applies when running as root")
	}
	e := newLocalEnv(t, nil)
	if err := os.Chmod(e.local.MailSpoolDirectory, 0o775); err != nil {
		t.Fatal(err)
	}
	if r := e.deliver(t, "demo@localhost", localMsg); r.Status != queue.StatusSent {
		t.Fatalf("spool mailbox: %+v", r)
	}
	private := filepath.Join(e.dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	e.local.Aliases = mapTable{"secret": {filepath.Join(private, "archive")}, "shared": {filepath.Join(e.local.MailSpoolDirectory, "shared")}}
	for _, rcpt := range []string{"secret@localhost", "shared@localhost"} {
		if r := e.deliver(t, rcpt, localMsg); r.Status != queue.StatusDeferred || !strings.Contains(r.Reply, "uid") {
			t.Errorf("%s: %+v, want a deferral for permissions", rcpt, r)
		}
	}
	if _, err := os.Stat(filepath.Join(private, "archive")); !os.IsNotExist(err) {
		t.Errorf("file written where default_privs may not write: %v", err)
	}
}
