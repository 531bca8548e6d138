package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// tool runs `postcote NAME args…` (the subcommand form) with stdin and
// returns stdout, stderr and the exit status.
func tool(t *testing.T, p *testenv.Postcote, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(testenv.Binary(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "MAIL_CONFIG="+p.Dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func sortedEqual(got, want []string) bool {
	got = append([]string(nil), got...)
	want = append([]string(nil), want...)
	sort.Strings(got)
	sort.Strings(want)
	return strings.Join(got, "\n") == strings.Join(want, "\n")
}

// TestSendmailDelivers: `echo body | postcote sendmail -t` and `postcote
// sendmail user@domain < msg` reach the Maildir, with the headers pickup
// adds and without Bcc.
func TestSendmailDelivers(t *testing.T) {
	p := testenv.StartDev(t)
	local, _, _ := strings.Cut(p.User, "@")
	msg := "To: " + local + "\nBcc: " + p.User + "\nSubject: dash-t\n\nbody\n.\nafter the dot\n"
	if _, errOut, code := tool(t, p, msg, "sendmail", "-t", "-i"); code != 0 {
		t.Fatalf("sendmail -t: exit %d: %s", code, errOut)
	}
	if _, errOut, code := tool(t, p, "Subject: argv\n\nbody\n.\nnot sent\n", "sendmail", "-f", "cron@elsewhere.example", "-F", "Cron Daemon", p.User); code != 0 {
		t.Fatalf("sendmail user@domain: exit %d: %s", code, errOut)
	}
	got := waitForFiles(t, maildir(p), 2)
	if !sortedEqual(got, []string{"dash-t", "argv"}) {
		t.Fatalf("mailbox holds %q, want dash-t and argv (a Bcc duplicate would show twice)\n%s", got, p.Log())
	}
	files, _ := filepath.Glob(filepath.Join(maildir(p), "new", "*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		s := string(b)
		hdr, body, _ := strings.Cut(s, "\n\n")
		for _, want := range []string{"\nReceived: by ", " (postcote, from userid ", "\nMessage-Id: <", "\nDate: ", "\nFrom: "} {
			if !strings.Contains(hdr, want) {
				t.Errorf("%s: header lacks %q:\n%s", f, want, hdr)
			}
		}
		if strings.Contains(hdr, "Bcc:") {
			t.Errorf("Bcc kept:\n%s", hdr)
		}
		switch {
		case strings.Contains(hdr, "Subject: dash-t"):
			if !strings.Contains(body, "after the dot") {
				t.Errorf("-i: the message stopped at the dot: %q", body)
			}
		case strings.Contains(hdr, "Subject: argv"):
			if strings.Contains(body, "not sent") {
				t.Errorf("without -i a lone dot must end the message: %q", body)
			}
			if !strings.Contains(hdr, "From: Cron Daemon <cron@elsewhere.example>") || !strings.Contains(s, "Return-Path: <cron@elsewhere.example>") {
				t.Errorf("-f/-F not applied:\n%s", hdr)
			}
		}
	}
}

// TestSendmailUsage: errors get Postfix's message and sysexits status.
func TestSendmailUsage(t *testing.T) {
	p := testenv.NewDev(t)
	for _, tt := range []struct {
		args []string
		in   string
		code int
		msg  string
	}{
		{[]string{"sendmail"}, "x\n", 64, "Recipient addresses must be specified on the command line or via the -t option"},
		{[]string{"sendmail", "-t"}, "Subject: x\n\nx\n", 64, "No recipient addresses found in message header"},
		{[]string{"sendmail", "-Z", "u"}, "x\n", 64, "invalid option"},
		{[]string{"sendmail", "-bd"}, "", 64, "postcote serve"},
		{[]string{"postqueue", "-f"}, "", 69, "postqueue: fatal: Cannot flush mail queue - mail system is down"},
	} {
		_, errOut, code := tool(t, p, tt.in, tt.args...)
		if code != tt.code || !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tt.args, code, errOut, tt.code, tt.msg)
		}
	}
}

// TestSendmailWhileServerDown: sendmail exits 0 with the server stopped,
// and the message is delivered once the server starts: no loss.
func TestSendmailWhileServerDown(t *testing.T) {
	p := testenv.NewDev(t)
	if _, errOut, code := tool(t, p, "Subject: while-down\n\nbody\n", "sendmail", p.User); code != 0 {
		t.Fatalf("sendmail with the server down: exit %d: %s", code, errOut)
	}
	// mailq lists it from the maildrop folder, as showq does.
	if out, _, _ := tool(t, p, "", "mailq"); !strings.Contains(out, "\n"+strings.Repeat(" ", 47)+p.User+"\n") || !strings.Contains(out, "in 1 Request.") {
		t.Errorf("mailq with the server down does not show the waiting message:\n%s", out)
	}
	p.Start()
	got := waitForFiles(t, maildir(p), 1)
	time.Sleep(300 * time.Millisecond) // a duplicate would show by now
	if got = subjectsIn(t, maildir(p)); len(got) != 1 || got[0] != "while-down" {
		t.Errorf("mailbox holds %q, want [while-down]", got)
	}
}

// TestSendmailBS: the -bs SMTP dialogue on standard input and output.
func TestSendmailBS(t *testing.T) {
	p := testenv.StartDev(t)
	in := "EHLO client.example\r\nMAIL FROM:<bs@elsewhere.example>\r\nRCPT TO:<" + p.User + ">\r\nDATA\r\nSubject: via-bs\r\n\r\n..leading dot\r\n.\r\nQUIT\r\n"
	out, errOut, code := tool(t, p, in, "sendmail", "-bs")
	if code != 0 {
		t.Fatalf("sendmail -bs: exit %d: %s", code, errOut)
	}
	var codes []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\r\n") {
		if len(l) > 3 && l[3] == ' ' {
			codes = append(codes, l[:3])
		}
	}
	if strings.Join(codes, " ") != "220 250 250 250 354 250 221" {
		t.Fatalf("dialogue:\n%s", out)
	}
	waitForFiles(t, maildir(p), 1)
	files, _ := filepath.Glob(filepath.Join(maildir(p), "new", "*"))
	b, _ := os.ReadFile(files[0])
	if !strings.Contains(string(b), "\n.leading dot\n") || !strings.Contains(string(b), "Return-Path: <bs@elsewhere.example>") {
		t.Errorf("message:\n%s", b)
	}
}

// TestPostqueuePostsuper: a deferred message shows in postqueue -p in
// Postfix's layout; postsuper -h, -H and -d change it, through the server
// and, with the server stopped, on the spool directly.
func TestPostqueuePostsuper(t *testing.T) {
	p := testenv.NewDev(t)
	setMain(t, p, "defer_transports", "virtual")
	p.Start()
	if _, errOut, code := tool(t, p, "Subject: held\n\nbody\n", "sendmail", "-f", "s@elsewhere.example", p.User); code != 0 {
		t.Fatalf("sendmail: %d %s", code, errOut)
	}
	// Wait for pickup to queue it and the first attempt to defer it.
	line := regexp.MustCompile(`(?m)^([0-9A-Za-z]+)([*! ]?) +(\d+) (\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d) +s@elsewhere\.example$`)
	var id, listing string
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, errOut, code := tool(t, p, "", "postqueue", "-p")
		if code != 0 {
			t.Fatalf("postqueue -p: %d %s", code, errOut)
		}
		if m := line.FindStringSubmatch(out); m != nil && strings.Contains(out, "(") {
			id, listing = m[1], out
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("message never showed as deferred:\n%s\n%s", out, p.Log())
		}
	}
	if !strings.HasPrefix(listing, "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------\n") ||
		!strings.Contains(listing, "\n"+strings.Repeat(" ", 47)+p.User+"\n") || !strings.HasSuffix(listing, "\n-- 0 Kbytes in 1 Request.\n") {
		t.Errorf("listing not in Postfix's layout:\n%s", listing)
	}
	if out, _, _ := tool(t, p, "", "mailq"); !strings.Contains(out, id) {
		t.Errorf("mailq does not show %s:\n%s", id, out)
	}

	_, errOut, code := tool(t, p, "", "postsuper", "-h", id)
	if code != 0 || errOut != fmt.Sprintf("postsuper: %s: placed on hold\npostsuper: Placed on hold: 1 message\n", id) {
		t.Errorf("postsuper -h: %d %q", code, errOut)
	}
	if out, _, _ := tool(t, p, "", "postqueue", "-p"); !strings.Contains(out, id+"!") {
		t.Errorf("held message not marked '!':\n%s", out)
	}
	_, errOut, code = tool(t, p, id+"\n", "postsuper", "-H", "-")
	if code != 0 || errOut != fmt.Sprintf("postsuper: %s: released from hold\npostsuper: Released from hold: 1 message\n", id) {
		t.Errorf("postsuper -H -: %d %q", code, errOut)
	}
	if _, errOut, _ = tool(t, p, "", "postsuper", "-h", "ALL"); !strings.Contains(errOut, "Placed on hold: 1 message") {
		t.Errorf("postsuper -h ALL: %q", errOut)
	}

	// Server down: postqueue reads the spool, postsuper opens it.
	p.Stop()
	out, errOut, _ := tool(t, p, "", "postqueue", "-p")
	if !strings.Contains(errOut, "postqueue: warning: Mail system is down -- accessing queue directly") || !strings.Contains(out, id+"!") {
		t.Errorf("postqueue -p with the server down: %q\n%s", errOut, out)
	}
	_, errOut, code = tool(t, p, "", "postsuper", "-d", "ALL", "hold")
	if code != 0 || errOut != fmt.Sprintf("postsuper: %s: removed\npostsuper: Deleted: 1 message\n", id) {
		t.Errorf("postsuper -d ALL hold: %d %q", code, errOut)
	}
	setMain(t, p, "defer_transports", "")
	p.Start()
	if out, _, _ := tool(t, p, "", "postqueue", "-p"); out != "Mail queue is empty\n" {
		t.Errorf("after delete: %q", out)
	}
	if got := subjectsIn(t, maildir(p)); len(got) != 0 {
		t.Errorf("deleted message delivered: %q", got)
	}
}

// TestMailxReachesMailbox: `mail -s subject user@domain` with Debian's
// bsd-mailx, its sendmail pointed at postcote through a symlink named
// sendmail in a temporary folder (the machine's /usr/sbin/sendmail is not
// touched).
func TestMailxReachesMailbox(t *testing.T) {
	needTool(t, "bsd-mailx")
	p := testenv.StartDev(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "sendmail")
	if err := os.Symlink(testenv.Binary(t), link); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "mailrc")
	if err := os.WriteFile(rc, []byte("set sendmail="+link+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bsd-mailx", "-s", "via mailx", p.User)
	cmd.Stdin = strings.NewReader("body from mailx\n")
	cmd.Env = append(os.Environ(), "MAILRC="+rc, "HOME="+dir, "MAIL_CONFIG="+p.Dir, "PATH="+dir+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Fatalf("mailx: %v\n%s", err, out)
	}
	got := waitForFiles(t, maildir(p), 1)
	if len(got) != 1 || got[0] != "via mailx" {
		t.Fatalf("mailbox holds %q", got)
	}
	if !strings.Contains(p.Log(), "pickup") {
		t.Errorf("the message did not come through pickup:\n%s", p.Log())
	}
}
