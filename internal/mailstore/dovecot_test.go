package mailstore

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// dovecotIMAP is the imap binary of Debian's dovecot-imapd package. The
// interoperability test runs it in PREAUTH mode on stdin/stdout, as the
// unprivileged user nobody (Dovecot refuses root), against the Maildir
// postcote wrote.
const dovecotIMAP = "/usr/lib/dovecot/imap"

type dovecotEnv struct {
	dir      string // Dovecot's config and state
	maildir  string
	opts     string // mail_location options
	uid, gid int
}

func newDovecotEnv(t *testing.T) *dovecotEnv { return newDovecotEnvOpts(t, "") }

// newDovecotEnvOpts sets up Dovecot with extra mail_location options such
// as ":LAYOUT=fs".
func newDovecotEnvOpts(t *testing.T, opts string) *dovecotEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("runs Dovecot: skipped with -short")
	}
	if _, err := os.Stat(dovecotIMAP); err != nil {
		t.Skip("Dovecot not installed (apt-get install dovecot-imapd)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run Dovecot as nobody")
	}
	nob, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nob.Uid)
	gid, _ := strconv.Atoi(nob.Gid)
	dir := t.TempDir()
	// Let nobody reach the directory: open up the test's own temp dirs.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	env := &dovecotEnv{dir: dir, maildir: filepath.Join(dir, "Maildir"), opts: opts, uid: uid, gid: gid}
	conf := fmt.Sprintf(`mail_location = maildir:%s`+opts+`
base_dir = %s/run
state_dir = %s/state
log_path = /dev/stderr
ssl = no
namespace inbox {
  inbox = yes
  separator = /
}
`, env.maildir, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return env
}

func (e *dovecotEnv) user() User {
	return User{Name: "nobody", Home: e.dir, MailLocation: "maildir:" + e.maildir + e.opts, UID: e.uid, GID: e.gid}
}

// run sends an IMAP script to Dovecot and returns its answer.
func (e *dovecotEnv) run(t *testing.T, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotIMAP, "-c", filepath.Join(e.dir, "dovecot.conf"))
	cmd.Env = []string{"USER=nobody", "HOME=" + e.dir, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(e.uid), Gid: uint32(e.gid)}}
	cmd.Stdin = strings.NewReader(strings.ReplaceAll(script, "\n", "\r\n") + "Z LOGOUT\r\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("dovecot imap: %v\n%s\n%s", err, out.String(), errb.String())
	}
	if strings.Contains(errb.String(), "Error") || strings.Contains(errb.String(), "Panic") {
		t.Errorf("dovecot logged errors:\n%s", errb.String())
	}
	return out.String()
}

func mustContain(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("Dovecot's answer lacks %q:\n%s", w, out)
		}
	}
}

// TestDovecotInterop: postcote writes, Dovecot reads the same Maildir
// and agrees on UIDs, flags, keywords, folders and subscriptions; then
// Dovecot changes it and postcote sees the changes.
func TestDovecotInterop(t *testing.T) {
	for _, opts := range []string{"", ":LAYOUT=fs", ":LAYOUT=fs:DIRNAME=mAildir:CONTROL=~/control", ":CONTROL=~/control:INDEX=~/index", ":LAYOUT=fs:CONTROL=~/control"} {
		t.Run("maildir"+opts, func(t *testing.T) { testDovecotInterop(t, opts) })
	}
}

func testDovecotInterop(t *testing.T, opts string) {
	env := newDovecotEnvOpts(t, opts)
	ctx := context.Background()
	s := NewStore(Options{Hostname: "pc.example"})
	u := env.user()
	for i := 0; i < 2; i++ {
		if err := s.Deliver(ctx, u, "INBOX", nil, strings.NewReader(fmt.Sprintf("Subject: m%d\r\n\r\nbody %d\r\n", i, i))); err != nil {
			t.Fatal(err)
		}
	}
	a := openAcct(t, s, u)
	if err := a.Create(ctx, "Archive/2024", ""); err != nil {
		t.Fatal(err)
	}
	if err := a.Create(ctx, "Sent", `\Sent`); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(ctx, "Sent"); err != nil {
		t.Fatal(err)
	}
	if err := a.Subscribe(ctx, "Archive/2024"); err != nil {
		t.Fatal(err)
	}
	sentUV, _, err := a.Append(ctx, "Sent", []string{FlagSeen, "$Label1"}, time.Time{}, strings.NewReader("Subject: sent\r\n\r\nx\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := a.Select(ctx, "INBOX", false)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	if _, _, err := mb.Store(ctx, []uint32{1}, FlagsAdd, []string{FlagFlagged, "Work"}, 0); err != nil {
		t.Fatal(err)
	}
	uv := mb.UIDValidity()

	// Files postcote made belong to the user.
	sentDir := filepath.Join(env.maildir, ".Sent")
	if strings.Contains(opts, "DIRNAME") {
		sentDir = filepath.Join(env.maildir, "Sent", "mAildir")
	} else if strings.Contains(opts, "fs") {
		sentDir = filepath.Join(env.maildir, "Sent")
	}
	st, err := os.Stat(filepath.Join(sentDir, "cur"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != env.uid || st.Mode().Perm() != 0o700 {
		t.Errorf(".Sent/cur owner %d mode %v", sys.Uid, st.Mode().Perm())
	}

	out := env.run(t, `A LIST "" "*"
B LSUB "" "*"
C SELECT INBOX
D UID FETCH 1:* (FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (SUBJECT)])
E EXAMINE Sent
F UID FETCH 1:* (FLAGS)
G SELECT INBOX
H UID STORE 2 +FLAGS (\Answered Dovecot)
I APPEND INBOX (\Draft) {22+}
Subject: dc

from dc
J CREATE Fromdovecot
`)
	mustContain(t, out,
		`* LIST (\HasNoChildren) "/" INBOX`,
		`"/" Archive/2024`,
		`"/" Sent`,
		`* LSUB () "/" Sent`,
		`* LSUB () "/" Archive/2024`,
		fmt.Sprintf("[UIDVALIDITY %d]", uv),
		"* 2 EXISTS",
		"UID 1 FLAGS (\\Flagged Work)",
		fmt.Sprintf("RFC822.SIZE %d", len("Subject: m0\r\n\r\nbody 0\r\n")),
		"Subject: m1",
		fmt.Sprintf("[UIDVALIDITY %d]", sentUV),
		"UID 1 FLAGS (\\Seen $Label1)",
		"H OK",
		"[APPENDUID "+strconv.Itoa(int(uv))+" 3]",
		"J OK",
	)

	// The open session sees Dovecot's changes at its next Poll.
	up, err := mb.Poll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(up.Changed) != 1 || up.Changed[0].UID != 2 || !slices.Contains(up.Changed[0].Flags, FlagAnswered) || !slices.Contains(up.Changed[0].Flags, "Dovecot") {
		t.Errorf("Poll changed = %+v", up.Changed)
	}
	if len(up.New) != 1 || up.New[0].UID != 3 || !slices.Contains(up.New[0].Flags, FlagDraft) {
		t.Errorf("Poll new = %+v", up.New)
	}
	if got := readAll(t, mb, 3); got != "Subject: dc\r\n\r\nfrom dc" {
		t.Errorf("Dovecot's message reads %q", got)
	}
	list, err := a.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range list {
		names = append(names, l.Name)
		if l.Name == "Sent" && !slices.Contains(l.Attributes, `\Sent`) {
			t.Errorf("Sent lacks \\Sent: %v", l.Attributes)
		}
	}
	if !slices.Equal(names, []string{"INBOX", "Archive", "Archive/2024", "Fromdovecot", "Sent"}) {
		t.Errorf("List = %v", names)
	}

	// postcote expunges and delivers again; Dovecot agrees on the UIDs.
	if _, _, err := mb.Store(ctx, []uint32{1}, FlagsAdd, []string{FlagDeleted}, 0); err != nil {
		t.Fatal(err)
	}
	if gone, err := mb.Expunge(ctx, nil); err != nil || !slices.Equal(gone, []uint32{1}) {
		t.Fatalf("Expunge = %v %v", gone, err)
	}
	if err := s.Deliver(ctx, u, "INBOX", []string{FlagSeen}, strings.NewReader("Subject: m4\r\n\r\n4\r\n")); err != nil {
		t.Fatal(err)
	}
	out = env.run(t, "A SELECT INBOX\nB UID FETCH 1:* (FLAGS)\n")
	mustContain(t, out, "* 3 EXISTS", "UIDNEXT 5", "UID 2 FLAGS (\\Answered Dovecot)", "UID 3 FLAGS (\\Draft)", "UID 4 FLAGS (\\Seen)")
	if regexp.MustCompile(`UID 1 `).MatchString(out) {
		t.Errorf("Dovecot still sees UID 1:\n%s", out)
	}
}

// TestDovecotConcurrentDelivery: Dovecot's LDA and postcote deliver to
// the same INBOX at the same time. Both follow the dovecot-uidlist lock
// protocol, so every message is there once with its own UID, and both
// programs agree on the UIDs.
func TestDovecotConcurrentDelivery(t *testing.T) {
	env := newDovecotEnv(t)
	lda := "/usr/lib/dovecot/dovecot-lda"
	if _, err := os.Stat(lda); err != nil {
		t.Skip("no dovecot-lda")
	}
	ctx := context.Background()
	s := NewStore(Options{})
	u := env.user()
	openAcct(t, s, u)
	const procs, each = 3, 6
	errs := make(chan error, 2*procs*each)
	var wg sync.WaitGroup
	for p := 0; p < procs; p++ {
		wg.Add(2)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				cmd := exec.Command(lda, "-c", filepath.Join(env.dir, "dovecot.conf"))
				cmd.Env = []string{"USER=nobody", "HOME=" + env.dir, "PATH=/usr/bin:/bin"}
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(env.uid), Gid: uint32(env.gid)}}
				cmd.Stdin = strings.NewReader(fmt.Sprintf("Subject: dovecot %d-%d\n\nbody\n", p, i))
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("dovecot-lda: %v: %s", err, out)
				} else if strings.Contains(string(out), "Error") {
					errs <- fmt.Errorf("dovecot-lda: %s", out)
				}
			}
		}(p)
		go func(p int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := s.Deliver(ctx, u, "INBOX", nil, strings.NewReader(fmt.Sprintf("Subject: postcote %d-%d\r\n\r\nbody\r\n", p, i))); err != nil {
					errs <- err
				}
			}
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	mb, err := openAcct(t, NewStore(Options{}), u).Select(ctx, "INBOX", true)
	if err != nil {
		t.Fatal(err)
	}
	defer mb.Close()
	msgs := mb.Messages()
	subjects := map[string]bool{}
	for _, m := range msgs {
		body := readAll(t, mb, m.UID)
		subj, _, _ := strings.Cut(body, "\r\n")
		if subjects[subj] {
			t.Errorf("%s twice", subj)
		}
		subjects[subj] = true
	}
	if len(msgs) != 2*procs*each || len(subjects) != 2*procs*each {
		t.Fatalf("%d messages, %d distinct; want %d", len(msgs), len(subjects), 2*procs*each)
	}
	out := env.run(t, "A EXAMINE INBOX\nB UID SEARCH ALL\n")
	var ours []string
	for _, m := range msgs {
		ours = append(ours, strconv.Itoa(int(m.UID)))
	}
	mustContain(t, out, fmt.Sprintf("* %d EXISTS", len(msgs)), "* SEARCH "+strings.Join(ours, " ")+"\r\n")
}
