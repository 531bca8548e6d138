package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// systemUser creates a real system user (useradd) whose home is home,
// and removes it when the test ends. local(8) reads /etc/passwd itself,
// so this needs root; the test is skipped otherwise.
func systemUser(t *testing.T, home string) (name string, uid, gid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("creating a system user for local delivery needs root")
	}
	needTool(t, "useradd")
	needTool(t, "userdel")
	b := make([]byte, 4)
	rand.Read(b)
	name = "pctest" + hex.EncodeToString(b)
	if out, err := exec.Command("useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", "-U", name).CombinedOutput(); err != nil {
		t.Skipf("useradd: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
	})
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	return name, uid, gid
}

// TestSendmailToRootThroughAlias: guide 004's local delivery. `echo body
// | postcote sendmail root` with "root: USER" in alias_maps =
// hash:…/aliases (built by `postcote newaliases`) and home_mailbox =
// Maildir/ lands in the system user's ~/Maildir, owned by that user.
func TestSendmailToRootThroughAlias(t *testing.T) {
	p := testenv.NewDev(t)
	home := filepath.Join(p.Dir, "home", "localuser")
	name, uid, _ := systemUser(t, home)
	aliases := filepath.Join(p.Dir, "aliases")
	src := "# See man 5 aliases for format\nroot: " + name + "\nmailer-daemon: postmaster\nabuse: root\npostmaster: root\n"
	if err := os.WriteFile(aliases, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	// Guide 004's main.cf, its paths moved into the test folder.
	setMain(t, p, "myorigin", "$myhostname")
	setMain(t, p, "mydestination", "$myhostname, localhost.$mydomain, localhost")
	setMain(t, p, "alias_maps", "hash:"+aliases)
	setMain(t, p, "alias_database", "hash:"+aliases)
	setMain(t, p, "home_mailbox", "Maildir/")
	setMain(t, p, "mailbox_size_limit", "0")
	if _, errOut, code := tool(t, p, "", "newaliases"); code != 0 {
		t.Fatalf("newaliases: exit %d: %s", code, errOut)
	}
	p.Start()
	if _, errOut, code := tool(t, p, "Subject: to-root\n\nbody\n", "sendmail", "root"); code != 0 {
		t.Fatalf("sendmail root: exit %d: %s", code, errOut)
	}
	md := filepath.Join(home, "Maildir")
	got := waitForFiles(t, md, 1)
	if len(got) != 1 || got[0] != "to-root" {
		t.Fatalf("Maildir holds %q, want [to-root]\n%s", got, p.Log())
	}
	files, _ := filepath.Glob(filepath.Join(md, "new", "*"))
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "Delivered-To: "+name+"@localhost") || !strings.Contains(string(b), "\nbody\n") {
		t.Errorf("message:\n%s", b)
	}
	for _, f := range []string{md, filepath.Join(md, "new"), files[0]} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid || fi.Mode().Perm() != want {
			t.Errorf("%s: owner %d mode %v, want %d %v", f, st.Uid, fi.Mode().Perm(), uid, want)
		}
	}
	// The log line follows the delivery, once the result is recorded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		log := p.Log()
		if strings.Contains(log, "to=<root@localhost>, orig_to=<root>, relay=local,") && strings.Contains(log, "status=sent (delivered to maildir)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no local delivery line in the log:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
