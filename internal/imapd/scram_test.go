package imapd

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"postcote/internal/sasl"
	"postcote/internal/sasl/sasltest"
)

// scramServer serves IMAP with userdb's Checker over sasltest's users,
// SCRAM configured and plaintext auth disabled, without TLS.
func scramServer(t *testing.T) *testServer {
	t.Helper()
	store := newMemStore()
	opts := Options{AuthMechanisms: []string{"plain", "scram-sha-256"}, AuthFailureDelay: 1, MaxAuthFailures: 10}
	ts := serveWith(t, New(opts, store, sasltest.Checker(t, "example.jp"), testUsers{root: t.TempDir()}))
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
// ours, logs in over IMAP and checks the server's signature.
func TestSCRAMWithGSASL(t *testing.T) {
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
		out, ok := sasltest.GSASL(t, "imap", ts.addr, "SCRAM-SHA-256", tt.user, tt.pw)
		if ok != tt.ok || (!ok && !strings.Contains(out, "NO [AUTHENTICATIONFAILED]")) {
			t.Errorf("gsasl %s/%s: ok=%v, want %v\n%s", tt.user, tt.pw, ok, tt.ok, out)
		}
	}
}

// TestSCRAMWithSSLRequired: ssl = required refuses SCRAM too until TLS,
// as Dovecot does.
func TestSCRAMWithSSLRequired(t *testing.T) {
	opts := Options{AuthMechanisms: []string{"plain", "scram-sha-256"}, TLSRequiredForAuth: true, AuthFailureDelay: 1}
	ts := serveWith(t, New(opts, newMemStore(), sasltest.Checker(t, "example.jp"), testUsers{root: t.TempDir()}))
	c := dialRaw(t, ts.addr)
	c.line()
	_, first, _ := scramClient(t, "scram@example.jp", "pencil").Start()
	c.send("a AUTHENTICATE SCRAM-SHA-256 " + base64.StdEncoding.EncodeToString(first) + "\r\n")
	if l := c.line(); l != "a NO [PRIVACYREQUIRED] Authentication not allowed until SSL/TLS is enabled." {
		t.Errorf("SCRAM before TLS under ssl = required: %q", l)
	}
}
