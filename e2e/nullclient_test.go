package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// This file runs guide 004's local mail server as a null client: the
// guide's main.cf with its "smarthost" line filled in (relayhost =
// [mx.example.com]:PORT), and the changes Postfix's
// STANDARD_CONFIGURATION_README makes for a null client (mydestination
// empty, local delivery disabled, no error default_transport), plus the
// guide's canonical regexp. The relayhost is a second postcote on
// 127.0.0.2; the fake DNS gives mx.example.com an A record and, as a
// trap, MX records for mx.example.com and the recipients' domains that
// point at a listener on 127.0.0.4: a client that looked up an MX would
// end up there.

// nullCanonical is guide 004's canonical.regexp.
const nullCanonical = "/^([^@]*)@([a-zA-Z0-9]*)\\.(example\\.com)/ ${1}+${2}@${3}\n"

// trap counts the TCP connections made to it.
type trap struct {
	ln    net.Listener
	conns atomic.Int64
}

func newTrap(t *testing.T, addr string) *trap {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	tr := &trap{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tr.conns.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return tr
}

func (tr *trap) port() int { return tr.ln.Addr().(*net.TCPAddr).Port }

// nullClient is guide 004's host and its relayhost.
type nullClient struct {
	host, relay *mta
	trap        *trap
}

func newNullClient(t *testing.T) *nullClient {
	t.Helper()
	needLoopback2(t)
	tr := newTrap(t, "127.0.0.4:0")
	relay := newMTA(t, "admin@example.com", "127.0.0.2", testenv.Binary(t))
	// The relayhost takes the null client's mail for its host name too.
	relay.setMain("virtual_alias_domains = examplehost.example.com",
		"virtual_alias_maps = inline:{root@examplehost.example.com=admin@example.com}")
	host := newMTA(t, "root@examplehost.example.com", "127.0.0.1", testDNSBinary(t))
	zone := filepath.Join(host.dir, "test-dns.zone")
	if err := os.WriteFile(zone, []byte("mx.example.com A 127.0.0.2\n"+
		"mx.example.com MX 10 trap.example.com\n"+
		"example.com MX 10 trap.example.com\n"+
		"examplehost.example.com MX 10 trap.example.com\n"+
		"trap.example.com A 127.0.0.4\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	host.env = []string{"POSTCOTE_TEST_DNS=" + zone, fmt.Sprintf("POSTCOTE_TEST_SMTP_PORT=%d", tr.port())}
	canonical := filepath.Join(host.dir, "canonical.regexp")
	aliases := filepath.Join(host.dir, "aliases")
	for path, text := range map[string]string{
		canonical: nullCanonical,
		aliases:   "root: localuser\nmailer-daemon: postmaster\npostmaster: root\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(host.bin, "postalias", aliases).CombinedOutput(); err != nil {
		t.Fatalf("postalias: %v\n%s", err, out)
	}
	host.setMain(
		// Guide 004's main.cf, paths changed.
		"smtpd_banner = $myhostname ESMTP $mail_name",
		"biff = no",
		"readme_directory = no",
		"mailbox_size_limit = 0",
		"append_dot_mydomain = no",
		"smtpd_tls_cert_file = "+filepath.Join(host.dir, "cert.pem"),
		"smtpd_tls_key_file = "+filepath.Join(host.dir, "key.pem"),
		"smtpd_use_tls = yes",
		"smtpd_tls_mandatory_protocols = !SSLv2,!SSLv3",
		"smtp_tls_mandatory_protocols = !SSLv2,!SSLv3",
		"smtpd_tls_protocols = !SSLv2,!SSLv3",
		"smtp_tls_protocols = !SSLv2,!SSLv3",
		"myhostname = examplehost.example.com",
		"myorigin = $myhostname",
		"mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128",
		"mynetworks_style = host",
		"alias_maps = hash:"+aliases,
		"alias_database = hash:"+aliases,
		fmt.Sprintf("relayhost = [mx.example.com]:%d", relay.ports.SMTP),
		"smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination",
		"recipient_delimiter = +",
		"inet_interfaces = loopback-only",
		"smtpd_client_restrictions = permit_mynetworks, reject",
		"inet_protocols = ipv4",
		"canonical_classes = envelope_sender, header_sender, header_recipient",
		"canonical_maps = regexp:"+canonical,
		// The null client (Postfix's STANDARD_CONFIGURATION_README):
		// nothing is delivered here, everything goes to the relayhost.
		"mydestination =",
		"virtual_mailbox_domains =",
		"local_transport = error:local delivery is disabled",
		"default_transport = smtp",
		"minimal_backoff_time = 1s",
		"maximal_backoff_time = 2s",
		"queue_run_delay = 1s",
	)
	return &nullClient{host: host, relay: relay, trap: tr}
}

// messagesIn returns the messages of a Maildir by subject once it holds
// n; on a timeout the failure shows the servers' logs.
func messagesIn(t *testing.T, dir string, n int, servers ...*mta) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); len(subjectsIn(t, dir)) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			logs := ""
			for _, m := range servers {
				logs += "\n" + m.dir + ":\n" + m.Log()
			}
			t.Fatalf("%s: %q after 30 s, want %d messages%s", dir, subjectsIn(t, dir), n, logs)
		}
	}
	out := map[string]string{}
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(dir, sub))
		for _, e := range ents {
			b, err := os.ReadFile(filepath.Join(dir, sub, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			hdr, _, _ := strings.Cut(string(b), "\n\n")
			for _, line := range strings.Split(hdr, "\n") {
				if s, ok := strings.CutPrefix(line, "Subject: "); ok {
					out[strings.TrimSpace(s)] = string(b)
				}
			}
		}
	}
	return out
}

// TestGuide004NullClient: mail posted with sendmail and over SMTP from
// localhost, to the relayhost's domain and to this host's own name,
// leaves through the relayhost with guide 004's canonical rewriting
// applied, and never through an MX; with the relayhost down it is
// deferred and delivered once the relayhost is back.
func TestGuide004NullClient(t *testing.T) {
	t.Parallel()
	nc := newNullClient(t)
	real := nullClientPostfix(t, nc)
	nc.relay.start()
	nc.host.start()
	relayAt := fmt.Sprintf("relay=mx.example.com[127.0.0.2]:%d", nc.relay.ports.SMTP)

	postCron(t, nc.host.smtpAddr(), "", nc.host.Log, []string{"MAIL_CONFIG=" + nc.host.dir}, nc.host.bin, "sendmail", "-i", "root")
	// Both arrive there (root@examplehost.example.com is aliased to
	// admin@example.com on the relayhost).
	msgs := messagesIn(t, nc.relay.maildir(), 2, nc.host, nc.relay)
	smtpMsg, sendmailMsg := msgs["via-smtp"], msgs["via-sendmail"]
	for _, want := range []string{
		"Return-Path: <root+examplehost@example.com>",
		"From: Cron Daemon <root+examplehost@example.com>",
		"To: root+examplehost@example.com",
		"root@examplehost.example.com stays in the body",
		"by examplehost.example.com",
	} {
		if !strings.Contains(smtpMsg, want) {
			t.Errorf("message sent over SMTP lacks %q:\n%s", want, smtpMsg)
		}
	}
	login := "root"
	if u, err := user.Current(); err == nil {
		login = u.Username
	}
	sender := login + "@examplehost.example.com"
	if login == "root" {
		sender = "root+examplehost@example.com"
	}
	for _, want := range []string{"Return-Path: <" + sender + ">", "Subject: via-sendmail"} {
		if !strings.Contains(sendmailMsg, want) {
			t.Errorf("message sent with sendmail lacks %q:\n%s\nnull client log:\n%s", want, sendmailMsg, nc.host.Log())
		}
	}
	// The From: sendmail adds carries the passwd full name, as Postfix's
	// ("root <root+examplehost@example.com>"): compare the address.
	if a := headerAddress(sendmailMsg, "From"); a != sender {
		t.Errorf("message sent with sendmail: From: address %q, want %q\n%s", a, sender, sendmailMsg)
	}
	nc.host.waitLog(10*time.Second, "to=<root@examplehost.example.com>, "+relayAt, "status=sent (250 ")
	// Postfix logs the unqualified recipient sendmail was given.
	if !strings.Contains(nc.host.Log(), "to=<root@examplehost.example.com>, orig_to=<root>, "+relayAt) {
		t.Errorf("no orig_to=<root> for the recipient sendmail got as \"root\":\n%s", nc.host.Log())
	}

	// The relayhost down: deferred, then delivered when it is back.
	nc.relay.stop()
	if err := sendPlain(nc.host.smtpAddr(), "root@examplehost.example.com", "admin@example.com", "while-down", "retry me"); err != nil {
		t.Fatalf("send: %v\n%s", err, nc.host.Log())
	}
	nc.host.waitLog(10*time.Second, fmt.Sprintf("status=deferred (connect to mx.example.com[127.0.0.2]:%d: Connection refused)", nc.relay.ports.SMTP))
	nc.relay.start()
	nc.host.waitLog(10*time.Second, "to=<admin@example.com>, "+relayAt)
	if _, ok := messagesIn(t, nc.relay.maildir(), 3, nc.host, nc.relay)["while-down"]; !ok {
		t.Errorf("the deferred message did not arrive after the relayhost came back")
	}
	waitQueueEmpty(t, nc.host)
	if n := nc.trap.conns.Load(); n != 0 {
		t.Errorf("%d connections to the MX trap: the null client looked up an MX instead of using the relayhost\n%s", n, nc.host.Log())
	}
	if strings.Contains(nc.host.Log(), "relay=virtual") || strings.Contains(nc.host.Log(), "relay=local") {
		t.Errorf("the null client delivered locally:\n%s", nc.host.Log())
	}
	if real == nil {
		return
	}

	// The same two messages through a real Postfix null client with the
	// same settings reach the relayhost with the same rewriting.
	real.wait(t)
	postCron(t, real.addr, "pf-", real.log, nil, "/usr/sbin/sendmail", "-C", filepath.Join(real.dir, "etc"), "-i", "root")
	msgs = messagesIn(t, nc.relay.maildir(), 5, nc.host, nc.relay)
	for _, pair := range [][2]string{{"via-smtp", "pf-via-smtp"}, {"via-sendmail", "pf-via-sendmail"}} {
		ours, theirs := msgs[pair[0]], msgs[pair[1]]
		for _, h := range []string{"Return-Path", "From", "To"} {
			if a, b := headerAddress(ours, h), headerAddress(theirs, h); a != b {
				t.Errorf("%s: %s address: %q through postcote, %q through Postfix\npostcote's:\n%s\nPostfix's:\n%s", pair[0], h, a, b, ours, theirs)
			}
		}
		// The From: that sendmail adds carries the user's full name
		// (passwd GECOS) in Postfix, as in Sendmail.
		if a, b := headerValue(ours, "From"), headerValue(theirs, "From"); a != b {
			t.Errorf("%s: From: %q through postcote, %q through Postfix (display name)", pair[0], a, b)
		}
	}
}

// nullClientPostfix starts (in the background) a real Postfix null
// client with the settings newNullClient gives postcote, relaying to
// the relayhost by its address (this Postfix has no fake DNS).
func nullClientPostfix(t *testing.T, nc *nullClient) *realPostfix {
	t.Helper()
	canonical := postfixFile(t, "canonical.regexp", nullCanonical)
	return startPostfix(t, "myhostname = examplehost.example.com\nmyorigin = $myhostname\nappend_dot_mydomain = no\n"+
		"mynetworks = 127.0.0.0/8\nmynetworks_style = host\nalias_maps =\nrecipient_delimiter = +\n"+
		fmt.Sprintf("relayhost = [127.0.0.2]:%d\n", nc.relay.ports.SMTP)+
		"smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination\n"+
		"smtpd_client_restrictions = permit_mynetworks, reject\n"+
		"canonical_classes = envelope_sender, header_sender, header_recipient\n"+
		"canonical_maps = regexp:"+canonical+"\n"+
		"mydestination =\nlocal_transport = error:local delivery is disabled\n")
}

// postCron posts cron's two messages to a null client: one over SMTP
// from localhost, one with its sendmail (argv) to the unqualified
// "root", which myorigin makes root@examplehost.example.com, not local
// there. Subjects are prefix+"via-smtp" and prefix+"via-sendmail".
func postCron(t *testing.T, smtpAddr, prefix string, log func() string, env []string, sendmail ...string) {
	t.Helper()
	c := dialConv(t, smtpAddr, "127.0.0.1", log)
	for _, line := range []string{"MAIL FROM:<root@examplehost.example.com>", "RCPT TO:<root@examplehost.example.com>"} {
		if got := c.cmd(line); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("%s: %q\n%s", line, got, log())
		}
	}
	if got := c.data("From: Cron Daemon <root@examplehost.example.com>\r\nTo: root@examplehost.example.com\r\nSubject: " + prefix + "via-smtp\r\n\r\nroot@examplehost.example.com stays in the body\r\n"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("DATA: %q\n%s", got, log())
	}
	c.cmd("QUIT")
	cmd := exec.Command(sendmail[0], sendmail[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader("Subject: " + prefix + "via-sendmail\n\ncron output\n")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s\n%s", strings.Join(sendmail, " "), err, stderr.String(), log())
	}
}

// headerAddress returns the address in a header field ("" if none).
func headerAddress(msg, name string) string {
	a, err := mail.ParseAddress(headerValue(msg, name))
	if err != nil {
		return ""
	}
	return a.Address
}

// headerValue returns the first value of a header field of a message.
func headerValue(msg, name string) string {
	hdr, _, _ := strings.Cut(msg, "\n\n")
	for _, line := range strings.Split(hdr, "\n") {
		if v, ok := strings.CutPrefix(line, name+": "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
