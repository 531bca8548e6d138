package smtpd

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// TestRelayTricks: an untrusted, unauthenticated client must not be able
// to relay with any of the classic address tricks. The refusal names the
// address as Postfix does (smtpd.c extract_addr): source route stripped,
// local part unquoted, domain as sent.
func TestRelayTricks(t *testing.T) {
	opts := baseOptions()
	opts.RelayRestrictions = []string{"permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"}
	ts := startServer(t, opts)
	refused := []struct{ rcpt, shown string }{
		{"user@elsewhere.example", ""},
		{"user@elsewhere.example.", ""},
		{"user@ELSEWHERE.EXAMPLE", ""},
		{"user@example.com.elsewhere.example", ""},
		{"user%elsewhere.example@example.com", ""},
		{"user%elsewhere.example@EXAMPLE.COM.", ""},
		{"user%elsewhere.example@relay.test", ""},
		{"user@elsewhere.example@example.com", ""},
		{`"user@elsewhere.example"@example.com`, "user@elsewhere.example@example.com"},
		{`"user%elsewhere.example"@example.com`, "user%elsewhere.example@example.com"},
		{"elsewhere.example!user@example.com", ""},
		{"elsewhere.example!user@relay.test", ""},
		// "%", "!" and "@" are routing in virtual domains too: the
		// next hop may honour them (resolve.c RESOLVE_FLAG_ROUTED).
		{"u%x@virtual.test", ""},
		{"x!u@virtual.test", ""},
		{"user%elsewhere.example@alias.test", ""},
		{`"user@elsewhere.example"@alias.test`, "user@elsewhere.example@alias.test"},
		// Unqualified: $myhostname is appended after the routing.
		{"user%elsewhere.example", ""},
		{"elsewhere.example!user", ""},
		{"@example.com:user@elsewhere.example", "user@elsewhere.example"},
		{"@example.com,@mx.example.com:user@elsewhere.example", "user@elsewhere.example"},
		{"user@[192.0.2.1]", ""},
		{"user@[IPv6:2001:db8::1]", ""},
	}
	accepted := []string{
		"user@example.com",
		"user@EXAMPLE.COM.",
		"USER@example.com",
		"anyone@relay.test",
		"postmaster", // unqualified: ours (RFC 5321 4.5.1)
		// A source route is ignored (RFC 5321 C), as Postfix does: the
		// destination is ours.
		"@elsewhere.example:user@example.com",
	}
	var c *client
	for i, tc := range refused {
		if i%8 == 0 { // a new session before smtpd_soft_error_limit
			if c != nil {
				c.cmd("QUIT", "221 *")
			}
			c = greet(t, ts.addr)
			c.cmd("EHLO c.example", "250-*")
			c.cmd("MAIL FROM:<s@remote.example>", "250 *")
		}
		shown := tc.shown
		if shown == "" {
			shown = tc.rcpt
		}
		c.cmd("RCPT TO:<"+tc.rcpt+">", "554 5.7.1 <"+shown+">: Relay access denied")
	}
	for _, a := range accepted {
		ts.addrs.known[strings.ToLower(a)] = true
		c.cmd("RCPT TO:<"+a+">", "250 2.1.5 Ok")
	}
	c.cmd("RCPT TO:user@elsewhere.example", "554 5.7.1 <user@elsewhere.example>: Relay access denied")
	c.cmd("QUIT", "221 *")
	waitFor(t, "log", func() bool {
		return strings.Contains(ts.log.String(), "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 5.7.1 <user@elsewhere.example>: Relay access denied; from=<s@remote.example> to=<user@elsewhere.example> proto=ESMTP helo=<c.example>") &&
			strings.Contains(ts.log.String(), "554 5.7.1 <user@elsewhere.example@example.com>: Relay access denied; from=<s@remote.example> to=<user@elsewhere.example@example.com> proto=ESMTP")
	})
}

func TestRelayDefaults(t *testing.T) {
	// Postfix's default smtpd_relay_restrictions defers (454) strangers.
	ts := startServer(t, baseOptions())
	c := greet(t, ts.addr)
	c.cmd("HELO c", "250 *")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@elsewhere.example>", "454 4.7.1 <user@elsewhere.example>: Relay access denied")
	c.cmd("QUIT", "221 *")

	// A client in mynetworks may relay.
	opts := baseOptions()
	opts.MyNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	ts = startServer(t, opts)
	c = greet(t, ts.addr)
	c.cmd("HELO c", "250 *")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@elsewhere.example>", "250 2.1.5 Ok")
	c.cmd("RCPT TO:<nobody@example.com>", "550 5.1.1 *User unknown in local recipient table")

	// A directory failure is temporary.
	ts.addrs.fail = true
	c.cmd("RCPT TO:<user@example.com>", "451 4.3.0 <user@example.com>: Temporary lookup failure")
}

func TestNewErrors(t *testing.T) {
	srvTLS, _, _ := tlsPair(t)
	tests := []struct {
		name string
		mod  func(*Options)
		want string
	}{
		{"unknown restriction", func(o *Options) { o.RecipientRestrictions = []string{"permit_mynetworks", "reject_unknown_thing"} }, "unknown or unsupported restriction"},
		{"open relay", func(o *Options) { o.RelayRestrictions = []string{"permit"} }, "open relay"},
		{"open relay, empty lists", func(o *Options) { o.RelayRestrictions = []string{} }, "open relay"},
		{"access table without tables", func(o *Options) { o.SenderRestrictions = []string{"check_sender_access hash:/etc/postfix/access"} }, "no lookup tables"},
		{"access table without argument", func(o *Options) { o.OpenTable = openMap; o.SenderRestrictions = []string{"check_sender_access"} }, "needs a table"},
		{"login mismatch without maps", func(o *Options) { o.RecipientRestrictions = []string{"reject_sender_login_mismatch"} }, "smtpd_sender_login_maps"},
		{"bad tls level", func(o *Options) { o.TLS = srvTLS; o.TLSLevel = "verify" }, "smtpd_tls_security_level"},
		{"encrypt without cert", func(o *Options) { o.TLSLevel = TLSEncrypt }, "certificate"},
		{"no hostname", func(o *Options) { o.Hostname = "" }, "myhostname"},
		{"bad mechanism", func(o *Options) { o.SASLMechanisms = []string{"GSSAPI"} }, "GSSAPI"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions()
			tt.mod(&opts)
			_, err := New(opts, &fakeQueue{}, newFakeAddrs(), fakeAuth{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want error with %q", err, tt.want)
			}
		})
	}
	// Recipient restrictions alone may carry the relay check (Postfix < 2.10 style).
	opts := baseOptions()
	opts.RelayRestrictions = []string{}
	opts.RecipientRestrictions = []string{"permit_mynetworks", "reject_unauth_destination"}
	if _, err := New(opts, &fakeQueue{}, newFakeAddrs(), nil); err != nil {
		t.Errorf("New: %v", err)
	}
}

// mapTable is an in-memory lookup table.
type mapTable map[string]string

func (m mapTable) Lookup(_ context.Context, key string) ([]string, error) {
	if key == "fail.example" {
		return nil, errors.New("table down")
	}
	if v, ok := m[key]; ok {
		return []string{v}, nil
	}
	return nil, nil
}

var testTables = map[string]Table{
	"hash:/etc/postfix/sender_access": mapTable{
		"spammer@bad.example": "REJECT go away",
		"bad.example":         "554 5.7.0 Domain blocked",
		"friend.example":      "OK",
		"slow.example":        "DEFER",
		"odd.example":         "FROBNICATE",
		"ok@":                 "DUNNO",
	},
	"hash:/etc/postfix/client_access": mapTable{"127.0.0": "REJECT"},
	"hash:/etc/postfix/helo_access":   mapTable{"evil.example": "550 No thanks"},
	"hash:/etc/postfix/login_maps":    mapTable{"boss@example.com": "boss", "example.com": "user@example.com, admin"},
}

func openMap(name string) (Table, error) {
	if t, ok := testTables[name]; ok {
		return t, nil
	}
	return nil, errors.New("no such table")
}

func TestRestrictionEvaluation(t *testing.T) {
	opts := baseOptions()
	opts.OpenTable = openMap
	opts.SenderLoginMaps = testTables["hash:/etc/postfix/login_maps"]
	opts.HeloRestrictions = []string{"reject_invalid_helo_hostname", "reject_non_fqdn_helo_hostname", "check_helo_access hash:/etc/postfix/helo_access"}
	opts.SenderRestrictions = []string{"reject_non_fqdn_sender", "check_sender_access", "hash:/etc/postfix/sender_access", "reject_sender_login_mismatch"}
	opts.RelayRestrictions = []string{} // the recipient list alone decides
	opts.RecipientRestrictions = []string{"reject_unauth_pipelining", "reject_non_fqdn_recipient", "permit_auth_destination", "reject"}
	p, err := compilePolicy(&opts, newFakeAddrs())
	if err != nil {
		t.Fatal(err)
	}
	path := func(s string) *Path {
		pth, err := parsePath(s)
		if err != nil {
			t.Fatalf("parsePath(%q): %v", s, err)
		}
		return &pth
	}
	stranger := netip.MustParseAddr("198.51.100.7")
	tests := []struct {
		name   string
		st     checkState
		want   string // reply line, "" for permit
		errors bool
	}{
		{"all good", checkState{helo: "c.example", sender: path("a@friend.example"), rcpt: path("user@example.com")}, "", false},
		{"invalid helo", checkState{helo: "bad..name", sender: path("a@friend.example"), rcpt: path("user@example.com")},
			"501 5.5.2 <bad..name>: Helo command rejected: Invalid name", false},
		{"non-fqdn helo", checkState{helo: "localhost", sender: path("a@friend.example"), rcpt: path("user@example.com")},
			"504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname", false},
		{"helo access", checkState{helo: "mail.evil.example", rcpt: path("user@example.com")},
			"550 5.7.1 <mail.evil.example>: Helo command rejected: No thanks", false},
		{"non-fqdn sender", checkState{helo: "c.example", sender: path("root"), rcpt: path("user@example.com")},
			"504 5.5.2 <root>: Sender address rejected: need fully-qualified address", false},
		{"sender access reject with text", checkState{helo: "c.example", sender: path("spammer@bad.example"), rcpt: path("user@example.com")},
			"554 5.7.1 <spammer@bad.example>: Sender address rejected: go away", false},
		{"sender access code", checkState{sender: path("x@sub.bad.example"), rcpt: path("user@example.com")},
			"554 5.7.0 <x@sub.bad.example>: Sender address rejected: Domain blocked", false},
		{"sender access defer", checkState{sender: path("x@slow.example"), rcpt: path("user@example.com")},
			"450 4.7.1 <x@slow.example>: Sender address rejected: Access denied", false},
		{"sender access unknown action", checkState{sender: path("x@odd.example"), rcpt: path("user@example.com")},
			"451 4.3.5 Server configuration error", false},
		{"sender table failure", checkState{sender: path("x@fail.example"), rcpt: path("user@example.com")},
			"451 4.3.0 <x@fail.example>: Temporary lookup failure", true},
		{"login: not logged in", checkState{sender: path("boss@example.com"), rcpt: path("user@example.com")},
			"553 5.7.1 <boss@example.com>: Sender address rejected: not logged in", false},
		{"login: not owner", checkState{sender: path("boss@example.com"), authUser: "user@example.com", rcpt: path("user@example.com")},
			"553 5.7.1 <boss@example.com>: Sender address rejected: not owned by user user@example.com", false},
		{"login: owner", checkState{sender: path("boss@example.com"), authUser: "boss", rcpt: path("user@example.com")}, "", false},
		{"login: domain owner list", checkState{sender: path("any@example.com"), authUser: "admin", rcpt: path("user@example.com")}, "", false},
		{"pipelining", checkState{pipelined: true, rcpt: path("user@example.com")},
			"503 5.5.0 <user@example.com>: Recipient address rejected: Improper use of SMTP command pipelining", false},
		{"non-fqdn recipient", checkState{rcpt: path("user")},
			"504 5.5.2 <user>: Recipient address rejected: need fully-qualified address", false},
		{"final reject", checkState{rcpt: path("user@elsewhere.example")},
			"554 5.7.1 <user@elsewhere.example>: Recipient address rejected: Access denied", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := tt.st
			st.clientName, st.clientAddr = "unknown", stranger
			d, err := p.evaluate(context.Background(), &st, stageClient, stageHelo, stageSender, stageRelay, stageRecipient)
			if (err != nil) != tt.errors {
				t.Errorf("err = %v, want error %v", err, tt.errors)
			}
			got := ""
			if d.verdict == deny {
				got = d.reply.Line()
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClientAccessAndNoDelayReject(t *testing.T) {
	opts := baseOptions()
	opts.OpenTable = openMap
	opts.ClientRestrictions = []string{"check_client_access hash:/etc/postfix/client_access"}
	opts.NoDelayReject = true
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("HELO c.example", "503 5.7.0 Error: access denied for unknown[127.0.0.1]")
	c.cmd("MAIL FROM:<a@b.example>", "503 5.7.0 Error: access denied for unknown[127.0.0.1]")
	c.cmd("QUIT", "221 *")
	waitFor(t, "log", func() bool {
		return strings.Contains(ts.log.String(), "NOQUEUE: reject: CONNECT from unknown[127.0.0.1]: 554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied; proto=SMTP")
	})

	// With smtpd_delay_reject = yes (default) the client reject comes at RCPT.
	opts.NoDelayReject = false
	ts = startServer(t, opts)
	c = greet(t, ts.addr)
	c.cmd("HELO c.example", "250 *")
	c.cmd("MAIL FROM:<a@b.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "554 5.7.1 <unknown[127.0.0.1]>: Client host rejected: Access denied")
}

func TestSenderRejectAtMAIL(t *testing.T) {
	opts := baseOptions()
	opts.OpenTable = openMap
	opts.NoDelayReject = true
	opts.SenderRestrictions = []string{"check_sender_access hash:/etc/postfix/sender_access"}
	opts.HeloRestrictions = []string{"reject_non_fqdn_helo_hostname"}
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("HELO localhost", "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname")
	c.cmd("HELO c.example", "250 *")
	c.cmd("MAIL FROM:<spammer@bad.example>", "554 5.7.1 <spammer@bad.example>: Sender address rejected: go away")
	c.cmd("MAIL FROM:<a@friend.example>", "250 *")
	waitFor(t, "log", func() bool {
		return strings.Contains(ts.log.String(), "NOQUEUE: reject: MAIL from unknown[127.0.0.1]: 554 5.7.1 <spammer@bad.example>: Sender address rejected: go away; from=<spammer@bad.example> proto=SMTP helo=<c.example>")
	})
}

func TestUnauthPipelining(t *testing.T) {
	opts := baseOptions()
	opts.RecipientRestrictions = []string{"reject_unauth_pipelining"}
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.send("HELO c.example", "MAIL FROM:<a@b.example>", "RCPT TO:<user@example.com>")
	c.expect("250 mx.example.com")
	c.expect("250 2.1.0 Ok")
	c.expect("503 5.5.0 <user@example.com>: Recipient address rejected: Improper use of SMTP command pipelining")
	waitFor(t, "log", func() bool {
		return strings.Contains(ts.log.String(), `improper command pipelining after HELO from unknown[127.0.0.1]: MAIL FROM:<a@b.example>\r\nRCPT TO:<user@example.com>\r\n`)
	})
	// After EHLO, pipelining is allowed.
	c = greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	c.send("MAIL FROM:<a@b.example>", "RCPT TO:<user@example.com>")
	c.expect("250 2.1.0 Ok")
	c.expect("250 2.1.5 Ok")
}
