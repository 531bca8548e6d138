package imapd

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postcote/internal/sasl"
	"postcote/internal/userdb"
)

// scramPasswd: a {SCRAM-SHA-256} user as Dovecot 2.3.19's "doveadm pw -s
// SCRAM-SHA-256 -p pencil" wrote it, a {PLAIN} one and a crypt one.
const scramPasswd = `scram@example.jp:{SCRAM-SHA-256}4096,Yhkh+hjEMgk24YZsYy3P5g==,9ldF5DUpMvnCjZZt3X00hnDJHdcR6MNUjtEd1MBmfxQ=,hlEmTdadupvtOnkeU6KkgQjnYuSOMLErj+MyWheasJw=
plain@example.jp:{PLAIN}pencil
crypt@example.jp:{SHA512-CRYPT}$6$rgDQAwwO.CrIifXN$S7wcGYmxwIl3relsp9uNjp5ZMUow9jctid.czYK0hWMMvsaANk9bYh4zWV9fzGa1VUZpY8ZNEXR265zWplC7Q/
`

// scramServer serves IMAP with userdb's Checker over a passwd-file, SCRAM
// configured and plaintext auth disabled, without TLS.
func scramServer(t *testing.T) *testServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(path, []byte(scramPasswd), 0o600); err != nil {
		t.Fatal(err)
	}
	pdb, err := userdb.NewPassDB("passwd-file", "scheme=CRYPT username_format=%u "+path, userdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	co := userdb.DefaultCheckerOptions()
	co.FailureDelay = 0
	checker := userdb.NewChecker([]userdb.PassDB{pdb}, nil, co)
	store := newMemStore()
	opts := Options{AuthMechanisms: []string{"plain", "scram-sha-256"}, AuthFailureDelay: 1, MaxAuthFailures: 10}
	ts := serveWith(t, New(opts, store, checker, testUsers{root: t.TempDir()}))
	ts.store = store
	return ts
}

func scramClient(t *testing.T, user, pw string) *sasl.SCRAMClient {
	t.Helper()
	cl, err := sasl.NewSCRAMClient("SCRAM-SHA-256", user, pw, "")
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestAuthenticateSCRAM logs in with AUTHENTICATE SCRAM-SHA-256 through
// go-imap's client (SASL-IR, the server-final message as a last "+"
// continuation whose signature the client checks).
func TestAuthenticateSCRAM(t *testing.T) {
	ts := scramServer(t)
	tests := []struct {
		user, pw string
		ok       bool
	}{
		{"scram@example.jp", "pencil", true},
		{"plain@example.jp", "pencil", true},
		{"scram@example.jp", "pencil2", false},
		{"plain@example.jp", "wrong", false},
		{"crypt@example.jp", "pencil", false}, // a crypt hash cannot serve SCRAM
		{"nobody@example.jp", "pencil", false},
	}
	for _, tt := range tests {
		c, err := imapclient.DialInsecure(ts.addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		caps := c.Caps()
		// disable_plaintext_auth: PLAIN hidden, SCRAM offered.
		if !caps.Has(imap.CapLoginDisabled) || !caps.Has("AUTH=SCRAM-SHA-256") || caps.Has("AUTH=PLAIN") {
			t.Errorf("capabilities without TLS: %v", caps)
		}
		err = c.Authenticate(scramClient(t, tt.user, tt.pw))
		var ierr *imap.Error
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s/%s: %v", tt.user, tt.pw, err)
		case !tt.ok && (!errors.As(err, &ierr) || ierr.Type != imap.StatusResponseTypeNo || ierr.Code != imap.ResponseCodeAuthenticationFailed):
			t.Errorf("%s/%s: %v; want NO [AUTHENTICATIONFAILED]", tt.user, tt.pw, err)
		}
		if tt.ok {
			if _, err := c.Select("INBOX", nil).Wait(); err != nil {
				t.Errorf("%s: SELECT after SCRAM login: %v", tt.user, err)
			}
		}
		c.Close()
	}
}

// TestAuthenticateSCRAMRaw: the exact dialog without SASL-IR, and PLAIN
// still refused with PRIVACYREQUIRED on the same insecure connection.
func TestAuthenticateSCRAMRaw(t *testing.T) {
	ts := scramServer(t)
	c := dialRaw(t, ts.addr)
	c.line() // greeting
	c.send("a AUTHENTICATE PLAIN AHBsYWluQGV4YW1wbGUuanAAcGVuY2ls\r\n")
	if l := c.line(); !strings.HasPrefix(l, "a NO [PRIVACYREQUIRED]") {
		t.Fatalf("PLAIN without TLS: %q", l)
	}
	cl := scramClient(t, "plain@example.jp", "pencil")
	_, first, _ := cl.Start()
	c.send("b AUTHENTICATE SCRAM-SHA-256\r\n")
	if l := c.line(); l != "+ " && l != "+" {
		t.Fatalf("want an empty continuation, got %q", l)
	}
	c.send(base64.StdEncoding.EncodeToString(first) + "\r\n")
	final, err := cl.Next(continuation(t, c))
	if err != nil {
		t.Fatal(err)
	}
	c.send(base64.StdEncoding.EncodeToString(final) + "\r\n")
	empty, err := cl.Next(continuation(t, c))
	if err != nil || len(empty) != 0 {
		t.Fatalf("server-final: %q %v", empty, err)
	}
	c.send("\r\n")
	if l := c.line(); !strings.HasPrefix(l, "b OK [CAPABILITY") {
		t.Fatalf("after SCRAM: %q", l)
	}
}

// continuation reads a "+ base64" line and decodes it.
func continuation(t *testing.T, c *rawConn) []byte {
	t.Helper()
	l := c.line()
	data, ok := strings.CutPrefix(l, "+ ")
	if !ok {
		t.Fatalf("want a continuation, got %q", l)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatalf("continuation %q: %v", l, err)
	}
	return b
}

// TestSCRAMNeedsCredentialsLookup: with a checker that can only check
// passwords, SCRAM is not offered even when configured.
func TestSCRAMNeedsCredentialsLookup(t *testing.T) {
	ts := startServer(t, Options{AllowPlaintextAuth: true, AuthMechanisms: []string{"plain", "scram-sha-256"}}, nil)
	c := dialRaw(t, ts.addr)
	c.line()
	c.send("a CAPABILITY\r\n")
	if line := c.line(); strings.Contains(line, "SCRAM") || !strings.Contains(line, "AUTH=PLAIN") {
		t.Errorf("capabilities: %s", line)
	}
	c.line()
	c.send("b AUTHENTICATE SCRAM-SHA-256\r\n")
	if l := c.line(); l != "b NO Unsupported authentication mechanism." {
		t.Errorf("SCRAM without CredentialsLookup: %q", l)
	}
}

// TestSCRAMWithGSASL: GNU SASL's gsasl(1), a SCRAM client that is not
// ours, logs in over IMAP (Debian package gsasl; skipped without it).
func TestSCRAMWithGSASL(t *testing.T) {
	gsasl, err := exec.LookPath("gsasl")
	if err != nil {
		t.Skip("gsasl not installed (apt-get install -y gsasl)")
	}
	ts := scramServer(t)
	tests := []struct {
		user, pw string
		ok       bool
	}{
		{"scram@example.jp", "pencil", true},
		{"plain@example.jp", "pencil", true},
		{"scram@example.jp", "pencil2", false},
		{"crypt@example.jp", "pencil", false},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		cmd := exec.CommandContext(ctx, gsasl, "--client", "--imap", "--connect="+ts.addr, "--no-starttls",
			"--mechanism=SCRAM-SHA-256", "--authentication-id="+tt.user, "--password="+tt.pw, "--verbose")
		out, err := cmd.CombinedOutput()
		cancel()
		if (err == nil) != tt.ok {
			t.Errorf("gsasl %s/%s: %v; want ok=%v\n%s", tt.user, tt.pw, err, tt.ok, out)
		} else if testing.Verbose() {
			t.Logf("gsasl %s/%s: %v\n%s", tt.user, tt.pw, err, out)
		}
	}
}
