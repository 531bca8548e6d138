// Package e2e runs postcote as a real server (the binary, started by
// internal/testenv from a `postcote dev` configuration) and talks to it
// with real clients: Python's smtplib and imaplib, swaks, openssl
// s_client, Go's net/smtp and the go-imap client.
package e2e

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/smtp"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/testenv"
)

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (make test installs it)", name)
	}
}

// setMain appends key = value to main.cf; the last setting of a key wins,
// as in Postfix.
func setMain(t *testing.T, p *testenv.Postcote, key, value string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(p.Dir, "main.cf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s = %s\n", key, value)
}

// maildir is where the dev configuration keeps the demo user's mail.
func maildir(p *testenv.Postcote) string {
	local, domain, _ := strings.Cut(p.User, "@")
	return filepath.Join(p.Dir, "mail", domain, local, "Maildir")
}

func TestSubmitWithSmtplibReadWithImaplib(t *testing.T) {
	needTool(t, "python3")
	p := testenv.StartDev(t)
	out, err := exec.Command("python3", "testdata/submit_and_read.py",
		fmt.Sprint(p.Ports.Submission), fmt.Sprint(p.Ports.IMAPS), p.User, p.Pass, "hello from python").CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s\nserver log:\n%s", err, out, p.Log())
	}
	if strings.TrimSpace(string(out)) != "1" {
		t.Errorf("first message got UID %q, want 1", out)
	}
}

func TestSwaksThroughSubmissionsAndOpenSSLReads(t *testing.T) {
	needTool(t, "swaks")
	needTool(t, "openssl")
	p := testenv.StartDev(t)
	out, err := exec.Command("swaks", "--server", "127.0.0.1", "--port", fmt.Sprint(p.Ports.Submissions),
		"--tlsc", "--auth", "PLAIN", "--auth-user", p.User, "--auth-password", p.Pass,
		"--from", p.User, "--to", p.User, "--header", "Subject: via swaks", "--body", "swaks body",
		"--timeout", "20").CombinedOutput()
	if err != nil {
		t.Fatalf("swaks: %v\n%s\nserver log:\n%s", err, out, p.Log())
	}
	if !strings.Contains(string(out), "250 2.0.0") {
		t.Fatalf("swaks did not see 250 2.0.0 after DATA:\n%s", out)
	}
	waitForFiles(t, maildir(p), 1)

	script := fmt.Sprintf("a LOGIN %s %s\r\nb SELECT INBOX\r\nc FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nd LOGOUT\r\n", p.User, p.Pass)
	cmd := exec.Command("openssl", "s_client", "-quiet", "-connect", testenv.Addr(p.Ports.IMAPS))
	cmd.Stdin = strings.NewReader(script)
	out, err = cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl s_client: %v\n%s", err, out)
	}
	for _, want := range []string{"a OK", "* 1 EXISTS", "Subject: via swaks", "d OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("IMAP dialog lacks %q:\n%s", want, out)
		}
	}
}

// replyIs tells whether err is an SMTP reply whose code and text start
// with prefix, e.g. "554 5.7.1".
func replyIs(err error, prefix string) bool {
	var te *textproto.Error
	if !errors.As(err, &te) {
		return false
	}
	return strings.HasPrefix(fmt.Sprintf("%03d %s", te.Code, te.Msg), prefix)
}

// smtpDial opens a plain SMTP session on port and says EHLO.
func smtpDial(t *testing.T, port int) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(testenv.Addr(port))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	return c
}

// smtpSend sends msg (headers and body, CRLF lines) from one sender to
// one recipient through p's port 25 and fails the test, with the server
// log, on any refusal.
func smtpSend(t *testing.T, p *testenv.Postcote, from, to, msg string) {
	t.Helper()
	c := smtpDial(t, p.Ports.SMTP)
	defer c.Close()
	if err := c.Mail(from); err != nil {
		t.Fatalf("MAIL FROM: %v\nlog:\n%s", err, p.Log())
	}
	if err := c.Rcpt(to); err != nil {
		t.Fatalf("RCPT TO: %v\nlog:\n%s", err, p.Log())
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v\nlog:\n%s", err, p.Log())
	}
	if _, err := io.WriteString(w, msg); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("end of DATA: %v\nlog:\n%s", err, p.Log())
	}
	c.Quit()
}

func TestNoOpenRelay(t *testing.T) {
	p := testenv.NewDev(t)
	// The test client is 127.0.0.1: take it out of mynetworks so it is a
	// stranger on the Internet.
	setMain(t, p, "mynetworks", "192.0.2.0/24")
	p.Start()

	c := smtpDial(t, p.Ports.SMTP)
	defer c.Close()
	if err := c.Mail("someone@elsewhere.example"); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{"victim@elsewhere.example", "victim@EXAMPLE.ORG."} {
		err := c.Rcpt(rcpt)
		if !replyIs(err, "454 4.7.1") && !replyIs(err, "554 5.7.1") {
			t.Errorf("RCPT TO:<%s> from a stranger: got %v, want 454 4.7.1 or 554 5.7.1 Relay access denied", rcpt, err)
		}
	}
	// Mail to our own user is still welcome.
	if err := c.Rcpt(p.User); err != nil {
		t.Errorf("RCPT TO:<%s>: %v", p.User, err)
	}
	// An unknown user of our own domain is refused at RCPT, not bounced later.
	if err := c.Rcpt("nobody@example.test"); !replyIs(err, "550 5.1.1") {
		t.Errorf("RCPT TO unknown local user: got %v, want 550 5.1.1", err)
	}

	// Submission refuses mail without TLS and AUTH.
	s := smtpDial(t, p.Ports.Submission)
	defer s.Close()
	if err := s.Mail(p.User); !replyIs(err, "530") {
		t.Errorf("MAIL on submission before STARTTLS: got %v, want 530", err)
	}
	if err := s.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.Mail(p.User); err != nil {
		t.Fatal(err)
	}
	if err := s.Rcpt("victim@elsewhere.example"); !replyIs(err, "554 5.7.1") {
		t.Errorf("RCPT to another domain on submission without AUTH: got %v, want 554 5.7.1", err)
	}
}

func TestAuthOnlyOverTLS(t *testing.T) {
	p := testenv.StartDev(t)
	c := smtpDial(t, p.Ports.Submission)
	defer c.Close()
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("submission offers AUTH before STARTTLS")
	}
	if err := c.StartTLS(&tls.Config{InsecureSkipVerify: true}); err != nil {
		t.Fatal(err)
	}
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "PLAIN") || !strings.Contains(mechs, "LOGIN") {
		t.Errorf("after STARTTLS: AUTH %q, want PLAIN and LOGIN", mechs)
	}
	if err := c.Auth(smtp.PlainAuth("", p.User, "wrong", "127.0.0.1")); !replyIs(err, "535 5.7.8") {
		t.Errorf("wrong password: got %v, want 535 5.7.8", err)
	}
}

// sendPlain sends one message through port 25 from 127.0.0.1 (in
// mynetworks in the dev configuration) and returns the server's reply
// to DATA's end, or an error.
func sendPlain(addr, from, to, subject, body string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		return err
	}
	if err := c.Mail(from); err != nil {
		return err
	}
	if err := c.Rcpt(to); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nMessage-ID: <%s@client.example>\r\n\r\n%s\r\n", from, to, subject, subject, body)
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// waitForFiles waits until dir's new/ and cur/ hold at least n messages
// and returns their Subject headers.
func waitForFiles(t *testing.T, dir string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		subjects := subjectsIn(t, dir)
		if len(subjects) >= n {
			return subjects
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d messages after 30 s, want %d", dir, len(subjects), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func subjectsIn(t *testing.T, dir string) []string {
	t.Helper()
	var subjects []string
	for _, sub := range []string{"new", "cur"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range entries {
			f, err := os.Open(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line := sc.Text()
				if line == "" {
					break
				}
				if s, ok := strings.CutPrefix(line, "Subject: "); ok {
					subjects = append(subjects, s)
					break
				}
			}
			f.Close()
		}
	}
	return subjects
}

func TestRestartKeepsMailAndUIDs(t *testing.T) {
	needTool(t, "python3")
	p := testenv.StartDev(t)
	send := func(subject string) string {
		out, err := exec.Command("python3", "testdata/submit_and_read.py",
			fmt.Sprint(p.Ports.Submission), fmt.Sprint(p.Ports.IMAPS), p.User, p.Pass, subject).CombinedOutput()
		if err != nil {
			t.Fatalf("python: %v\n%s\nserver log:\n%s", err, out, p.Log())
		}
		return strings.TrimSpace(string(out))
	}
	if uid := send("before restart"); uid != "1" {
		t.Fatalf("uid %s, want 1", uid)
	}
	uidlist, err := os.ReadFile(filepath.Join(maildir(p), "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	p.Start()
	if uid := send("after restart"); uid != "2" {
		t.Errorf("after a restart the next message got UID %s, want 2", uid)
	}
	after, err := os.ReadFile(filepath.Join(maildir(p), "dovecot-uidlist"))
	if err != nil {
		t.Fatal(err)
	}
	header := func(b []byte) string { return strings.Fields(string(b))[1] } // V<uidvalidity>
	if header(uidlist) != header(after) {
		t.Errorf("UIDVALIDITY changed across a restart: %s then %s", header(uidlist), header(after))
	}
}

// TestKillAfterAcceptBeforeDelivery: a message acknowledged with 250 and
// still in the queue survives kill -9, and is delivered exactly once after
// the restart.
func TestKillAfterAcceptBeforeDelivery(t *testing.T) {
	p := testenv.NewDev(t)
	// Hold deliveries back so the message is surely in the queue when the
	// server dies (Postfix's defer_transports).
	setMain(t, p, "defer_transports", "virtual")
	setMain(t, p, "minimal_backoff_time", "1s")
	setMain(t, p, "maximal_backoff_time", "2s")
	setMain(t, p, "queue_run_delay", "1s")
	p.Start()
	if err := sendPlain(testenv.Addr(p.Ports.SMTP), "sender@elsewhere.example", p.User, "survivor", "body"); err != nil {
		t.Fatalf("send: %v\n%s", err, p.Log())
	}
	if got := subjectsIn(t, maildir(p)); len(got) != 0 {
		t.Fatalf("delivered despite defer_transports: %v", got)
	}
	p.Kill()

	// Let deliveries go and start again.
	setMain(t, p, "defer_transports", "")
	p.Start()
	got := waitForFiles(t, maildir(p), 1)
	time.Sleep(500 * time.Millisecond) // a duplicate would show up by now
	got = subjectsIn(t, maildir(p))
	if len(got) != 1 || got[0] != "survivor" {
		t.Errorf("after kill -9 and restart the mailbox holds %q, want exactly [survivor]", got)
	}
}

// TestCrashUnderLoad kills the server with SIGKILL while many clients are
// sending, restarts it, and checks that every message that got its 250 is
// delivered (duplicates are tolerated and counted, losses are not).
func TestCrashUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	p := testenv.StartDev(t)
	addr := testenv.Addr(p.Ports.SMTP)
	const workers, perWorker = 10, 40
	acked := make(chan string, workers*perWorker)
	done := make(chan struct{})
	for w := 0; w < workers; w++ {
		go func(w int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < perWorker; i++ {
				subject := fmt.Sprintf("load-%d-%d", w, i)
				if err := sendPlain(addr, "load@elsewhere.example", p.User, subject, strings.Repeat("x", 2000)); err != nil {
					return // the server died under us
				}
				acked <- subject
			}
		}(w)
	}
	// Kill once a good part of the load has been acknowledged.
	for len(acked) < workers*perWorker/3 {
		time.Sleep(5 * time.Millisecond)
	}
	p.Kill()
	for w := 0; w < workers; w++ {
		<-done
	}
	close(acked)
	want := map[string]bool{}
	for s := range acked {
		want[s] = true
	}
	p.Start()
	var got []string
	var lost []string
	seen := map[string]int{}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got = subjectsIn(t, maildir(p))
		clear(seen)
		for _, s := range got {
			seen[s]++
		}
		lost = lost[:0]
		for s := range want {
			if seen[s] == 0 {
				lost = append(lost, s)
			}
		}
		if len(lost) == 0 || time.Now().After(deadline) {
			break
		}
	}
	dups := 0
	for _, n := range seen {
		if n > 1 {
			dups += n - 1
		}
	}
	if len(lost) > 0 {
		locks, _ := filepath.Glob(filepath.Join(maildir(p), "*.lock"))
		for _, l := range locks {
			b, _ := os.ReadFile(l)
			t.Logf("lock file %s holds %q", l, b)
		}
		t.Errorf("%d acknowledged messages lost after kill -9: %v\nserver log:\n%s", len(lost), lost, p.Log())
	}
	t.Logf("%d acknowledged before the kill, %d delivered after restart, %d duplicates", len(want), len(got), dups)
}
