package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postcote/internal/testenv"
)

// This file checks guide 001's sender ownership rule end to end:
// smtpd_sender_login_maps in LDAP (query_filter =
// (|(mailacceptinggeneralid=%s)(maildrop=%s)), result_attribute = uid)
// with smtpd_recipient_restrictions = reject_sender_login_mismatch, as
// the guide writes them, against the guide's directory in a real slapd.
// In that directory mail000 owns mail000@example.org, info@example.org,
// shared@example.org and its maildrop mail000@mx.example.com; mail001
// owns mail001@example.org and shares shared@example.org.

// guide001 is guide 001 applied to a server: where its Maildir is.
type guide001 struct {
	base    string // virtual_mailbox_base
	maildir string // mail000's Maildir under base
}

// applyGuide001 starts slapd with the guide's directory, writes the
// guide's LDAP maps (server URL and CA path changed) and appends the
// guide's main.cf lines. SASL logins are the directory's uids, mail000
// and mail001, with the passwords the directory has, in the dev
// configuration's passwd-file (Dovecot's passdb is not what is tested
// here). Needs root: the guide delivers as uid 20000.
func applyGuide001(t *testing.T, m *mta) guide001 {
	t.Helper()
	if testing.Short() {
		t.Skip("starts slapd")
	}
	if os.Getuid() != 0 {
		t.Skip("guide 001 delivers as uid 20000: needs root")
	}
	testdata := filepath.Join("..", "internal", "lookup", "testdata", "g001")
	ldif, err := os.ReadFile(filepath.Join(testdata, "directory.ldif"))
	if err != nil {
		t.Fatal(err)
	}
	s := testenv.StartSlapd(t, testenv.SlapdOptions{
		ExtraSchema: []string{filepath.Join(testdata, "postfix-schema.ldif")},
		ACL: []string{
			`to attrs=userPassword by self =xw by anonymous auth by * none`,
			`to dn.subtree="ou=Mail,dc=example,dc=com" by dn.base="cn=mailAccountReader,ou=Manager,dc=example,dc=com" read by * none`,
		},
		Indexes: []string{"mailacceptinggeneralid eq,sub", "maildrop eq", "uid eq"},
		LDIF:    []string{string(ldif)},
	})
	repl := strings.NewReplacer("ldap://ldap.example.com", s.URI, "/etc/ldap/tls/CA.pem", s.CAFile)
	maps := map[string]string{}
	for _, name := range []string{"virtual_alias_domains", "virtual_alias_maps", "virtual_mailbox_maps", "virtual_uid_maps", "smtpd_sender_login_maps"} {
		data, err := os.ReadFile(filepath.Join(testdata, name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(m.dir, "ldap-"+name)
		if err := os.WriteFile(path, []byte(repl.Replace(string(data))), 0o600); err != nil {
			t.Fatal(err)
		}
		maps[name] = "ldap:" + path
	}
	var users bytes.Buffer
	for _, u := range []string{"mail000", "mail001"} {
		hash, err := exec.Command(m.bin, "doveadm", "pw", "-s", "BLF-CRYPT", "-p", u+"pw").Output()
		if err != nil {
			t.Fatalf("doveadm pw: %v", err)
		}
		fmt.Fprintf(&users, "%s:%s::::::\n", u, bytes.TrimSpace(hash))
	}
	f, err := os.OpenFile(filepath.Join(m.dir, "users"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(users.Bytes()); err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(m.dir, "root")
	m.setMain(
		"myhostname = mx.example.com",
		"mydestination =",
		"virtual_alias_domains = "+maps["virtual_alias_domains"],
		"virtual_mailbox_domains = $myhostname",
		"virtual_alias_maps = "+maps["virtual_alias_maps"],
		"virtual_mailbox_base = "+base,
		"virtual_mailbox_maps = "+maps["virtual_mailbox_maps"],
		"virtual_uid_maps = "+maps["virtual_uid_maps"],
		"virtual_gid_maps = "+maps["virtual_uid_maps"],
		"smtpd_sender_login_maps = "+maps["smtpd_sender_login_maps"],
		"smtpd_sasl_type = dovecot",
		"smtpd_sasl_path = private/auth",
		"smtpd_sasl_auth_enable = yes",
		"broken_sasl_auth_clients = yes",
		"smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination",
		"smtpd_recipient_restrictions = reject_sender_login_mismatch",
		// Host names changed: this host's client network only.
		"mynetworks = 127.0.0.3/32",
		"virtual_transport = virtual",
		"default_transport = smtp",
	)
	return guide001{base: base, maildir: filepath.Join(base, "home", "mail", "mail000", "mailbox")}
}

// mismatchCase is one MAIL FROM by a login ("" for none) and the reply
// Postfix gives to the RCPT that follows (restrictions are delayed to
// RCPT by smtpd_delay_reject).
type mismatchCase struct {
	login, from, want string
}

var mismatchCases = []mismatchCase{
	{"mail000", "mail000@example.org", "250 "},
	{"mail000", "info@example.org", "250 "},       // their alias
	{"mail000", "mail000@mx.example.com", "250 "}, // their maildrop
	{"mail000", "shared@example.org", "250 "},     // owned by both
	{"mail001", "shared@example.org", "250 "},     // owned by both
	{"mail000", "MAIL001@Example.ORG", "553 5.7.1 <MAIL001@Example.ORG>: Sender address rejected: not owned by user mail000"},
	{"mail000", "mail001@example.org", "553 5.7.1 <mail001@example.org>: Sender address rejected: not owned by user mail000"},
	{"mail001", "info@example.org", "553 5.7.1 <info@example.org>: Sender address rejected: not owned by user mail001"},
	// Nobody owns it: reject_sender_login_mismatch still refuses it to a
	// logged-in client (only reject_known_sender_login_mismatch would
	// let it pass).
	{"mail001", "nobody@elsewhere.example", "553 5.7.1 <nobody@elsewhere.example>: Sender address rejected: not owned by user mail001"},
	// Unauthenticated, on port 25, from a stranger.
	{"", "mail000@example.org", "553 5.7.1 <mail000@example.org>: Sender address rejected: not logged in"},
	{"", "info@example.org", "553 5.7.1 <info@example.org>: Sender address rejected: not logged in"},
	{"", "someone@elsewhere.example", "250 "},
}

// mismatchReply runs one case's session on addr (STARTTLS first when
// tls) and returns the reply to RCPT TO:<info@example.org>.
func mismatchReply(t *testing.T, addr string, tls bool, m *mta, log func() string, tc mismatchCase) string {
	t.Helper()
	c := dialConv(t, addr, "127.0.0.1", log)
	defer c.cmd("QUIT")
	if tc.login != "" {
		if tls {
			if err := c.startTLS(); err != nil {
				t.Fatalf("STARTTLS: %v\n%s", err, m.Log())
			}
		}
		if got := c.cmd("AUTH PLAIN " + plainResponse(tc.login, tc.login+"pw")); !strings.HasPrefix(got, "235 2.7.0") {
			t.Fatalf("AUTH PLAIN %s on %s: %q\npostcote log:\n%s", tc.login, addr, got, m.Log())
		}
	}
	if got := c.cmd("MAIL FROM:<" + tc.from + ">"); !strings.HasPrefix(got, "250 ") {
		return got
	}
	return c.cmd("RCPT TO:<info@example.org>")
}

// TestSenderLoginMismatchGuide001: an authenticated user may send as
// the addresses the LDAP map gives to their login (own address, alias,
// maildrop, an address shared with another user) and is refused with
// Postfix's 553 5.7.1 for anyone else's and for addresses nobody owns;
// an unauthenticated client may not use an owned address at all
// (Postfix's "not logged in"), but may use an address nobody owns.
// Run as root with Postfix installed, the same table runs against a real
// Postfix whose SASL goes to this postcote's Dovecot auth socket and
// whose smtpd_sender_login_maps holds the same owners.
func TestSenderLoginMismatchGuide001(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts slapd")
	}
	m := newMTA(t, "demo@example.test", "127.0.0.1", testenv.Binary(t))
	real := mismatchPostfix(t, m)
	g := applyGuide001(t, m)
	m.start()

	sub := net.JoinHostPort("127.0.0.1", fmt.Sprint(m.ports.Submission))
	// m.start waits for port 25's listener only.
	if err := waitDial(sub); err != nil {
		t.Fatalf("submission: %v\n%s", err, m.Log())
	}
	for _, tc := range mismatchCases {
		addr := sub
		if tc.login == "" {
			addr = m.smtpAddr()
		}
		if got := mismatchReply(t, addr, true, m, m.Log, tc); !strings.HasPrefix(got, tc.want) {
			t.Errorf("login %q, MAIL FROM:<%s>, RCPT: %q, want %q\nserver log:\n%s", tc.login, tc.from, got, tc.want, m.Log())
		}
	}
	compareMismatchWithPostfix(t, m, real)

	// The accepted alias goes all the way: a message sent as info@ by
	// mail000 is delivered (to mail000's own Maildir, through the alias).
	c := dialConv(t, sub, "127.0.0.1", m.Log)
	submissionLogin(t, c, m, "mail000", "mail000pw")
	for _, line := range []string{"MAIL FROM:<info@example.org>", "RCPT TO:<info@example.org>"} {
		if got := c.cmd(line); !strings.HasPrefix(got, "250 ") {
			t.Fatalf("%s: %q\n%s", line, got, m.Log())
		}
	}
	if got := c.data("From: <info@example.org>\r\nTo: <info@example.org>\r\nSubject: as-alias\r\n\r\nhi\r\n"); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("DATA: %q\n%s", got, m.Log())
	}
	c.cmd("QUIT")
	if got := waitForFiles(t, g.maildir, 1); len(got) != 1 || got[0] != "as-alias" {
		t.Errorf("mail000's Maildir: %q\n%s", got, m.Log())
	}
}

// mismatchPostfix starts (in the background) a real Postfix (root and
// /usr/sbin/postfix only, else nil) whose SASL goes to m's Dovecot auth
// socket, with the owners of guide 001's directory in a texthash: map
// (this Postfix has no LDAP module).
func mismatchPostfix(t *testing.T, m *mta) *realPostfix {
	t.Helper()
	owners := postfixFile(t, "owners", "mail000@example.org mail000\ninfo@example.org mail000\n"+
		"mail000@mx.example.com mail000\nshared@example.org mail000, mail001\n"+
		"mail001@example.org mail001\nmail001@mx.example.com mail001\n")
	return startPostfix(t, "myhostname = mx.example.com\nmydestination =\nmynetworks = 127.0.0.3/32\n"+
		"virtual_alias_domains = example.org\nvirtual_mailbox_domains = $myhostname\n"+
		"virtual_alias_maps = inline:{info@example.org=mail000@mx.example.com}\n"+
		"virtual_mailbox_maps = inline:{mail000@mx.example.com=mail000/}\n"+
		"smtpd_sender_login_maps = texthash:"+owners+"\n"+
		"smtpd_sasl_auth_enable = yes\nsmtpd_sasl_type = dovecot\n"+
		"smtpd_sasl_path = "+filepath.Join(m.dir, "spool", "private", "auth")+"\n"+
		"broken_sasl_auth_clients = yes\n"+
		"smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination\n"+
		"smtpd_recipient_restrictions = reject_sender_login_mismatch\n")
}

// compareMismatchWithPostfix runs mismatchCases against real, once m
// (running) lets Postfix's smtpd, which runs as postfix, reach its auth
// socket.
func compareMismatchWithPostfix(t *testing.T, m *mta, real *realPostfix) {
	t.Helper()
	if real == nil {
		return
	}
	sock := filepath.Join(m.dir, "spool", "private", "auth")
	openDirs(t, filepath.Dir(m.dir), m.dir, filepath.Join(m.dir, "spool"), filepath.Join(m.dir, "spool", "private"))
	if err := os.Chmod(sock, 0o666); err != nil {
		t.Fatalf("auth socket: %v\n%s", err, m.Log())
	}
	real.wait(t)
	t.Logf("running the table against a real Postfix on %s", real.addr)
	for _, tc := range mismatchCases {
		got := mismatchReply(t, real.addr, false, m, real.log, tc)
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("real Postfix: login %q, MAIL FROM:<%s>, RCPT: %q, the table wants %q\nPostfix log:\n%s", tc.login, tc.from, got, tc.want, real.log())
		}
	}
}
