package e2e

import (
	"fmt"
	"strings"
	"testing"

	"postcote/internal/testenv"
)

// TestRemoteHeaderRewriteDomain: a message over SMTP from a client that
// local_header_rewrite_clients does not list (the test client 127.0.0.1
// is outside mynetworks, and only permit_mynetworks is listed) has its
// incomplete header addresses completed with remote_header_rewrite_domain
// when that is set, and its headers left exactly as sent when it is
// empty (Postfix's default); the envelope and the body are not touched
// either way. A client that local_header_rewrite_clients lists gets
// $myorigin instead.
func TestRemoteHeaderRewriteDomain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		clients string // local_header_rewrite_clients
		domain  string
		want    []string
	}{
		{"set", "permit_mynetworks", "remote.example", []string{
			"From: user@remote.example\r\n",
			"Cc: Other <other@remote.example>, kept@elsewhere.example\r\n",
		}},
		{"empty", "permit_mynetworks", "", []string{
			"From: user\r\n",
			"Cc: Other <other>, kept@elsewhere.example\r\n",
		}},
		// 127.0.0.1 is an inet_interfaces address: the local context,
		// $myorigin, whatever the remote domain.
		{"local client", "permit_inet_interfaces", "remote.example", []string{
			"From: user@origin.example\r\n",
			"Cc: Other <other@origin.example>, kept@elsewhere.example\r\n",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testenv.NewDev(t)
			setMain(t, p, "mynetworks", "192.0.2.0/24")
			setMain(t, p, "myorigin", "origin.example")
			setMain(t, p, "local_header_rewrite_clients", tc.clients)
			setMain(t, p, "remote_header_rewrite_domain", tc.domain)
			p.Start()

			smtpSend(t, p, "sender@client.example", p.User,
				fmt.Sprintf("From: user\r\nTo: <%s>\r\nCc: Other <other>, kept@elsewhere.example\r\nSubject: user\r\n\r\nuser stays in the body\r\n", p.User))

			got := messageFiles(t, maildir(p), 1)[0]
			for _, want := range append(tc.want,
				"Return-Path: <sender@client.example>\r\n",
				"To: <"+p.User+">\r\n",
				"Subject: user\r\n",
				"\r\n\r\nuser stays in the body\r\n") {
				if !strings.Contains(got, want) && !strings.Contains(got, strings.ReplaceAll(want, "\r\n", "\n")) {
					t.Errorf("delivered message lacks %q:\n%s", want, got)
				}
			}
		})
	}
}
