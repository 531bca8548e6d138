package smtpd

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestSTARTTLS(t *testing.T) {
	srvTLS, cliTLS, _ := tlsPair(t)
	opts := baseOptions()
	opts.TLS = srvTLS
	opts.ReceivedHeaderTLS = true
	opts.SASLEnable = true
	opts.TLSAuthOnly = true
	opts.SASLAuthenticatedHeader = true
	opts.TLSLogLevel = 1
	opts.Now = func() time.Time { return time.Date(2026, 11, 25, 1, 2, 3, 0, time.UTC) }
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*STARTTLS*")
	c.cmd("STARTTLS now", "501 5.5.4 Syntax: STARTTLS")
	c.cmd("AUTH PLAIN "+b64("\x00user@example.com\x00secret"), "538 5.7.11 Encryption required for requested authentication mechanism")
	c.cmd("MAIL FROM:<s@remote.example>", "250 *") // level may: allowed
	c.startTLS(cliTLS)
	// RFC 3207 4.2: state is forgotten; MAIL needs a new transaction and
	// AUTH needs EHLO again.
	c.cmd("RCPT TO:<user@example.com>", "503 5.5.1 Error: need MAIL command")
	c.cmd("AUTH PLAIN", "503 5.5.1 Error: send EHLO first")
	c.cmd("EHLO c.example", "250-*AUTH PLAIN LOGIN*")
	c.cmd("STARTTLS", "554 5.5.1 Error: TLS already active")
	c.cmd("AUTH PLAIN "+b64("\x00user@example.com\x00secret"), "235 2.7.0 Authentication successful")
	c.cmd("MAIL FROM:<user@example.com>", "250 *")
	c.cmd("RCPT TO:<friend@elsewhere.example>", "250 2.1.5 Ok") // relay after AUTH
	c.cmd("DATA", "354 *")
	c.send("hello", ".")
	c.expect("250 2.0.0 Ok: queued as 4TEST0001")
	c.cmd("QUIT", "221 *")
	m := ts.queue.messages()
	if len(m) != 1 {
		t.Fatalf("%d messages", len(m))
	}
	if m[0].env.Protocol != "ESMTPSA" || m[0].env.AuthUser != "user@example.com" {
		t.Errorf("envelope %+v", m[0].env)
	}
	want := "Received: from c.example (unknown [127.0.0.1])\r\n" +
		"\t(using TLSv1.3 with cipher TLS_*_* (*/* bits)\r\n\t key-exchange *)\r\n" +
		"\t(No client certificate requested)\r\n" +
		"\t(Authenticated sender: user@example.com)\r\n" +
		"\tby mx.example.com (postcote) with ESMTPSA id 4TEST0001\r\n" +
		"\tfor <friend@elsewhere.example>; Wed, 25 Nov 2026 01:02:03 +0000 (UTC)\r\nhello\r\n"
	if !match(want, m[0].content) {
		t.Errorf("content %q, want %q", m[0].content, want)
	}
	waitFor(t, "log", func() bool { return strings.Contains(ts.log.String(), "disconnect from") })
	for _, w := range []string{
		"Anonymous TLS connection established from unknown[127.0.0.1]: TLSv1.3 with cipher",
		"4TEST0001: client=unknown[127.0.0.1], sasl_method=PLAIN, sasl_username=user@example.com",
		"disconnect from unknown[127.0.0.1] ehlo=2 starttls=1/3 auth=1/3 mail=2 rcpt=1/2 data=1 quit=1 commands=9/14",
	} {
		if !strings.Contains(ts.log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, ts.log.String())
		}
	}
}

// TestSTARTTLSInjection: commands pipelined after STARTTLS in the same
// packet must not be executed as if they came over TLS (CVE-2011-0411).
func TestSTARTTLSInjection(t *testing.T) {
	srvTLS, cliTLS, _ := tlsPair(t)
	opts := baseOptions()
	opts.TLS = srvTLS
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	c.cmd("EHLO c.example", "250-*")
	c.send("STARTTLS", "RSET", "MAIL FROM:<injected@evil.example>")
	c.expect("220 2.0.0 Ready to start TLS")
	tc := tls.Client(c.conn, cliTLS)
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	c.conn, c.r = tc, bufio.NewReader(tc)
	// Had the injected commands run, RCPT would find a transaction.
	c.cmd("RCPT TO:<user@example.com>", "503 5.5.1 Error: need MAIL command")
	c.cmd("QUIT", "221 *")
	waitFor(t, "log", func() bool { return strings.Contains(ts.log.String(), "possible command injection") })
}

func TestImplicitTLS(t *testing.T) {
	srvTLS, cliTLS, _ := tlsPair(t)
	opts := baseOptions()
	opts.TLS = srvTLS
	opts.WrapperMode = true
	opts.ServiceName = "submissions"
	opts.SASLEnable = true
	opts.TLSAuthOnly = true
	opts.RelayRestrictions = []string{"permit_sasl_authenticated", "reject"}
	ts := startServer(t, opts)
	conn, err := tls.Dial("tcp", ts.addr, cliTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	c := &client{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.expect("220 mx.example.com ESMTP postcote")
	got := c.cmd("EHLO c.example", "250-*")
	if strings.Contains(got, "STARTTLS") || !strings.Contains(got, "AUTH PLAIN LOGIN") {
		t.Errorf("EHLO over implicit TLS: %q", got)
	}
	c.cmd("MAIL FROM:<s@remote.example>", "250 *")
	c.cmd("RCPT TO:<user@example.com>", "554 5.7.1 <user@example.com>: Recipient address rejected: Access denied")
	c.cmd("QUIT", "221 *")
	waitFor(t, "log", func() bool { return strings.Contains(ts.log.String(), "postcote/submissions/smtpd[") })
}

func TestAUTH(t *testing.T) {
	opts := baseOptions()
	opts.SASLEnable = true // no TLS, smtpd_tls_auth_only = no
	ts := startServer(t, opts)
	tests := []struct {
		name  string
		steps [][2]string // client line, expected reply
	}{
		{"plain initial response", [][2]string{{"AUTH PLAIN " + b64("\x00user@example.com\x00secret"), "235 2.7.0 Authentication successful"},
			{"AUTH PLAIN", "503 5.5.1 Error: already authenticated"}}},
		{"plain with authzid", [][2]string{{"AUTH plain " + b64("user@example.com\x00user@example.com\x00secret"), "235 *"}}},
		{"plain challenge", [][2]string{{"AUTH PLAIN", "334 "}, {b64("\x00user@example.com\x00secret"), "235 2.7.0 Authentication successful"}}},
		{"plain empty initial response", [][2]string{{"AUTH PLAIN =", "535 5.7.8 Error: authentication failed: authentication failure"}}},
		{"login", [][2]string{{"AUTH LOGIN", "334 VXNlcm5hbWU6"}, {b64("user@example.com"), "334 UGFzc3dvcmQ6"}, {b64("secret"), "235 *"}}},
		{"login initial response", [][2]string{{"AUTH LOGIN " + b64("user@example.com"), "334 UGFzc3dvcmQ6"}, {b64("secret"), "235 *"}}},
		{"cancel", [][2]string{{"AUTH LOGIN", "334 *"}, {"*", "501 5.7.0 Authentication aborted"}}},
		{"wrong password", [][2]string{{"AUTH PLAIN " + b64("\x00user@example.com\x00wrong"), "535 5.7.8 Error: authentication failed: authentication failure"}}},
		{"back end down", [][2]string{{"AUTH PLAIN " + b64("\x00down\x00x"), "454 4.7.0 Temporary authentication failure"}}},
		{"bad base64", [][2]string{{"AUTH PLAIN !!!", "501 5.5.2 Cannot decode response"},
			{"AUTH LOGIN", "334 *"}, {"%%%", "501 5.5.2 Cannot decode response"}}},
		{"unknown mechanism", [][2]string{{"AUTH CRAM-MD5", "535 5.7.8 Error: authentication failed: Invalid authentication mechanism"}}},
		{"syntax", [][2]string{{"AUTH", "501 5.5.4 Syntax: AUTH mechanism"}}},
		{"in transaction", [][2]string{{"MAIL FROM:<a@b.example>", "250 *"}, {"AUTH PLAIN", "503 5.5.1 Error: MAIL transaction in progress"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := greet(t, ts.addr)
			c.cmd("EHLO c.example", "250-*AUTH PLAIN LOGIN*")
			for _, st := range tt.steps {
				c.cmd(st[0], st[1])
			}
			c.cmd("QUIT", "221 *")
		})
	}
	waitFor(t, "log", func() bool {
		return strings.Contains(ts.log.String(), "warning: unknown[127.0.0.1]: SASL PLAIN authentication failed: authentication failed")
	})
}

func TestEncryptLevel(t *testing.T) {
	srvTLS, cliTLS, _ := tlsPair(t)
	opts := baseOptions()
	opts.TLS = srvTLS
	opts.TLSLevel = TLSEncrypt
	opts.SASLEnable = true
	opts.ServiceName = "submission"
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	got := c.cmd("EHLO c.example", "250-*STARTTLS*")
	if strings.Contains(got, "AUTH") {
		t.Errorf("AUTH offered before TLS at level encrypt: %q", got)
	}
	c.cmd("MAIL FROM:<s@remote.example>", "530 5.7.0 Must issue a STARTTLS command first")
	c.cmd("AUTH PLAIN "+b64("\x00user@example.com\x00secret"), "530 5.7.0 Must issue a STARTTLS command first")
	c.send("BDAT 2")
	c.conn.Write([]byte("ab"))
	c.expect("530 5.7.0 Must issue a STARTTLS command first")
	c.startTLS(cliTLS)
	c.cmd("EHLO c.example", "250-*AUTH PLAIN LOGIN*")
	c.cmd("MAIL FROM:<s@remote.example>", "250 2.1.0 Ok")
	c.cmd("QUIT", "221 *")
	waitFor(t, "log", func() bool { return strings.Contains(ts.log.String(), "postcote/submission/smtpd[") })
}

func TestSASLSecurityOptions(t *testing.T) {
	srvTLS, cliTLS, _ := tlsPair(t)
	opts := baseOptions()
	opts.TLS = srvTLS
	opts.SASLEnable = true
	opts.SASLSecurityOptions = []string{"noanonymous, noplaintext"}
	opts.SASLTLSSecurityOptions = []string{"noanonymous"}
	ts := startServer(t, opts)
	c := greet(t, ts.addr)
	if got := c.cmd("EHLO c.example", "250-*"); strings.Contains(got, "AUTH") {
		t.Errorf("plaintext AUTH offered without TLS under noplaintext: %q", got)
	}
	c.cmd("AUTH LOGIN", "538 5.7.11 Encryption required for requested authentication mechanism")
	c.cmd("AUTH GSSAPI", "535 5.7.8 Error: authentication failed: Invalid authentication mechanism")
	c.startTLS(cliTLS)
	c.cmd("EHLO c.example", "250-*AUTH PLAIN LOGIN*")
	c.cmd("AUTH PLAIN "+b64("\x00user@example.com\x00secret"), "235 *")

	opts.SASLSecurityOptions = []string{"noanonymous", "nosuchthing"}
	if _, err := New(opts, &fakeQueue{}, newFakeAddrs(), fakeAuth{}); err == nil || !strings.Contains(err.Error(), "nosuchthing") {
		t.Errorf("New with an unknown security option: %v", err)
	}
}
