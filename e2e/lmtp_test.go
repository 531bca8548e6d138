package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postcote/internal/lmtpd"
	"postcote/internal/maillog"
	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/testenv"
	"postcote/internal/transport"
)

// TestLMTPThroughServe runs guide 003's set-up inside one postcote: SMTP
// in → queue → virtual_transport = lmtp:unix:private/dovecot-lmtp → our
// own LMTP server (service lmtp { unix_listener … }) → Maildir; then the
// inet_listener of guide 000 takes a delivery from the lmtp client.
func TestLMTPThroughServe(t *testing.T) {
	p := testenv.NewDev(t)
	lmtpPort := testenv.FreePorts(t, 1)[0]
	spool := filepath.Join(p.Dir, "spool")
	if err := os.MkdirAll(filepath.Join(spool, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	setMain(t, p, "virtual_transport", "lmtp:unix:private/dovecot-lmtp")
	appendFile(t, filepath.Join(p.Dir, "dovecot.conf"), fmt.Sprintf(`
protocols = imap lmtp
base_dir = %s/run
service lmtp {
  unix_listener %s/private/dovecot-lmtp {
    mode = 0600
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = %d
  }
}
`, p.Dir, spool, lmtpPort))
	p.Start()

	sock := filepath.Join(spool, "private", "dovecot-lmtp")
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("unix_listener: %v\n%s", err, p.Log())
	}
	if st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s: mode %v, want a socket with 0600", sock, st.Mode())
	}

	if err := sendPlain(testenv.Addr(p.Ports.SMTP), "a@example.org", p.User, "via-lmtp-unix", "hello"); err != nil {
		t.Fatalf("send: %v\n%s", err, p.Log())
	}
	subjects := waitForFiles(t, maildir(p), 1)
	if subjects[0] != "via-lmtp-unix" {
		t.Errorf("subject %q", subjects[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), "status=sent") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	log := p.Log()
	for _, want := range []string{
		"lmtp(" + p.User + ")<",
		"msgid=<via-lmtp-unix@client.example>: saved mail to INBOX",
		"relay=localhost[private/dovecot-lmtp]",
		"status=sent (250 2.0.0 <" + p.User + ">",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// Guide 000: lmtp:inet:host — postcote's lmtp client to the inet_listener.
	agent := &transport.LMTP{Hostname: "client.example"}
	env := &queue.Envelope{Sender: "b@example.org", Recipients: []queue.Recipient{{Address: p.User}, {Address: "nobody@example.test"}}}
	body := "Subject: via lmtp inet\r\n\r\nhi\r\n"
	res := agent.Send(context.Background(), env, int64(len(body)), strings.NewReader(body), []int{0, 1}, fmt.Sprintf("inet:127.0.0.1:%d", lmtpPort))
	if len(res) != 2 || res[0].Status != queue.StatusSent || res[1].Status != queue.StatusBounced || res[1].DSN != "5.1.1" {
		t.Fatalf("inet delivery: %+v\n%s", res, p.Log())
	}
	waitForFiles(t, maildir(p), 2)
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// needRootTool skips unless running as root with name installed: the
// interop tests start private Postfix and Dovecot instances.
func needRootTool(t *testing.T, path string) {
	t.Helper()
	if testing.Short() {
		t.Skip("interop test: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("interop tests start private Postfix/Dovecot instances and need root")
	}
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s is not installed (apt-get install postfix dovecot-core dovecot-imapd dovecot-lmtpd)", path)
	}
}

// interopUsers is a userdb for lmtpd: info@ and bob@ of any domain, with
// Maildirs under dir.
type interopUsers struct{ dir string }

func (u interopUsers) LookupUser(_ context.Context, _, name string) (mailstore.User, bool, error) {
	local, domain, _ := strings.Cut(name, "@")
	if local != "info" && local != "bob" {
		return mailstore.User{}, false, nil
	}
	return mailstore.User{Name: name, Home: filepath.Join(u.dir, domain, local), MailLocation: "maildir:~/Maildir", UID: -1, GID: -1}, true, nil
}

// TestInteropPostfixToLMTPD has a real Postfix deliver to postcote's LMTP
// server over guide 003's lmtp:unix:private/dovecot-lmtp and guide 000's
// lmtp:inet:host:port, and bounce the recipient lmtpd refuses.
func TestInteropPostfixToLMTPD(t *testing.T) {
	needRootTool(t, "/usr/sbin/postfix")
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		t.Skipf("no postfix user: %v", err)
	}
	pfUID, _ := strconv.Atoi(pfUser.Uid)
	pfGID, _ := strconv.Atoi(pfUser.Gid)
	mailDir := t.TempDir()
	srvLog := &lockedBuffer{}
	mb := &transport.Mailbox{Users: interopUsers{mailDir}, Store: mailstore.NewStore(mailstore.Options{}), Delimiter: "+", Name: "lmtp"}
	srv := lmtpd.New(lmtpd.Options{Hostname: "mx.example.jp", AddReceived: true, Logger: maillog.New(srvLog, "test", false)}, mb)
	inet, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), inet)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})

	real := startPostfix(t, fmt.Sprintf(`myhostname = pf.example.net
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination
local_recipient_maps =
alias_maps =
alias_database =
default_transport = error: interop test delivers nowhere else
relay_transport = error: interop test delivers nowhere else
virtual_mailbox_domains = example.jp inet.example.jp
virtual_transport = lmtp:unix:private/dovecot-lmtp
transport_maps = inline:{ inet.example.jp=lmtp:inet:%s }
`, inet.Addr().String()), "lmtp unix - - n - - lmtp")
	if real == nil {
		t.Skip("no real Postfix to start")
	}
	real.wait(t)

	// Guide 003: the socket in Postfix's private/, 0600, owned by postfix.
	sockPath := filepath.Join(real.dir, "queue", "private", "dovecot-lmtp")
	unixLn, err := net.Listen("unix", sockPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sockPath, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(sockPath, pfUID, pfGID); err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), unixLn)

	smtpAddr := real.addr
	for _, rcpt := range []string{"info@example.jp", "bob+news@inet.example.jp", "nobody@example.jp"} {
		if err := sendPlain(smtpAddr, "sender@example.org", rcpt, "interop-"+strings.Split(rcpt, "@")[0], "hello from postfix"); err != nil {
			t.Fatalf("send to %s: %v\n%s", rcpt, err, real.log())
		}
	}
	waitForFiles(t, filepath.Join(mailDir, "example.jp", "info", "Maildir"), 1)
	waitForFiles(t, filepath.Join(mailDir, "inet.example.jp", "bob", "Maildir"), 1)
	want := []string{
		"to=<info@example.jp>, relay=pf.example.net[private/dovecot-lmtp]",
		"status=sent (250 2.0.0 <info@example.jp>",
		"to=<bob+news@inet.example.jp>, relay=127.0.0.1[127.0.0.1]:",
		"status=sent (250 2.0.0 <bob+news@inet.example.jp>",
		"to=<nobody@example.jp>, relay=pf.example.net[private/dovecot-lmtp]",
		"status=bounced (host pf.example.net[private/dovecot-lmtp] said: 550 5.1.1 <nobody@example.jp> User doesn't exist: nobody@example.jp (in reply to RCPT TO command))",
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lmtpd log:\n%s", srvLog.String())
		}
	})
	waitText(t, 30*time.Second, real.log, want...)
	if !strings.Contains(srvLog.String(), "saved mail to INBOX") {
		t.Errorf("lmtpd log:\n%s", srvLog.String())
	}
}

// stopPostfix runs postfix stop and waits for the master (by its pid
// file) to exit; postfix abort if it does not.
func stopPostfix(t *testing.T, dir string) {
	etc := filepath.Join(dir, "etc")
	b, _ := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if out, err := exec.Command("/usr/sbin/postfix", "-c", etc, "stop").CombinedOutput(); err != nil {
		t.Errorf("postfix stop: %v\n%s", err, out)
	}
	if pid <= 0 {
		return
	}
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			exec.Command("/usr/sbin/postfix", "-c", etc, "abort").Run()
			t.Errorf("postfix master %d did not stop", pid)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path + ": " + err.Error()
	}
	return string(b)
}

// waitDial polls until addr accepts a TCP connection.
func waitDial(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// lockedBuffer is a log sink shared by goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestInteropLMTPToDovecot has postcote's lmtp client deliver to a real
// Dovecot, which then shows the message over IMAP; the recipient Dovecot
// does not know bounces with its own 550 5.1.1.
func TestInteropLMTPToDovecot(t *testing.T) {
	needRootTool(t, "/usr/sbin/dovecot")
	if _, err := os.Stat("/usr/lib/dovecot/lmtp"); err != nil {
		t.Skip("dovecot-lmtpd is not installed")
	}
	owner, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, sub := range []string{"run", "state", "mail"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "mail"), uid, gid); err != nil {
		t.Fatal(err)
	}
	const pass = "interop-pass-1"
	users := filepath.Join(dir, "users")
	line := fmt.Sprintf("info@example.jp:{PLAIN}%s:%d:%d::%s::\n", pass, uid, gid, filepath.Join(dir, "mail", "info"))
	if err := os.WriteFile(users, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	imapPort := testenv.FreePorts(t, 1)[0]
	conf := filepath.Join(dir, "dovecot.conf")
	err = os.WriteFile(conf, fmt.Appendf(nil, `instance_name = postcote-interop-%[2]d
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols = imap lmtp
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
passdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/users
}
userdb {
  driver = passwd-file
  args = username_format=%%u %[1]s/users
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[2]d
  }
  inet_listener imaps {
    port = 0
  }
}
service lmtp {
  unix_listener lmtp {
    mode = 0600
  }
}
`, dir, imapPort), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/dovecot", "-F", "-c", conf)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("dovecot %d did not stop on SIGTERM", cmd.Process.Pid)
		}
	})
	if err := waitDial(testenv.Addr(imapPort)); err != nil {
		t.Fatalf("dovecot imap: %v\n%s\n%s", err, out.String(), readFile(filepath.Join(dir, "dovecot.log")))
	}
	sock := filepath.Join(dir, "run", "lmtp")

	agent := &transport.LMTP{Hostname: "postcote.example.net"}
	env := &queue.Envelope{Sender: "sender@example.org", Recipients: []queue.Recipient{{Address: "info@example.jp"}, {Address: "nobody@example.jp"}}}
	body := "From: sender@example.org\r\nSubject: interop to dovecot\r\nMessage-ID: <dovecot-interop@example.org>\r\n\r\n.dot line\r\nhello dovecot\r\n"
	res := agent.Send(context.Background(), env, int64(len(body)), strings.NewReader(body), []int{0, 1}, "unix:"+sock)
	if len(res) != 2 {
		t.Fatalf("results %+v", res)
	}
	if res[0].Status != queue.StatusSent || !strings.HasPrefix(res[0].Reply, "250 2.0.0 <info@example.jp>") {
		t.Errorf("info@: %+v\n%s", res[0], readFile(filepath.Join(dir, "dovecot.log")))
	}
	wantBounce := "host postcote.example.net[" + sock + "] said: 550 5.1.1 <nobody@example.jp> User doesn't exist: nobody@example.jp (in reply to RCPT TO command)"
	if res[1].Status != queue.StatusBounced || res[1].DSN != "5.1.1" || res[1].Reply != wantBounce {
		t.Errorf("nobody@: %+v\nwant %q", res[1], wantBounce)
	}

	// Dovecot's IMAP shows the message.
	c, err := net.DialTimeout("tcp", testenv.Addr(imapPort), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "a LOGIN info@example.jp %s\r\nb SELECT INBOX\r\nc FETCH 1 (BODY.PEEK[])\r\nd LOGOUT\r\n", pass)
	var transcript strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(transcript.String(), "d OK") {
		n, err := c.Read(buf)
		transcript.Write(buf[:n])
		if err != nil {
			break
		}
	}
	got := transcript.String()
	for _, want := range []string{"a OK", "* 1 EXISTS", "Subject: interop to dovecot", "\r\n.dot line\r\nhello dovecot", "Return-Path: <sender@example.org>", "d OK"} {
		if !strings.Contains(got, want) {
			t.Errorf("IMAP transcript lacks %q:\n%s", want, got)
		}
	}
}
