package smtpd

import (
	"encoding/base64"
	"strings"
	"testing"

	"postcote/internal/sasl"
	"postcote/internal/sasl/sasltest"
	"postcote/internal/userdb"
)

// scramChecker is userdb's Checker over sasltest's users.
func scramChecker(t *testing.T) *userdb.Checker { return sasltest.Checker(t, "example.com") }

// scramAUTH runs AUTH SCRAM-SHA-256 for user/pw (with the client-first
// message as initial response when ir is set) and returns the final
// reply.
func scramAUTH(t *testing.T, c *client, user, pw string, ir bool) string {
	t.Helper()
	sc, err := sasl.NewSCRAMClient("SCRAM-SHA-256", user, pw, "")
	if err != nil {
		t.Fatal(err)
	}
	_, first, err := sc.Start()
	if err != nil {
		t.Fatal(err)
	}
	var reply string
	if ir {
		reply = c.cmd("AUTH SCRAM-SHA-256 "+base64.StdEncoding.EncodeToString(first), "*")
	} else {
		c.cmd("AUTH SCRAM-SHA-256", "334 ")
		reply = c.cmd(base64.StdEncoding.EncodeToString(first), "*")
	}
	for {
		chal, ok := strings.CutPrefix(reply, "334 ")
		if !ok {
			return reply
		}
		b, err := base64.StdEncoding.DecodeString(chal)
		if err != nil {
			t.Fatalf("334 %q: %v", chal, err)
		}
		resp, err := sc.Next(b)
		if err != nil {
			// The server's signature is wrong: cancel (RFC 4954 4).
			t.Errorf("SCRAM client: %v", err)
			return c.cmd("*", "*")
		}
		reply = c.cmd(base64.StdEncoding.EncodeToString(resp), "*")
	}
}

func TestAUTHSCRAM(t *testing.T) {
	opts := baseOptions()
	opts.SASLEnable = true
	opts.SASLMechanisms = []string{"plain", "scram-sha-256"}
	ts := startServerAuth(t, opts, scramChecker(t))
	tests := []struct {
		user, pw string
		ir       bool
		want     string
	}{
		{"scram@example.com", "pencil", true, "235 2.7.0 Authentication successful"},
		{"scram@example.com", "pencil", false, "235 2.7.0 Authentication successful"},
		{"plain@example.com", "pencil", true, "235 2.7.0 Authentication successful"},
		{"scram@example.com", "pencil2", true, "535 5.7.8 Error: authentication failed: authentication failure"},
		{"plain@example.com", "wrong", false, "535 5.7.8 Error: authentication failed: authentication failure"},
		{"crypt@example.com", "pencil", true, "535 5.7.8 Error: authentication failed: authentication failure"},
		{"nobody@example.com", "pencil", true, "535 5.7.8 Error: authentication failed: authentication failure"},
	}
	for _, tt := range tests {
		c := greet(t, ts.addr)
		c.cmd("EHLO c.example", "250-*AUTH PLAIN SCRAM-SHA-256*")
		if got := scramAUTH(t, c, tt.user, tt.pw, tt.ir); got != tt.want {
			t.Errorf("%s/%s (ir %v): %q; want %q", tt.user, tt.pw, tt.ir, got, tt.want)
		}
		if strings.HasPrefix(tt.want, "235") {
			c.cmd("MAIL FROM:<"+tt.user+">", "250 *")
			c.cmd("RCPT TO:<friend@elsewhere.example>", "250 2.1.5 Ok") // relay after AUTH
		}
		c.cmd("QUIT", "221 *")
	}
	waitFor(t, "log", func() bool {
		return strings.Contains(ts.log.String(), "SASL SCRAM-SHA-256 authentication failed")
	})
}

// TestSCRAMSecurityOptions: noplaintext leaves SCRAM on offer and takes
// PLAIN away; forward_secrecy takes both.
func TestSCRAMSecurityOptions(t *testing.T) {
	tests := []struct {
		opts []string
		ehlo string // AUTH line; "" = none
	}{
		{[]string{"noanonymous"}, "AUTH PLAIN LOGIN SCRAM-SHA-256"},
		{[]string{"noanonymous", "noplaintext"}, "AUTH SCRAM-SHA-256"},
		{[]string{"noactive", "nodictionary", "mutual_auth"}, "AUTH SCRAM-SHA-256"},
		{[]string{"forward_secrecy"}, ""},
	}
	for _, tt := range tests {
		opts := baseOptions()
		opts.SASLEnable = true
		opts.SASLMechanisms = []string{"PLAIN", "LOGIN", "SCRAM-SHA-256"}
		opts.SASLSecurityOptions = tt.opts
		ts := startServerAuth(t, opts, scramChecker(t))
		c := greet(t, ts.addr)
		ehlo := c.cmd("EHLO c.example", "250*")
		var auth string
		for _, l := range strings.Split(ehlo, "\n") {
			if a, ok := strings.CutPrefix(strings.TrimSpace(l[4:]), "AUTH "); ok {
				auth = "AUTH " + a
			}
		}
		if auth != tt.ehlo {
			t.Errorf("%v: EHLO %q; want %q", tt.opts, auth, tt.ehlo)
		}
		if tt.ehlo == "AUTH SCRAM-SHA-256" {
			c.cmd("AUTH PLAIN "+b64("\x00plain@example.com\x00pencil"), "535 5.7.8 Error: authentication failed: Invalid authentication mechanism")
			if got := scramAUTH(t, c, "plain@example.com", "pencil", true); got != "235 2.7.0 Authentication successful" {
				t.Errorf("%v: SCRAM: %q", tt.opts, got)
			}
		}
		c.cmd("QUIT", "221 *")
	}
}

// listingChecker is a checker that names its mechanisms, as the server
// wiring's in-process auth does from dovecot.conf's auth_mechanisms.
type listingChecker struct {
	*userdb.Checker
	mechs []string
}

func (l listingChecker) SASLMechanisms() []string { return l.mechs }

// TestMechanismLister: without SASLMechanisms, the checker's list is
// offered; a SCRAM mechanism with a checker that cannot give credentials
// is a configuration error.
func TestMechanismLister(t *testing.T) {
	opts := baseOptions()
	opts.SASLEnable = true
	ts := startServerAuth(t, opts, listingChecker{scramChecker(t), []string{"SCRAM-SHA-256", "PLAIN"}})
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*AUTH SCRAM-SHA-256 PLAIN*")
	c.cmd("QUIT", "221 *")

	opts.SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256"}
	if _, err := New(opts, &fakeQueue{}, newFakeAddrs(), fakeAuth{}); err == nil || !strings.Contains(err.Error(), "SCRAM-SHA-256") {
		t.Errorf("SCRAM with a plain checker: %v", err)
	}
}

// TestSCRAMWithGSASL: GNU SASL's gsasl(1), a SCRAM client that is not
// ours, authenticates over SMTP and checks the server's signature.
func TestSCRAMWithGSASL(t *testing.T) {
	opts := baseOptions()
	opts.SASLEnable = true
	opts.SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1"}
	ts := startServerAuth(t, opts, scramChecker(t))
	tests := []struct {
		mech, user, pw string
		ok             bool
	}{
		{"SCRAM-SHA-256", "scram@example.com", "pencil", true},
		{"SCRAM-SHA-1", "plain@example.com", "pencil", true},
		{"SCRAM-SHA-256", "scram@example.com", "pencil2", false},
		{"SCRAM-SHA-256", "crypt@example.com", "pencil", false},
	}
	for _, tt := range tests {
		out, ok := sasltest.GSASL(t, "smtp", ts.addr, tt.mech, tt.user, tt.pw)
		want := "535 5.7.8"
		if tt.ok {
			want = "235 2.7.0 Authentication successful"
		}
		if ok != tt.ok || !strings.Contains(out, want) {
			t.Errorf("gsasl %s %s/%s: ok=%v, want %v and %q\n%s", tt.mech, tt.user, tt.pw, ok, tt.ok, want, out)
		}
	}
}
