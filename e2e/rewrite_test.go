package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// This file checks address rewriting end to end with each guide's map
// files (host names and paths changed to the dev configuration's):
// guide 003's hash: virtual map, guide 004's canonical regexp, guide
// 000's MariaDB group alias and guide 001's LDAP maps.

// writeFile writes a map file into the server's folder.
func writeFile(t *testing.T, p *testenv.Postcote, name, content string) string {
	t.Helper()
	path := filepath.Join(p.Dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// start starts the server. It makes spool/private first: the auth
// listener of this build does not create it yet (see the report).
func start(t *testing.T, p *testenv.Postcote) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(p.Dir, "spool", "private"), 0o700); err != nil {
		t.Fatal(err)
	}
	p.Start()
}

// postmap runs `postcote postmap args...` and returns its output.
func postmap(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.Binary(t), append([]string{"postmap"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("postcote postmap %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// messageFiles returns the contents of the messages in a Maildir.
func messageFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	waitForFiles(t, dir, n)
	var out []string
	for _, sub := range []string{"new", "cur"} {
		entries, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	return out
}

// waitLog waits until the server's log has a line containing want.
func waitLog(t *testing.T, p *testenv.Postcote, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log after 10 s:\n%s", want, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rcptReply returns the server's reply to RCPT TO:<to> (nil for 2xx).
func rcptReply(t *testing.T, port int, to string) error {
	t.Helper()
	c := smtpDial(t, port)
	defer c.Close()
	if err := c.Mail("sender@client.example"); err != nil {
		t.Fatal(err)
	}
	return c.Rcpt(to)
}

// TestGuide003VirtualHashMap: guide 003's /etc/postfix/virtual sends
// postmaster@ (and admin@, mailer-daemon@, root@) to info@, through a
// hash: map that postmap indexed; unknown users of the domain are
// refused at RCPT with 550 5.1.1.
func TestGuide003VirtualHashMap(t *testing.T) {
	p := testenv.NewDev(t)
	_, domain, _ := strings.Cut(p.User, "@")
	info := p.User // the guide's info@mail.example.jp
	virtual := writeFile(t, p, "virtual", strings.NewReplacer("info@mail.example.jp", info, "mail.example.jp", domain).Replace(
		"admin@mail.example.jp info@mail.example.jp\n"+
			"mailer-daemon@mail.example.jp info@mail.example.jp\n"+
			"postmaster@mail.example.jp info@mail.example.jp\n"+
			"root@mail.example.jp info@mail.example.jp\n"))
	postmap(t, virtual)
	if got := strings.TrimSpace(postmap(t, "-q", "postmaster@"+domain, "hash:"+virtual)); got != info {
		t.Fatalf("postmap -q postmaster@%s = %q, want %q", domain, got, info)
	}
	setMain(t, p, "virtual_alias_maps", "hash:"+virtual)
	start(t, p)

	if err := sendPlain(testenv.Addr(p.Ports.SMTP), "sender@client.example", "postmaster@"+domain, "to-postmaster", "hello"); err != nil {
		t.Fatalf("send: %v\n%s", err, p.Log())
	}
	msgs := messageFiles(t, maildir(p), 1)
	if !strings.Contains(msgs[0], "Delivered-To: "+info) || !strings.Contains(msgs[0], "To: <postmaster@"+domain+">") {
		t.Errorf("delivered message:\n%s", msgs[0])
	}
	waitLog(t, p, "to=<"+info+">, orig_to=<postmaster@"+domain+">")
	err := rcptReply(t, p.Ports.SMTP, "nobody@"+domain)
	if !replyIs(err, "550 5.1.1") {
		t.Errorf("RCPT to an unknown user: %v, want 550 5.1.1", err)
	}
}

// TestGuide004CanonicalRegexp: guide 004's canonical.regexp with
// canonical_classes = envelope_sender, header_sender, header_recipient
// rewrites root@host.example.com to root+host@example.com in the
// envelope sender and the From header, and leaves the envelope
// recipient alone.
func TestGuide004CanonicalRegexp(t *testing.T) {
	p := testenv.NewDev(t)
	re := writeFile(t, p, "canonical.regexp", "/^([^@]*)@([a-zA-Z0-9]*)\\.(example\\.com)/ ${1}+${2}@${3}\n")
	setMain(t, p, "canonical_classes", "envelope_sender, header_sender, header_recipient")
	setMain(t, p, "canonical_maps", "regexp:"+re)
	start(t, p)

	c := smtpDial(t, p.Ports.SMTP)
	defer c.Close()
	if err := c.Mail("root@host.example.com"); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt(p.User); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("From: Cron Daemon <root@host.example.com>\r\nTo: root@host.example.com\r\nSubject: cron\r\n\r\nroot@host.example.com stays in the body\r\n"))
	if err := w.Close(); err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	c.Quit()
	msg := messageFiles(t, maildir(p), 1)[0]
	for _, want := range []string{
		"Return-Path: <root+host@example.com>",
		"From: Cron Daemon <root+host@example.com>",
		"To: root+host@example.com",
		"Delivered-To: " + p.User,
		"root@host.example.com stays in the body",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
}
