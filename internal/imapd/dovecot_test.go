package imapd

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"postcote/internal/maillog"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postcote/internal/mailstore"
)

// dovecotIMAP is Debian's dovecot-imapd binary, run in PREAUTH mode on
// stdin/stdout as user nobody against a Maildir postcote wrote.
const dovecotIMAP = "/usr/lib/dovecot/imap"

// TestDovecotAgrees fetches ENVELOPE, BODYSTRUCTURE and BODY of the
// structureCases from Dovecot and from postcote on the same Maildir and
// compares the answers byte for byte. Skipped without Dovecot or root.
func TestDovecotAgrees(t *testing.T) {
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
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	maildir := filepath.Join(dir, "Maildir")
	conf := fmt.Sprintf("mail_location = maildir:%s\nbase_dir = %s/run\nstate_dir = %s/state\nlog_path = /dev/stderr\nssl = no\n"+
		"namespace inbox {\n  inbox = yes\n  separator = /\n}\n", maildir, dir, dir)
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	u := mailstore.User{Name: "nobody", Home: dir, MailLocation: "maildir:" + maildir, UID: uid, GID: gid}
	store := mailstore.NewStore(mailstore.Options{Hostname: "test"})
	for _, tc := range structureCases {
		if err := store.Deliver(context.Background(), u, "INBOX", nil, strings.NewReader(tc.msg)); err != nil {
			t.Fatal(err)
		}
	}
	for _, fetch := range []string{
		"b FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY)",
		"b FETCH 1:* (BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2] BODY.PEEK[2.MIME] BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT])",
		"b FETCH 1:* (BODY.PEEK[2.1] BODY.PEEK[2.1.1] BODY.PEEK[1.1] BODY.PEEK[3] BODY.PEEK[TEXT]<2.5> BODY.PEEK[HEADER.FIELDS (Subject To)])",
		"b FETCH 1:* (BODY.PEEK[HEADER.FIELDS.NOT (Subject To From)] BODY.PEEK[1.HEADER] BODY.PEEK[1.TEXT] BODY.PEEK[2.2] BODY.PEEK[2.1.MIME])",
	} {
		t.Run(fetch[len("b FETCH 1:* "):], func(t *testing.T) { compareWithDovecot(t, dir, uid, gid, store, u, fetch) })
	}
}

// compareWithDovecot runs one FETCH on Dovecot and on postcote.
func compareWithDovecot(t *testing.T, dir string, uid, gid int, store mailstore.Store, u mailstore.User, fetch string) {

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dovecotIMAP, "-c", filepath.Join(dir, "dovecot.conf"))
	cmd.Env = []string{"USER=nobody", "HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Stdin = strings.NewReader("a EXAMINE INBOX\r\n" + fetch + "\r\nc LOGOUT\r\n")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("dovecot imap: %v\n%s\n%s", err, out.String(), errb.String())
	}
	dovecot := fetchResponses(out.String())

	ts := serveWith(t, New(Options{AllowPlaintextAuth: true, Logger: newTestLogger(&maillog.Buffer{})}, store, testChecker{}, fixedUser{u}))
	rc := dialRaw(t, ts.addr)
	rc.login()
	rc.send("a EXAMINE INBOX\r\n")
	rc.until("a ")
	rc.send(fetch + "\r\n")
	ours := fetchResponses(rc.untilRaw("b "))

	if len(dovecot) != len(structureCases) || len(ours) != len(structureCases) {
		t.Fatalf("got %d answers from Dovecot, %d from postcote:\n%s\n%q", len(dovecot), len(ours), out.String(), ours)
	}
	for i, tc := range structureCases {
		if dovecot[i] != ours[i] {
			t.Errorf("%s differs\ndovecot:  %q\npostcote: %q", tc.name, dovecot[i], ours[i])
		}
	}
}

// fixedUser maps every login to one mail user.
type fixedUser struct{ u mailstore.User }

func (f fixedUser) LookupUser(ctx context.Context, service, user string) (mailstore.User, error) {
	return f.u, nil
}

// fetchResponses splits an IMAP transcript into its "* n FETCH" responses
// (literals included).
func fetchResponses(s string) []string {
	var out []string
	for _, chunk := range strings.Split("\r\n"+s, "\r\n* ") {
		if i := strings.Index(chunk, " FETCH ("); i > 0 && !strings.Contains(chunk[:i], " ") {
			if j := strings.Index(chunk, "\r\nb OK"); j >= 0 {
				chunk = chunk[:j]
			}
			out = append(out, strings.TrimSuffix(chunk, "\r\n"))
		}
	}
	return out
}
