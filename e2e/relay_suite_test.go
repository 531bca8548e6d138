package e2e

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// This file is the open-relay suite of issue 4, run against a running
// postcote configured with a guide's main.cf (only host names, ports and
// paths changed). The server under test is "mx" on 127.0.0.1; the domain
// strangers try to reach through it is example.test, whose MX in the fake
// DNS of the postcote_testdns build is a second postcote on 127.0.0.2, so
// a trick that slipped through would show up there as a delivered message.
//
// The test client is 127.0.0.1 and mynetworks is set to 127.0.0.3/32 only:
// the client is a stranger on the Internet unless it binds 127.0.0.3.
//
// Run as root with Debian's postfix installed (and without -short), the
// same RCPTs also go to a private real Postfix with the same domains and
// restrictions: the table must hold for it too, and where postcote's
// reply text differs from Postfix's both are printed.

// smtpConv is a raw SMTP conversation: commands are sent as written, so
// a test can send what net/smtp would not (RCPT TO without brackets).
type smtpConv struct {
	t  *testing.T
	nc net.Conn
	tp *textproto.Conn
}

// dialConv connects to addr from the local address from ("" lets the
// kernel choose), reads the greeting and says EHLO; on failure it shows
// the server's log.
func dialConv(t *testing.T, addr, from string, log func() string) *smtpConv {
	t.Helper()
	d := net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("%v\nserver log:\n%s", err, log())
	}
	nc.SetDeadline(time.Now().Add(60 * time.Second))
	c := &smtpConv{t: t, nc: nc, tp: textproto.NewConn(nc)}
	t.Cleanup(func() { c.tp.Close() })
	if r := c.read(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("greeting %q\nserver log:\n%s", r, log())
	}
	if r := c.cmd("EHLO client.example"); !strings.HasPrefix(r, "250") {
		t.Fatalf("EHLO: %q\nserver log:\n%s", r, log())
	}
	return c
}

func (c *smtpConv) read() string {
	c.t.Helper()
	code, msg, err := c.tp.ReadResponse(0)
	if err != nil && code == 0 {
		c.t.Fatalf("read reply: %v", err)
	}
	return fmt.Sprintf("%03d %s", code, msg)
}

// cmd sends one command line and returns the reply as "CODE text" (the
// lines of a multi-line reply joined by newlines).
func (c *smtpConv) cmd(line string) string {
	c.t.Helper()
	if err := c.tp.PrintfLine("%s", line); err != nil {
		c.t.Fatalf("send %q: %v", line, err)
	}
	return c.read()
}

// data sends a message after DATA and returns the reply to its end.
func (c *smtpConv) data(msg string) string {
	c.t.Helper()
	if r := c.cmd("DATA"); !strings.HasPrefix(r, "354") {
		return r
	}
	w := c.tp.DotWriter()
	w.Write([]byte(msg))
	if err := w.Close(); err != nil {
		c.t.Fatalf("DATA: %v", err)
	}
	return c.read()
}

// relayCase is one RCPT TO argument and the kind of refusal Postfix
// gives to it: "relay" for the relay check of the guide's restrictions
// (its code, then "<address>: Relay access denied"), "refused" for any
// 4xx or 5xx.
type relayCase struct {
	name string
	arg  string // what follows "RCPT TO:"
	want string
}

// relayTricks are the classic ways to relay through a domain we accept,
// ours, to remote (user is a mailbox there); local, when not empty, is a
// domain of mydestination, where Postfix does rewrite "%" and "!" (then
// finds the result is not ours).
func relayTricks(user, remote, ours, local string) []relayCase {
	cases := []relayCase{
		{"plain", "<" + user + "@" + remote + ">", "relay"},
		{"no brackets", user + "@" + remote, "relay"},
		{"percent hack", "<" + user + "%" + remote + "@" + ours + ">", "relay"},
		{"bang path", "<" + remote + "!" + user + "@" + ours + ">", "relay"},
		{"quoted local part", "<\"" + user + "@" + remote + "\"@" + ours + ">", "relay"},
		{"source route", "<@" + ours + ":" + user + "@" + remote + ">", "relay"},
		{"two at signs", "<" + user + "@" + remote + "@" + ours + ">", "relay"},
		{"percent hack, ours upper case with dot", "<" + user + "%" + remote + "@" + strings.ToUpper(ours) + ".>", "relay"},
		{"remote upper case with dot", "<" + user + "@" + strings.ToUpper(remote) + ".>", "relay"},
		{"remote trailing dot", "<" + user + "@" + remote + ".>", "relay"},
		{"IPv6 literal", "<" + user + "@[IPv6:::1]>", "relay"},
		{"IP literal of the remote MX", "<" + user + "@[127.0.0.2]>", "relay"},
		// Postfix counts [127.0.0.1] as local when it is one of
		// inet_interfaces (trivial-rewrite's resolve_local), so it refuses
		// it as an unknown local user rather than as relaying; either way
		// it must not be accepted.
		{"IP literal of this host", "<" + user + "@[127.0.0.1]>", "refused"},
	}
	if local != "" {
		cases = append(cases,
			relayCase{"percent hack through mydestination", "<" + user + "%" + remote + "@" + local + ">", "relay"},
			relayCase{"bang path through mydestination", "<" + remote + "!" + user + "@" + local + ">", "relay"},
			relayCase{"two at signs through mydestination", "<" + user + "@" + remote + "@" + local + ">", "relay"})
	}
	return cases
}

// replyOK tells whether got is the refusal tc wants; deny is the code
// and enhanced status of the guide's relay check ("454 4.7.1" for
// defer_unauth_destination, "554 5.7.1" for reject_unauth_destination).
// The address Postfix prints may differ from the one sent (it strips a
// source route and quotes), so only its brackets are checked.
func (tc relayCase) replyOK(got, deny string) bool {
	if got == "" {
		return false
	}
	if tc.want == "refused" {
		return got[0] == '4' || got[0] == '5'
	}
	return strings.HasPrefix(got, deny+" <") && strings.HasSuffix(got, ">: Relay access denied")
}

// expect says in words what replyOK accepts.
func (tc relayCase) expect(deny string) string {
	if tc.want == "refused" {
		return "a 4xx or 5xx refusal"
	}
	return deny + " <…>: Relay access denied"
}

// queueEmpty fails unless `postcote postqueue -p` says the queue is empty.
func queueEmpty(t *testing.T, m *mta, after string) {
	t.Helper()
	cmd := exec.Command(m.bin, "postqueue", "-p", "-c", m.dir)
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "Mail queue is empty\n" {
		t.Errorf("postqueue -p after %s: %v\n%s\nserver log:\n%s", after, err, out, m.Log())
	}
}

// waitQueueEmpty waits until the queue has drained (deliveries done).
func waitQueueEmpty(t *testing.T, m *mta) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, _ := exec.Command(m.bin, "postqueue", "-p", "-c", m.dir).CombinedOutput()
		if string(out) == "Mail queue is empty\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not empty after 20 s:\n%s\nserver log:\n%s", out, m.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// relayTarget is a running server under test with the guide applied.
type relayTarget struct {
	mx, remote *mta
	user       string // our user, whose Maildir counts deliveries
	maildir    string
	login      string // SASL login and password that may send as user
	pass       string
	ours       []string // other spellings of our addresses, all accepted
	unknown    string   // a user of our domain that does not exist
	local      string   // a domain of mydestination, if any
	deny       string   // the relay refusal of the guide's restrictions
}

// newRelayPair makes the remote receiver (demo@example.test on
// 127.0.0.2) and the server under test (user on 127.0.0.1, testdns
// binary resolving example.test to the receiver); neither is started.
func newRelayPair(t *testing.T, user string) (mx, remote *mta) {
	t.Helper()
	needLoopback2(t)
	remote = newMTA(t, "demo@example.test", "127.0.0.2", testenv.Binary(t))
	mx = newMTA(t, user, "127.0.0.1", testDNSBinary(t))
	zone := filepath.Join(mx.dir, "test-dns.zone")
	if err := os.WriteFile(zone, []byte("example.test MX 10 mx.example.test\nmx.example.test A 127.0.0.2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	mx.env = []string{"POSTCOTE_TEST_DNS=" + zone, fmt.Sprintf("POSTCOTE_TEST_SMTP_PORT=%d", remote.ports.SMTP)}
	return mx, remote
}

// runRelaySuite runs the table from a stranger, then relays from a
// mynetworks client and an authenticated submission client. With a real
// Postfix for the same domains and restrictions (nil without root), the
// table also runs against it: its replies must be the table's too, and
// where postcote's text differs both are printed.
func runRelaySuite(t *testing.T, rt *relayTarget, real *realPostfix) {
	cases := relayTricks("demo", "example.test", domainOf(rt.user), rt.local)
	var pf map[string]string
	if real != nil {
		real.wait(t)
		pf = postfixReplies(t, real, cases)
		for _, tc := range cases {
			if !tc.replyOK(pf[tc.name], rt.deny) {
				t.Errorf("%s: real Postfix answered RCPT TO:%s with %q, the table wants %q\nPostfix log:\n%s", tc.name, tc.arg, pf[tc.name], tc.expect(rt.deny), real.log())
			}
		}
	}
	// The refusals' failures share one copy of the log, printed last.
	defer func() {
		if t.Failed() {
			t.Logf("postcote's log:\n%s", rt.mx.Log())
		}
	}()
	addr := rt.mx.smtpAddr()
	var c *smtpConv
	for i, part := range chunks(cases, perSession) {
		s := dialConv(t, addr, "127.0.0.1", rt.mx.Log)
		if r := s.cmd("MAIL FROM:<stranger@elsewhere.example>"); !strings.HasPrefix(r, "250") {
			t.Fatalf("MAIL: %q\n%s", r, rt.mx.Log())
		}
		if i == 0 {
			// Our addresses, however spelt, are accepted.
			for _, to := range append([]string{rt.user}, rt.ours...) {
				if got := s.cmd("RCPT TO:<" + to + ">"); !strings.HasPrefix(got, "250 ") {
					t.Errorf("RCPT TO:<%s> (ours): %q, want 250", to, got)
				}
				s.cmd("RSET")
				s.cmd("MAIL FROM:<stranger@elsewhere.example>")
			}
		}
		for _, tc := range part {
			got := s.cmd("RCPT TO:" + tc.arg)
			if !tc.replyOK(got, rt.deny) {
				t.Errorf("%s: RCPT TO:%s\n got  %q\n want %q", tc.name, tc.arg, got, tc.expect(rt.deny))
			}
			if want, ok := pf[tc.name]; ok && want != got {
				t.Logf("%s: RCPT TO:%s\n  postcote: %s\n  Postfix:  %s", tc.name, tc.arg, got, want)
			}
			queueEmpty(t, rt.mx, "RCPT TO:"+tc.arg)
		}
		if i == 0 {
			c = s // the first session goes on below
			continue
		}
		s.cmd("QUIT")
	}
	if got := c.cmd("RCPT TO:<" + rt.unknown + ">"); !strings.HasPrefix(got, "550 5.1.1 <"+rt.unknown+">:") {
		t.Errorf("RCPT TO:<%s> (unknown user of ours): %q, want 550 5.1.1", rt.unknown, got)
	}
	// Our own user, in the same session after the refusals, is welcome.
	if got := c.cmd("RCPT TO:<" + rt.user + ">"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("RCPT TO:<%s>: %q\n%s", rt.user, got, rt.mx.Log())
	}
	if got := c.data("From: <stranger@elsewhere.example>\r\nTo: <" + rt.user + ">\r\nSubject: from-a-stranger\r\n\r\nhello\r\n"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("end of DATA: %q\n%s", got, rt.mx.Log())
	}
	c.cmd("QUIT")
	if got := waitForFiles(t, rt.maildir, 1); len(got) != 1 || got[0] != "from-a-stranger" {
		t.Errorf("our user's Maildir holds %q, want [from-a-stranger]", got)
	}

	// A client in mynetworks may relay.
	in := dialConv(t, addr, "127.0.0.3", rt.mx.Log)
	relayOne(t, in, rt, "app@elsewhere.example", "from-mynetworks")
	// So may an authenticated user on submission.
	subAddr := net.JoinHostPort("127.0.0.1", fmt.Sprint(rt.mx.ports.Submission))
	if err := waitDial(subAddr); err != nil { // mta.start waits for port 25 only
		t.Fatalf("submission: %v\n%s", err, rt.mx.Log())
	}
	sub := dialConv(t, subAddr, "127.0.0.1", rt.mx.Log)
	submissionLogin(t, sub, rt.mx, rt.login, rt.pass)
	relayOne(t, sub, rt, rt.user, "from-submission")

	got := waitForFiles(t, rt.remote.maildir(), 2)
	if !sortedEqual(got, []string{"from-mynetworks", "from-submission"}) {
		t.Errorf("the remote received %q, want only the two permitted relays\nmx log:\n%s", got, rt.mx.Log())
	}
	// Once the queue has drained, the server has handed the remote
	// exactly those two.
	waitQueueEmpty(t, rt.mx)
	if n := strings.Count(rt.mx.Log(), "relay=mx.example.test[127.0.0.2]"); n != 2 {
		t.Errorf("%d deliveries to the remote, want 2:\n%s", n, rt.mx.Log())
	}
}

// relayOne sends one message to demo@example.test and expects 250s.
func relayOne(t *testing.T, c *smtpConv, rt *relayTarget, from, subject string) {
	t.Helper()
	for _, line := range []string{"MAIL FROM:<" + from + ">", "RCPT TO:<demo@example.test>"} {
		if got := c.cmd(line); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("%s (%s): %q\nserver log:\n%s", line, subject, got, rt.mx.Log())
		}
	}
	msg := "From: <" + from + ">\r\nTo: <demo@example.test>\r\nSubject: " + subject + "\r\n\r\nrelayed\r\n"
	if got := c.data(msg); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("DATA (%s): %q\n%s", subject, got, rt.mx.Log())
	}
	c.cmd("QUIT")
}

// submissionLogin does STARTTLS, EHLO again and AUTH PLAIN.
func submissionLogin(t *testing.T, c *smtpConv, m *mta, user, pass string) {
	t.Helper()
	if err := c.startTLS(); err != nil {
		t.Fatalf("STARTTLS: %v\n%s", err, m.Log())
	}
	if got := c.cmd("AUTH PLAIN " + plainResponse(user, pass)); !strings.HasPrefix(got, "235 2.7.0") {
		t.Fatalf("AUTH PLAIN %s: %q\n%s", user, got, m.Log())
	}
}

// startTLS upgrades the conversation and says EHLO again.
func (c *smtpConv) startTLS() error {
	if r := c.cmd("STARTTLS"); !strings.HasPrefix(r, "220 ") {
		return fmt.Errorf("reply %q", r)
	}
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.nc, c.tp = tc, textproto.NewConn(tc)
	if r := c.cmd("EHLO client.example"); !strings.HasPrefix(r, "250") {
		return fmt.Errorf("EHLO after STARTTLS: %q", r)
	}
	return nil
}

// plainResponse is AUTH PLAIN's initial response (RFC 4616).
func plainResponse(user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
}

func domainOf(addr string) string {
	_, d, _ := strings.Cut(addr, "@")
	return d
}

// TestOpenRelayGuide003 runs the suite on guide 003's main.cf: its
// hash: virtual map, virtual_mailbox_domains, delivery over
// lmtp:unix:private/dovecot-lmtp, and Debian's default
// smtpd_relay_restrictions (the guide does not set them), so strangers
// get defer_unauth_destination's 454 4.7.1.
func TestOpenRelayGuide003(t *testing.T) {
	t.Parallel()
	real := startPostfix(t, "myhostname = mail.example.jp\nmydestination = localhost\nmynetworks = 127.0.0.3/32\nalias_maps =\n"+
		"recipient_delimiter = +\nvirtual_mailbox_domains = mail.example.jp, example.jp\n"+
		"virtual_alias_maps = inline:{postmaster@mail.example.jp=info@example.jp}\n"+
		"smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination\n")
	mx, remote := newRelayPair(t, "info@example.jp")
	applyGuide003(t, mx)
	remote.start()
	mx.start()
	runRelaySuite(t, &relayTarget{
		mx: mx, remote: remote, user: "info@example.jp", maildir: mx.maildir(),
		login: "info@example.jp", pass: "pass-info@example.jp",
		ours:    []string{"info@EXAMPLE.JP.", "postmaster@mail.example.jp", "Postmaster@Mail.Example.JP"},
		unknown: "nobody@example.jp",
		local:   "localhost",
		deny:    "454 4.7.1",
	}, real)
}

// TestOpenRelayGuide001 runs the suite on guide 001's main.cf: LDAP
// virtual alias domains and maps, a virtual mailbox domain, and its
// smtpd_relay_restrictions and smtpd_recipient_restrictions =
// reject_sender_login_mismatch. (The real Postfix has no LDAP module:
// it gets the same domains and owners in inline: tables.)
func TestOpenRelayGuide001(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts slapd")
	}
	real := startPostfix(t, "myhostname = mx.example.com\nmydestination =\nmynetworks = 127.0.0.3/32\n"+
		"virtual_alias_domains = example.org\nvirtual_mailbox_domains = $myhostname\n"+
		"virtual_alias_maps = inline:{info@example.org=mail000@mx.example.com, mail000@example.org=mail000@mx.example.com}\n"+
		"virtual_mailbox_maps = inline:{mail000@mx.example.com=home/mail/mail000/mailbox/}\n"+
		"smtpd_sender_login_maps = inline:{info@example.org=mail000}\n"+
		"smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination\n"+
		"smtpd_recipient_restrictions = reject_sender_login_mismatch\n")
	mx, remote := newRelayPair(t, "demo@example.test")
	g := applyGuide001(t, mx)
	remote.start()
	mx.start()
	runRelaySuite(t, &relayTarget{
		mx: mx, remote: remote, user: "info@example.org", maildir: g.maildir,
		login: "mail000", pass: "mail000pw",
		ours:    []string{"INFO@EXAMPLE.ORG.", "mail000@example.org", "mail000@mx.example.com", "Mail000@MX.Example.Com."},
		unknown: "nobody@example.org",
		deny:    "454 4.7.1",
	}, real)
}

// applyGuide003 appends guide 003's main.cf (host names, ports and paths
// changed) and the dovecot.conf service lmtp block of its Dovecot part.
func applyGuide003(t *testing.T, m *mta) {
	t.Helper()
	mailname := filepath.Join(m.dir, "mailname")
	aliases := filepath.Join(m.dir, "aliases")
	virtual := filepath.Join(m.dir, "virtual")
	files := map[string]string{
		mailname: "mail.example.jp\n",
		aliases:  "postmaster: root\n",
		virtual: "admin@mail.example.jp info@example.jp\n" +
			"mailer-daemon@mail.example.jp info@example.jp\n" +
			"postmaster@mail.example.jp info@example.jp\n" +
			"root@mail.example.jp info@example.jp\n",
	}
	for path, text := range files {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"postalias", aliases}, {"postmap", virtual}} {
		if out, err := exec.Command(m.bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	m.setMain(
		"myhostname = mail.example.jp",
		"alias_maps = hash:"+aliases,
		"alias_database = hash:"+aliases,
		"myorigin = "+mailname,
		"mydestination = localhost",
		"relayhost = ",
		"mynetworks = 127.0.0.3/32",
		"mailbox_size_limit = 0",
		"recipient_delimiter = +",
		"inet_interfaces = 127.0.0.1",
		"inet_protocols = ipv4",
		"virtual_mailbox_domains = mail.example.jp, example.jp",
		"virtual_transport = lmtp:unix:private/dovecot-lmtp",
		"virtual_alias_maps = hash:"+virtual,
		// Not in the guide: Postfix's default, instead of the dev
		// configuration's error transport, so permitted relays leave.
		"default_transport = smtp",
	)
	f, err := os.OpenFile(filepath.Join(m.dir, "dovecot.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fmt.Fprintf(f, "\nprotocols = imap lmtp\nbase_dir = %s/run\nservice lmtp {\n unix_listener %s/spool/private/dovecot-lmtp {\n   mode = 0600\n  }\n}\n", m.dir, m.dir)
}

// realPostfix is a private Postfix for comparisons: its own config,
// queue and data folders in a temporary folder, listening on
// 127.0.0.1:PORT only.
type realPostfix struct {
	dir, addr string
	started   chan error // receives start's outcome once
	up        bool
}

// startPostfix writes the instance's files (the site's main.cf lines
// after the instance's own; services, master.cf lines, after the
// instance's own) and starts `postfix start` in the
// background, so the caller can set up postcote meanwhile; wait says
// when it answers. It returns nil unless running as root with
// /usr/sbin/postfix installed and without -short.
func startPostfix(t *testing.T, site string, services ...string) *realPostfix {
	t.Helper()
	if testing.Short() || os.Geteuid() != 0 {
		return nil
	}
	if _, err := os.Stat("/usr/sbin/postfix"); err != nil {
		return nil
	}
	pf, err := user.Lookup("postfix")
	if err != nil {
		return nil
	}
	uid, _ := strconv.Atoi(pf.Uid)
	gid, _ := strconv.Atoi(pf.Gid)
	dir := openTempDir(t)
	for _, sub := range []string{"etc", "queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "data"), uid, gid); err != nil {
		t.Fatal(err)
	}
	port := testenv.FreePorts(t, 1)[0]
	mainCF := fmt.Sprintf("compatibility_level = 3.6\nqueue_directory = %[1]s/queue\ndata_directory = %[1]s/data\n"+
		"mail_owner = postfix\nsetgid_group = postdrop\nmaillog_file = %[1]s/maillog\nmaillog_file_prefixes = %[1]s\n"+
		"inet_interfaces = 127.0.0.1\ninet_protocols = ipv4\nbiff = no\nsmtpd_banner = $myhostname ESMTP\n%[2]s\n",
		dir, site)
	masterCF := fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n", port)
	for _, svc := range []string{"cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
		"rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce",
		"trace unix - - n - 0 bounce", "verify unix - - n - 1 verify", "proxymap unix - - n - - proxymap",
		"error unix - - n - - error", "retry unix - - n - - error", "anvil unix - - n - 1 anvil",
		"scache unix - - n - 1 scache", "showq unix n - n - - showq", "postlog unix-dgram n - n - 1 postlogd",
		"pickup unix n - n 60 1 pickup", "smtp unix - - n - - smtp"} {
		masterCF += svc + "\n"
	}
	for _, svc := range services {
		masterCF += svc + "\n"
	}
	etc := filepath.Join(dir, "etc")
	for name, text := range map[string]string{"main.cf": mainCF, "master.cf": masterCF} {
		if err := os.WriteFile(filepath.Join(etc, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &realPostfix{dir: dir, addr: testenv.Addr(port), started: make(chan error, 1)}
	go func() {
		if out, err := exec.Command("/usr/sbin/postfix", "-c", etc, "start").CombinedOutput(); err != nil {
			r.started <- fmt.Errorf("postfix start: %v\n%s", err, out)
			return
		}
		r.started <- waitDial(r.addr)
	}()
	t.Cleanup(func() {
		if !r.up {
			if err := <-r.started; err != nil {
				return
			}
		}
		stopPostfix(t, dir)
	})
	return r
}

// openDirs makes folders enterable and readable by everyone: Postfix's
// daemons run as the postfix user.
func openDirs(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// openTempDir is a new temporary folder that, with its parent, the
// postfix user can enter (t.TempDir makes both 0700).
func openTempDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	openDirs(t, filepath.Dir(dir), dir)
	return dir
}

// postfixFile writes a file the postfix user can read (a map for a real
// Postfix) and returns its path.
func postfixFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(openTempDir(t), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// wait waits for the instance to answer.
func (r *realPostfix) wait(t *testing.T) {
	t.Helper()
	if r.up {
		return
	}
	err := <-r.started
	r.up = true
	if err != nil {
		t.Fatalf("real Postfix: %v\n%s", err, r.log())
	}
}

func (r *realPostfix) log() string { return readFile(filepath.Join(r.dir, "maillog")) }

// postfixReplies runs the table's RCPTs against a real Postfix from a
// stranger and returns its replies by case name. The session ends
// without DATA, so nothing is ever queued there.
func postfixReplies(t *testing.T, real *realPostfix, cases []relayCase) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, part := range chunks(cases, perSession) {
		c := dialConv(t, real.addr, "127.0.0.1", real.log)
		if r := c.cmd("MAIL FROM:<stranger@elsewhere.example>"); !strings.HasPrefix(r, "250") {
			t.Fatalf("Postfix MAIL: %q", r)
		}
		for _, tc := range part {
			got[tc.name] = c.cmd("RCPT TO:" + tc.arg)
		}
		c.cmd("QUIT")
	}
	return got
}

// perSession keeps a session's refusals below smtpd_soft_error_limit
// (10), after which Postfix, and postcote, sleep smtpd_error_sleep_time
// (1 s) before every command; the first session has one more refusal
// (the unknown user) and still sends a message.
const perSession = 8

// chunks cuts cases into runs of at most n.
func chunks(cases []relayCase, n int) [][]relayCase {
	var out [][]relayCase
	for len(cases) > n {
		out = append(out, cases[:n])
		cases = cases[n:]
	}
	return append(out, cases)
}
