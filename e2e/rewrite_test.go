package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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
	waitText(t, 10*time.Second, p.Log, want)
}

// waitText polls read until its text contains every one of want, and
// fails the test with the text (and what is missing) after timeout.
func waitText(t *testing.T, timeout time.Duration, read func() string, want ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		text := read()
		missing := ""
		for _, w := range want {
			if !strings.Contains(text, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after %v in:\n%s", missing, timeout, text)
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
	p.Start()

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
	p.Start()

	smtpSend(t, p, "root@host.example.com", p.User,
		"From: Cron Daemon <root@host.example.com>\r\nTo: root@host.example.com\r\nSubject: cron\r\n\r\nroot@host.example.com stays in the body\r\n")
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

// guideFile copies one of the guides' map files that internal/lookup's
// tests keep, with only host names, ports and paths replaced.
func guideFile(t *testing.T, p *testenv.Postcote, name string, repl ...string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "internal", "lookup", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, p, strings.ReplaceAll(name, "/", "-"), strings.NewReplacer(repl...).Replace(string(data)))
}

// mailUID is the owner the tests give virtual mailboxes: guide 001's
// uid 20000 when running as root, else the test's own uid.
func mailUID(t *testing.T) int {
	if os.Getuid() == 0 {
		return 20000
	}
	return os.Getuid()
}

// ownerOf returns a file's uid.
func ownerOf(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return int(fi.Sys().(*syscall.Stat_t).Uid)
}

// TestGuide000MySQLGroupAlias: guide 000's virtual_alias_maps in
// MariaDB; mail to group@lego.dk reaches its three members' mailboxes.
func TestGuide000MySQLGroupAlias(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MariaDB")
	}
	m := testenv.StartMariaDB(t)
	m.CreateDatabase("postfix", "postfix_user", "Passw0rd")
	schema, err := os.ReadFile(filepath.Join("..", "internal", "lookup", "testdata", "g000", "schema.sql"))
	if err != nil {
		t.Fatal(err)
	}
	m.Exec(string(schema))
	p := testenv.NewDev(t)
	aliases := guideFile(t, p, "g000/virtual_alias_maps", "hosts = 127.0.0.1", fmt.Sprintf("hosts = inet:127.0.0.1:%d", m.Port))
	if got := strings.TrimSpace(postmap(t, "-q", "group@lego.dk", "mysql:"+aliases)); got != "noah@lego.dk,johan@lego.dk,magnus@lego.dk" {
		t.Fatalf("postmap -q group@lego.dk = %q", got)
	}
	base := filepath.Join(p.Dir, "vmail")
	uid := strconv.Itoa(mailUID(t))
	setMain(t, p, "virtual_mailbox_domains", "lego.dk")
	setMain(t, p, "virtual_alias_maps", "mysql:"+aliases)
	setMain(t, p, "virtual_mailbox_base", base)
	setMain(t, p, "virtual_mailbox_maps", "inline:{noah@lego.dk=lego.dk/noah/, johan@lego.dk=lego.dk/johan/, magnus@lego.dk=lego.dk/magnus/}")
	setMain(t, p, "virtual_uid_maps", "static:"+uid)
	setMain(t, p, "virtual_gid_maps", "static:"+uid)
	p.Start()

	if err := sendPlain(testenv.Addr(p.Ports.SMTP), "sender@client.example", "group@lego.dk", "to-group", "hello all"); err != nil {
		t.Fatalf("send: %v\n%s", err, p.Log())
	}
	for _, u := range []string{"noah", "johan", "magnus"} {
		msg := messageFiles(t, filepath.Join(base, "lego.dk", u), 1)[0]
		if !strings.Contains(msg, "Delivered-To: "+u+"@lego.dk") {
			t.Errorf("%s got:\n%s", u, msg)
		}
		waitLog(t, p, "to=<"+u+"@lego.dk>, orig_to=<group@lego.dk>")
	}
	if err := rcptReply(t, p.Ports.SMTP, "nobody@lego.dk"); !replyIs(err, "550 5.1.1") {
		t.Errorf("RCPT to an unknown lego.dk user: %v, want 550 5.1.1", err)
	}
}

// TestGuide001LDAPMaps: guide 001's LDAP maps. info@example.org is in a
// virtual alias domain found in LDAP, its maildrop mail000@mx.example.com
// is in a virtual mailbox domain, and the message lands in
// /home/mail/mail000/mailbox/ (under a temporary virtual_mailbox_base)
// owned by uid 20000 from virtual_uid_maps.
func TestGuide001LDAPMaps(t *testing.T) {
	if testing.Short() {
		t.Skip("starts slapd")
	}
	ldif, err := os.ReadFile(filepath.Join("..", "internal", "lookup", "testdata", "g001", "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	s := testenv.StartSlapd(t, testenv.SlapdOptions{
		ExtraSchema: []string{filepath.Join("..", "internal", "lookup", "testdata", "g001", "postfix-schema.ldif")},
		ACL: []string{
			`to attrs=userPassword by self =xw by anonymous auth by * none`,
			`to dn.subtree="ou=Mail,dc=example,dc=com" by dn.base="cn=mailAccountReader,ou=Manager,dc=example,dc=com" read by * none`,
		},
		Indexes: []string{"mailacceptinggeneralid eq,sub", "maildrop eq", "uid eq"},
		LDIF:    []string{string(ldif)},
	})
	p := testenv.NewDev(t)
	repl := []string{"ldap://ldap.example.com", s.URI, "/etc/ldap/tls/CA.pem", s.CAFile}
	maps := map[string]string{}
	for _, name := range []string{"virtual_alias_domains", "virtual_alias_maps", "virtual_mailbox_maps", "virtual_uid_maps"} {
		maps[name] = "ldap:" + guideFile(t, p, "g001/"+name, repl...)
	}
	if os.Getuid() != 0 {
		t.Skip("guide 001 delivers as uid 20000: needs root")
	}
	base := filepath.Join(p.Dir, "root")
	setMain(t, p, "myhostname", "mx.example.com")
	setMain(t, p, "virtual_alias_domains", maps["virtual_alias_domains"])
	setMain(t, p, "virtual_mailbox_domains", "$myhostname")
	setMain(t, p, "virtual_alias_maps", maps["virtual_alias_maps"])
	setMain(t, p, "virtual_mailbox_base", base)
	setMain(t, p, "virtual_mailbox_maps", maps["virtual_mailbox_maps"])
	setMain(t, p, "virtual_uid_maps", maps["virtual_uid_maps"])
	setMain(t, p, "virtual_gid_maps", maps["virtual_uid_maps"])
	p.Start()

	if err := sendPlain(testenv.Addr(p.Ports.SMTP), "sender@client.example", "info@example.org", "to-info", "hello"); err != nil {
		t.Fatalf("send: %v\n%s", err, p.Log())
	}
	box := filepath.Join(base, "home", "mail", "mail000", "mailbox")
	msg := messageFiles(t, box, 1)[0]
	if !strings.Contains(msg, "Delivered-To: mail000@mx.example.com") {
		t.Errorf("delivered:\n%s", msg)
	}
	if got := ownerOf(t, box); got != 20000 {
		t.Errorf("%s owned by uid %d, want 20000", box, got)
	}
	waitLog(t, p, "to=<mail000@mx.example.com>, orig_to=<info@example.org>")
	for _, tc := range []struct{ rcpt, reply string }{
		{"nobody@example.org", "550 5.1.1"},    // alias domain, no alias
		{"nobody@mx.example.com", "550 5.1.1"}, // mailbox domain, not in virtual_mailbox_maps
	} {
		if err := rcptReply(t, p.Ports.SMTP, tc.rcpt); !replyIs(err, tc.reply) {
			t.Errorf("RCPT %s: %v, want %s", tc.rcpt, err, tc.reply)
		}
	}
}

// TestGuide004CanonicalForSendmail: cron's mail, submitted with sendmail
// rather than SMTP, is rewritten by the same canonical map (guide 004's
// purpose: root@host.example.com leaves as root+host@example.com).
func TestGuide004CanonicalForSendmail(t *testing.T) {
	p := testenv.NewDev(t)
	re := writeFile(t, p, "canonical.regexp", "/^([^@]*)@([a-zA-Z0-9]*)\\.(example\\.com)/ ${1}+${2}@${3}\n")
	setMain(t, p, "canonical_classes", "envelope_sender, header_sender, header_recipient")
	setMain(t, p, "canonical_maps", "regexp:"+re)
	p.Start()
	msg := "From: Cron Daemon <root@host.example.com>\nTo: " + p.User + "\nSubject: cron via sendmail\n\nbody\n"
	if _, errOut, code := tool(t, p, msg, "sendmail", "-f", "root@host.example.com", p.User); code != 0 {
		t.Fatalf("sendmail: exit %d: %s", code, errOut)
	}
	got := messageFiles(t, maildir(p), 1)[0]
	for _, want := range []string{
		"Return-Path: <root+host@example.com>",
		"From: Cron Daemon <root+host@example.com>",
		"Subject: cron via sendmail",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("message lacks %q:\n%s\nserver log:\n%s", want, got, p.Log())
		}
	}
}
