package rewrite

import (
	"context"
	"errors"
	"strings"
	"testing"

	"postcote/internal/queue"
)

// TestCleanupRemoteHeaders: mail from a client outside
// local_header_rewrite_clients, with and without
// remote_header_rewrite_domain, as Postfix's cleanup and trivial-rewrite
// treat it (cleanup_envelope.c: an empty remote domain turns header
// rewriting off; trivial-rewrite.c: the remote context appends the
// domain as both origin and append_dot_mydomain's domain). The envelope
// is rewritten in the local context either way. The expected headers
// are what Postfix 3.7.11 queued for the same message and settings
// (postcat of a private instance; Postfix also drops Bcc:, re-folds the
// rewritten To: and adds Resent-Date and Resent-Message-Id, which
// postcote does not).
func TestCleanupRemoteHeaders(t *testing.T) {
	masq, err := NewMasquerade([]string{"example.net"}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const hdrs = "Received: from client\r\n" +
		"From: user\r\n" +
		"Sender: \"J. Doe\"\r\n" +
		"Reply-To: Named <named>, <>\r\n" +
		"To: b@host, c@other.example, d@[192.0.2.1], undisclosed-recipients:;\r\n" +
		"Cc: site!u, p%q, old\r\n" +
		"Bcc: broken@, @\r\n" +
		"Resent-From: sub@deep.example.net\r\n" +
		"Subject: user\r\n" +
		"X-Other: user\r\n" +
		"\r\nuser in the body\r\n"
	for _, tc := range []struct {
		name      string
		domain    string
		local     bool
		appendDot bool
		want      string
	}{
		{
			name: "remote, no domain: untouched",
			want: hdrs,
		},
		{
			name:      "remote with domain",
			domain:    "example.org",
			appendDot: true,
			want: "Received: from client\r\n" +
				"From: user@example.org\r\n" +
				"Sender: \"J. Doe\"@example.org\r\n" +
				"Reply-To: Named <named@example.org>, <>\r\n" +
				"To: b@host.example.org, c@other.example, d@[192.0.2.1], undisclosed-recipients:;\r\n" +
				"Cc: u@site.example.org, p@q.example.org, new@example.net\r\n" +
				"Bcc: broken@, @\r\n" +
				"Resent-From: sub@example.net\r\n" +
				"Subject: user\r\n" +
				"X-Other: user\r\n" +
				"\r\nuser in the body\r\n",
		},
		{
			name:   "remote with domain, append_dot_mydomain = no",
			domain: "example.org",
			want: "Received: from client\r\n" +
				"From: user@example.org\r\n" +
				"Sender: \"J. Doe\"@example.org\r\n" +
				"Reply-To: Named <named@example.org>, <>\r\n" +
				"To: b@host, c@other.example, d@[192.0.2.1], undisclosed-recipients:;\r\n" +
				"Cc: u@site, p@q, new@example.net\r\n" +
				"Bcc: broken@, @\r\n" +
				"Resent-From: sub@example.net\r\n" +
				"Subject: user\r\n" +
				"X-Other: user\r\n" +
				"\r\nuser in the body\r\n",
		},
		{
			// The local context ignores the remote domain: $myorigin
			// and $mydomain complete addresses.
			name:      "local client",
			domain:    "example.org",
			local:     true,
			appendDot: true,
			want: "Received: from client\r\n" +
				"From: user@mx.example.com\r\n" +
				"Sender: \"J. Doe\"@mx.example.com\r\n" +
				"Reply-To: Named <named@mx.example.com>, <>\r\n" +
				"To: b@host.example.com, c@other.example, d@[192.0.2.1], undisclosed-recipients:;\r\n" +
				"Cc: u@site.example.com, p@q.example.com, new@example.net\r\n" +
				"Bcc: broken@, @\r\n" +
				"Resent-From: sub@example.net\r\n" +
				"Subject: user\r\n" +
				"X-Other: user\r\n" +
				"\r\nuser in the body\r\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rules := &Addresses{
				Myorigin:          "mx.example.com",
				Mydomain:          "example.com",
				AppendDotMydomain: tc.appendDot,
				// The remote domain is not $myorigin: "old" alone is
				// not looked up, "old@example.org" is.
				Canonical:    memTable{"old@example.org": {"new@mx.example.net"}, "old@mx.example.com": {"wrong@example.com"}},
				Masquerade:   masq,
				SwapBangpath: true,
				PercentHack:  true,
			}
			if tc.local {
				rules.Canonical = memTable{"old@mx.example.com": {"new@mx.example.net"}}
			}
			q := &memQueue{}
			c := &Cleanup{Next: q, Rules: rules, RemoteHeaderDomain: tc.domain,
				HeaderContext: func(context.Context, *queue.Envelope) (bool, error) { return tc.local, nil }}
			env := &queue.Envelope{Sender: "bounce", ClientAddr: "198.51.100.7", Protocol: "ESMTP",
				Recipients: []queue.Recipient{{Address: "rcpt@host"}}}
			if err := c.Enqueue(context.Background(), env, strings.NewReader(hdrs)); err != nil {
				t.Fatal(err)
			}
			if q.content != tc.want {
				t.Errorf("content\n%s\nwant\n%s", q.content, tc.want)
			}
			// The envelope is rewritten in the local context.
			wantRcpt := "rcpt@host"
			if tc.appendDot {
				wantRcpt = "rcpt@host.example.com"
			}
			if q.env.Sender != "bounce@mx.example.com" || q.env.Recipients[0].Address != wantRcpt {
				t.Errorf("envelope %q -> %q, want bounce@mx.example.com -> %s", q.env.Sender, q.env.Recipients[0].Address, wantRcpt)
			}
		})
	}
}

// TestCleanupHeaderContextError: a check_address_map table that cannot
// answer refuses the message with smtpd_check_rewrite's temporary
// failure, and nothing is queued.
func TestCleanupHeaderContextError(t *testing.T) {
	q := &memQueue{}
	cause := errors.New("table down")
	c := &Cleanup{Next: q, Rules: &Addresses{Myorigin: "example.com"}, RemoteHeaderDomain: "example.org",
		HeaderContext: func(context.Context, *queue.Envelope) (bool, error) { return false, cause }}
	env := &queue.Envelope{ID: "4cYvZb0yq2z1Q", Sender: "a@example.com", Recipients: []queue.Recipient{{Address: "b@example.com"}}}
	err := c.Enqueue(context.Background(), env, strings.NewReader("From: user\r\n\r\nx"))
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, cause) {
		t.Fatalf("error %v, want an *Error wrapping the cause", err)
	}
	if code, status, text := ce.SMTPReply(); code != 451 || status != "4.3.0" || text != "Temporary lookup error" || !ce.Temporary() {
		t.Errorf("reply %d %s %s", code, status, text)
	}
	if q.env != nil {
		t.Errorf("queued despite the failure: %+v", q.env)
	}
}

// TestQualifyRemote: trivial-rewrite's remote context on single
// addresses.
func TestQualifyRemote(t *testing.T) {
	a := &Addresses{Myorigin: "mx.example.com", Mydomain: "example.com", AppendDotMydomain: true, SwapBangpath: true, PercentHack: true}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"@", "@"},
		{"user", "user@example.org"},
		{`"a b"`, `"a b"@example.org`},
		{"user@", "user@"},
		{"user@host", "user@host.example.org"},
		{"user@host.example", "user@host.example"},
		{"user@[192.0.2.1]", "user@[192.0.2.1]"},
		{"site!user", "user@site.example.org"},
		{"user%site", "user@site.example.org"},
	} {
		if got := a.qualifyIn(tc.in, "example.org", "example.org"); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.in, got, tc.want)
		}
	}
}
