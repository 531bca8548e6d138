package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postcote/internal/devsetup"
	"postcote/internal/testenv"
)

// The outbound SMTP tests run two postcote instances: a receiver for
// example.test listening on 127.0.0.2 and a sender for sender.test on
// 127.0.0.1 whose smtp client uses a fake DNS (example.test MX 10
// mx.example.test, mx.example.test A 127.0.0.2). The sender is a binary
// built with the postcote_testdns tag, the only build in which the
// POSTCOTE_TEST_DNS and POSTCOTE_TEST_SMTP_PORT variables are read
// (internal/server/smtpclient_testdns.go). Nothing resolves or connects
// off this machine.

var (
	dnsBinOnce sync.Once
	dnsBin     string
	dnsBinErr  error
)

func testDNSBinary(t *testing.T) string {
	t.Helper()
	dnsBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "postcote-testdns-")
		if err != nil {
			dnsBinErr = err
			return
		}
		dnsBin = filepath.Join(dir, "postcote")
		cmd := exec.Command("go", "build", "-tags", "postcote_testdns", "-o", dnsBin, "postcote/cmd/postcote")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			dnsBinErr = fmt.Errorf("go build -tags postcote_testdns: %v\n%s", err, out)
		}
	})
	if dnsBinErr != nil {
		t.Fatal(dnsBinErr)
	}
	return dnsBin
}

// mta is one postcote serve with a dev configuration of its own.
type mta struct {
	t     *testing.T
	dir   string
	user  string
	addr  string // listen address
	ports devsetup.Ports
	bin   string
	env   []string

	mu   sync.Mutex
	log  bytes.Buffer
	cmd  *exec.Cmd
	done chan struct{}
}

func (m *mta) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.Write(b)
}

func (m *mta) Log() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.log.String()
}

func newMTA(t *testing.T, user, addr, bin string) *mta {
	t.Helper()
	pp := testenv.FreePorts(t, 5)
	m := &mta{t: t, dir: t.TempDir(), user: user, addr: addr, bin: bin,
		ports: devsetup.Ports{SMTP: pp[0], Submission: pp[1], Submissions: pp[2], IMAP: pp[3], IMAPS: pp[4]}}
	hash, err := exec.Command(testenv.Binary(t), "doveadm", "pw", "-s", "BLF-CRYPT", "-p", "pass-"+user).Output()
	if err != nil {
		t.Fatalf("doveadm pw: %v", err)
	}
	if _, err := devsetup.Write(devsetup.Options{Dir: m.dir, User: user, Password: "pass-" + user, Ports: m.ports, Address: addr,
		Hash: func(string) (string, error) { return string(bytes.TrimSpace(hash)), nil }}); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(m.dir, "spool", "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.stop)
	return m
}

func (m *mta) setMain(lines ...string) {
	m.t.Helper()
	f, err := os.OpenFile(filepath.Join(m.dir, "main.cf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		m.t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		fmt.Fprintln(f, l)
	}
}

func (m *mta) smtpAddr() string { return net.JoinHostPort(m.addr, fmt.Sprint(m.ports.SMTP)) }

func (m *mta) start() {
	m.t.Helper()
	cmd := exec.Command(m.bin, "serve", "-log-stderr", "-c", m.dir)
	cmd.Env = append(os.Environ(), m.env...)
	cmd.Stdout, cmd.Stderr = m, m
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	m.mu.Lock()
	m.cmd, m.done = cmd, done
	m.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", m.smtpAddr(), time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-done:
			m.t.Fatalf("postcote serve exited:\n%s", m.Log())
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("%s never came up: %v\n%s", m.smtpAddr(), err, m.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (m *mta) stop() {
	m.mu.Lock()
	cmd, done := m.cmd, m.done
	m.cmd = nil
	m.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		m.t.Errorf("postcote did not stop within 30 s")
	}
}

func (m *mta) maildir() string {
	local, domain, _ := strings.Cut(m.user, "@")
	return filepath.Join(m.dir, "mail", domain, local, "Maildir")
}

// waitLog waits until the log contains every string.
func (m *mta) waitLog(timeout time.Duration, want ...string) {
	m.t.Helper()
	waitText(m.t, timeout, m.Log, want...)
}

// needLoopback2 skips when 127.0.0.2 cannot be bound (not Linux's 127/8).
func needLoopback2(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	ln.Close()
}

func outPair(t *testing.T, senderMain ...string) (sender, receiver *mta) {
	t.Helper()
	needLoopback2(t)
	receiver = newMTA(t, "demo@example.test", "127.0.0.2", testenv.Binary(t))
	sender = newMTA(t, "alice@sender.test", "127.0.0.1", testDNSBinary(t))
	zone := filepath.Join(sender.dir, "test-dns.zone")
	if err := os.WriteFile(zone, []byte("example.test MX 10 mx.example.test\nmx.example.test A 127.0.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sender.env = []string{"POSTCOTE_TEST_DNS=" + zone, fmt.Sprintf("POSTCOTE_TEST_SMTP_PORT=%d", receiver.ports.SMTP)}
	sender.setMain(append([]string{"default_transport = smtp", "smtp_helo_name = sender.test",
		"minimal_backoff_time = 1s", "maximal_backoff_time = 2s", "queue_run_delay = 1s"}, senderMain...)...)
	return sender, receiver
}

// TestSMTPOutMXDeferBounce: mail crosses from one instance to the other
// through the MX found in the fake DNS; with the receiver down it is
// deferred and delivered once it is back; an unknown user bounces with
// an RFC 3464 report in the sender's mailbox.
func TestSMTPOutMXDeferBounce(t *testing.T) {
	sender, receiver := outPair(t)
	receiver.start()
	sender.start()

	if err := sendPlain(sender.smtpAddr(), sender.user, receiver.user, "across", "hello over smtp"); err != nil {
		t.Fatalf("send: %v\n%s", err, sender.Log())
	}
	if s := waitForFiles(t, receiver.maildir(), 1); s[0] != "across" {
		t.Errorf("subject %q", s[0])
	}
	relay := fmt.Sprintf("relay=mx.example.test[127.0.0.2]:%d", receiver.ports.SMTP)
	sender.waitLog(10*time.Second, "to=<"+receiver.user+">", relay, "dsn=2.0.0, status=sent (250 ")

	// Receiver down: deferred, retried with back-off, delivered later.
	receiver.stop()
	if err := sendPlain(sender.smtpAddr(), sender.user, receiver.user, "while-down", "retry me"); err != nil {
		t.Fatalf("send: %v\n%s", err, sender.Log())
	}
	sender.waitLog(10*time.Second, fmt.Sprintf("status=deferred (connect to mx.example.test[127.0.0.2]:%d: Connection refused)", receiver.ports.SMTP))
	receiver.start()
	waitForFiles(t, receiver.maildir(), 2)

	// Permanent error: a bounce to the sender.
	if err := sendPlain(sender.smtpAddr(), sender.user, "nobody@example.test", "to-nobody", "bounce me"); err != nil {
		t.Fatalf("send: %v\n%s", err, sender.Log())
	}
	sender.waitLog(15*time.Second, "to=<nobody@example.test>", "status=bounced (host mx.example.test[127.0.0.2] said: 550 5.1.1")
	waitForFiles(t, sender.maildir(), 1)
	checkBounce(t, sender.maildir(), "nobody@example.test")
}

// checkBounce parses the one message in dir as an RFC 3464 report.
func checkBounce(t *testing.T, dir, rcpt string) {
	t.Helper()
	var path string
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			path = filepath.Join(dir, sub, e.Name())
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q: %v\n%s", msg.Header.Get("Content-Type"), err, raw)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	found := false
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Type") != "message/delivery-status" {
			continue
		}
		found = true
		body, _ := io.ReadAll(p)
		tp := textproto.NewReader(bufioReader(body))
		if _, err := tp.ReadMIMEHeader(); err != nil { // per-message fields
			t.Fatalf("per-message fields: %v\n%s", err, body)
		}
		rf, err := tp.ReadMIMEHeader() // per-recipient fields
		if err != nil && err != io.EOF {
			t.Fatalf("per-recipient fields: %v\n%s", err, body)
		}
		checks := map[string]string{"Final-Recipient": "rfc822; " + rcpt, "Action": "failed", "Status": "5.1.1"}
		for k, want := range checks {
			if got := rf.Get(k); got != want {
				t.Errorf("%s: %q, want %q\n%s", k, got, want, body)
			}
		}
		if d := rf.Get("Diagnostic-Code"); !strings.HasPrefix(d, "smtp; 550 5.1.1") {
			t.Errorf("Diagnostic-Code %q\n%s", d, body)
		}
		if r := rf.Get("Remote-MTA"); !strings.Contains(r, "mx.example.test") {
			t.Errorf("Remote-MTA %q", r)
		}
	}
	if !found {
		t.Errorf("no message/delivery-status part:\n%s", raw)
	}
}

// TestSMTPOutRelayhostTLS: relayhost = [mx.example.test]:PORT (no MX
// lookup) delivers with may; with verify against a CA that did not sign
// the receiver's self-signed certificate the mail is deferred and the
// receiver never sees it.
func TestSMTPOutRelayhostTLS(t *testing.T) {
	needLoopback2(t)
	receiver := newMTA(t, "demo@example.test", "127.0.0.2", testenv.Binary(t))
	receiver.start()
	for _, tc := range []struct {
		level     string
		delivered bool
	}{{"may", true}, {"verify", false}} {
		t.Run(tc.level, func(t *testing.T) {
			sender := newMTA(t, "alice@sender.test", "127.0.0.1", testDNSBinary(t))
			zone := filepath.Join(sender.dir, "test-dns.zone")
			// No MX here: a relayhost in brackets must not need one.
			os.WriteFile(zone, []byte("mx.example.test A 127.0.0.2\n"), 0o644)
			sender.env = []string{"POSTCOTE_TEST_DNS=" + zone}
			sender.setMain("default_transport = smtp", fmt.Sprintf("relayhost = [mx.example.test]:%d", receiver.ports.SMTP),
				"smtp_tls_security_level = "+tc.level, "smtp_tls_CAfile = "+filepath.Join(sender.dir, "cert.pem"),
				"smtp_tls_loglevel = 1", "minimal_backoff_time = 1s", "maximal_backoff_time = 2s", "queue_run_delay = 1s")
			sender.start()
			before := len(subjectsIn(t, receiver.maildir()))
			subject := "relayhost-" + tc.level
			if err := sendPlain(sender.smtpAddr(), sender.user, receiver.user, subject, "hi"); err != nil {
				t.Fatalf("send: %v\n%s", err, sender.Log())
			}
			if tc.delivered {
				waitForFiles(t, receiver.maildir(), before+1)
				sender.waitLog(10*time.Second, "Untrusted TLS connection established to mx.example.test[127.0.0.2]",
					fmt.Sprintf("relay=mx.example.test[127.0.0.2]:%d", receiver.ports.SMTP), "status=sent")
				return
			}
			sender.waitLog(10*time.Second, "dsn=4.7.5, status=deferred (Server certificate not verified")
			// Let the queue retry (back-off 1-2 s); still nothing may arrive.
			deadline := time.Now().Add(15 * time.Second)
			for strings.Count(sender.Log(), "status=deferred (Server certificate not verified") < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("no retry after 15 s:\n%s", sender.Log())
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n := len(subjectsIn(t, receiver.maildir())); n != before {
				t.Errorf("receiver got %d new messages although TLS verification failed", n-before)
			}
			if strings.Contains(receiver.Log(), "from=<"+sender.user+">") && strings.Contains(receiver.Log(), subject) {
				t.Errorf("receiver saw the transaction:\n%s", receiver.Log())
			}
		})
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
