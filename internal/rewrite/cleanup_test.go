package rewrite

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postcote/internal/queue"
)

// memQueue records what cleanup hands on.
type memQueue struct {
	env     *queue.Envelope
	content string
}

func (q *memQueue) NewID() queue.ID { return "4cYvZb0yq2z1Q" }

func (q *memQueue) Enqueue(_ context.Context, env *queue.Envelope, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	q.env, q.content = env, string(b)
	return nil
}

func TestCleanupGuide004(t *testing.T) {
	// Guide 004: canonical_classes = envelope_sender, header_sender,
	// header_recipient with its canonical.regexp.
	rules := &Addresses{
		Myorigin:         "host.example.com",
		Canonical:        regexpTable{regexp.MustCompile(`^([^@]*)@([a-zA-Z0-9]*)\.(example\.com)`), "${1}+${2}@${3}"},
		CanonicalClasses: set(EnvelopeSender, HeaderSender, HeaderRecipient),
	}
	q := &memQueue{}
	c := &Cleanup{Next: q, Rules: rules}
	env := &queue.Envelope{Sender: "root", Recipients: []queue.Recipient{{Address: "root@host.example.com", OrigAddress: "root@host.example.com"}}}
	msg := "Received: from x\r\nFrom: root@host.example.com (Cron Daemon)\r\nTo: root@host.example.com\r\nSubject: cron\r\n\r\nroot@host.example.com\r\n"
	if err := c.Enqueue(context.Background(), env, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if q.env.Sender != "root+host@example.com" {
		t.Errorf("sender %q", q.env.Sender)
	}
	if got := q.env.Recipients[0].Address; got != "root@host.example.com" {
		t.Errorf("envelope recipient rewritten (class not listed): %q", got)
	}
	want := "Received: from x\r\nFrom: root+host@example.com (Cron Daemon)\r\nTo: root+host@example.com\r\nSubject: cron\r\n\r\nroot@host.example.com\r\n"
	if q.content != want {
		t.Errorf("content\n%q\nwant\n%q", q.content, want)
	}
}

func TestCleanupEnvelope(t *testing.T) {
	rules := &Addresses{
		Myorigin:           "example.com",
		Delimiter:          "+",
		PropagateVirtual:   true,
		PropagateCanonical: true,
		RecipientCanonical: memTable{"old@example.com": {"new@example.com"}},
		VirtualAlias: memTable{
			"group@lego.dk":   {"noah@lego.dk, johan@lego.dk", "magnus@lego.dk"},
			"dup@lego.dk":     {"noah@lego.dk"},
			"new@example.com": {"mailbox@example.com"},
		},
	}
	q := &memQueue{}
	c := &Cleanup{Next: q, Rules: rules, RewriteHeaders: func(*queue.Envelope) bool { return false }}
	env := &queue.Envelope{Sender: "", Recipients: []queue.Recipient{
		{Address: "group@lego.dk", OrigAddress: "group@lego.dk", DSNNotify: "FAILURE", DSNORcpt: "rfc822;group@lego.dk"},
		{Address: "dup@lego.dk"},
		{Address: "old+tag@example.com"},
		{Address: "postmaster"},
		{Address: "done@example.com", Status: queue.Delivered},
	}}
	msg := "From: old@example.com\r\n\r\nx"
	if err := c.Enqueue(context.Background(), env, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range q.env.Recipients {
		got = append(got, r.Address+"|"+r.OrigAddress+"|"+r.DSNNotify+"|"+r.DSNORcpt)
	}
	want := []string{
		"noah@lego.dk|group@lego.dk|FAILURE|rfc822;group@lego.dk",
		"johan@lego.dk|group@lego.dk|FAILURE|rfc822;group@lego.dk",
		"magnus@lego.dk|group@lego.dk|FAILURE|rfc822;group@lego.dk",
		"noah@lego.dk|dup@lego.dk||", // another NOTIFY: a separate copy
		"mailbox+tag@example.com|old+tag@example.com||",
		"postmaster@example.com|postmaster||",
		"done@example.com|done@example.com||",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("recipients\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if q.content != msg {
		t.Errorf("headers rewritten though RewriteHeaders said no: %q", q.content)
	}
	if q.env.Sender != "" {
		t.Errorf("null sender changed: %q", q.env.Sender)
	}
}

func TestCleanupFailures(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules *Addresses
		is    error
	}{
		{"alias loop", &Addresses{VirtualAlias: memTable{"a@x.example": {"b@x.example"}, "b@x.example": {"a@x.example"}}}, ErrAliasExpansion},
		{"table down", &Addresses{VirtualAlias: failTable{}}, nil},
		{"canonical down", &Addresses{Canonical: failTable{}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &memQueue{}
			c := &Cleanup{Next: q, Rules: tc.rules}
			env := &queue.Envelope{Sender: "s@x.example", Recipients: []queue.Recipient{{Address: "a@x.example"}}}
			err := c.Enqueue(context.Background(), env, strings.NewReader("From: a@x.example\r\n\r\n"))
			if err == nil || q.env != nil {
				t.Fatalf("err = %v, queued = %v", err, q.env != nil)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

func TestKnownRecipient(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\njoe:x:1000:1000::/home/joe:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	domains := &Domains{
		Local:          NewDomainList([]string{"localhost.example"}, false),
		VirtualAlias:   NewDomainList([]string{"alias.example"}, false).WithTables(memTable{"ldap-alias.example": {"ldap-alias.example"}}),
		VirtualMailbox: NewDomainList([]string{"mbox.example"}, false),
		Relay:          NewDomainList([]string{"relay.example"}, true),
	}
	rules := &Addresses{Domains: domains, Delimiter: "+", VirtualAlias: memTable{
		"info@alias.example": {"joe@mbox.example"}, "@ldap-alias.example": {"joe@mbox.example"},
		"alias-only@mbox.example": {"elsewhere@example.org"}}}
	users := userSet{"joe@mbox.example": true}
	for _, tc := range []struct {
		name string
		r    *Recipients
		addr string
		want bool
		err  bool
	}{
		{"local passwd", &Recipients{Domains: domains, Rules: rules, Passwd: passwd}, "joe@localhost.example", true, false},
		{"local passwd extension", &Recipients{Domains: domains, Rules: rules, Passwd: passwd}, "joe+x@localhost.example", true, false},
		{"local unknown", &Recipients{Domains: domains, Rules: rules, Passwd: passwd}, "nobody@localhost.example", false, false},
		{"local postmaster", &Recipients{Domains: domains, Rules: rules, Passwd: passwd}, "Postmaster@localhost.example", true, false},
		{"local maps", &Recipients{Domains: domains, Rules: rules, LocalRecipientMaps: memTable{"alice": {"x"}}}, "alice@localhost.example", true, false},
		{"local maps unknown", &Recipients{Domains: domains, Rules: rules, LocalRecipientMaps: memTable{"alice": {"x"}}}, "bob@localhost.example", false, false},
		{"local maps down", &Recipients{Domains: domains, Rules: rules, LocalRecipientMaps: failTable{}}, "bob@localhost.example", false, true},
		{"local unchecked", &Recipients{Domains: domains, Rules: rules}, "bob@localhost.example", true, false},
		{"alias domain known", &Recipients{Domains: domains, Rules: rules}, "info@alias.example", true, false},
		{"alias domain unknown", &Recipients{Domains: domains, Rules: rules}, "nobody@alias.example", false, false},
		{"alias domain from table, catch-all", &Recipients{Domains: domains, Rules: rules}, "x@ldap-alias.example", true, false},
		{"mailbox userdb", &Recipients{Domains: domains, Rules: rules, Users: users}, "joe@mbox.example", true, false},
		{"mailbox userdb extension", &Recipients{Domains: domains, Rules: rules, Users: users}, "joe+list@mbox.example", true, false},
		{"mailbox userdb unknown", &Recipients{Domains: domains, Rules: rules, Users: users}, "ann@mbox.example", false, false},
		{"mailbox alias without mailbox", &Recipients{Domains: domains, Rules: rules, Users: users}, "alias-only@mbox.example", true, false},
		{"mailbox no userdb", &Recipients{Domains: domains, Rules: rules}, "ann@mbox.example", true, false},
		{"mailbox maps", &Recipients{Domains: domains, Rules: rules, Users: users, VirtualMailboxMaps: memTable{"ann@mbox.example": {"mbox.example/ann/"}}}, "ann@mbox.example", true, false},
		{"mailbox maps unknown", &Recipients{Domains: domains, Rules: rules, Users: users, VirtualMailboxMaps: memTable{"ann@mbox.example": {"mbox.example/ann/"}}}, "joe@mbox.example", false, false},
		{"mailbox maps down", &Recipients{Domains: domains, Rules: rules, VirtualMailboxMaps: failTable{}}, "joe@mbox.example", false, true},
		{"relay unchecked", &Recipients{Domains: domains, Rules: rules}, "x@mx.relay.example", true, false},
		{"relay maps", &Recipients{Domains: domains, Rules: rules, RelayRecipientMaps: memTable{"@relay.example": {"OK"}}}, "x@relay.example", true, false},
		{"relay maps unknown", &Recipients{Domains: domains, Rules: rules, RelayRecipientMaps: memTable{"a@relay.example": {"OK"}}}, "x@relay.example", false, false},
		{"default class", &Recipients{Domains: domains, Rules: rules}, "x@example.org", true, false},
		{"alias table down", &Recipients{Domains: domains, Rules: &Addresses{VirtualAlias: failTable{}}}, "x@alias.example", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.r.KnownRecipient(context.Background(), tc.addr)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("KnownRecipient(%q) = %v, %v; want %v, error %v", tc.addr, got, err, tc.want, tc.err)
			}
		})
	}
	if c, err := (&Recipients{Domains: domains}).Classify(context.Background(), "ldap-alias.example"); err != nil || c != VirtualAlias {
		t.Errorf("Classify from table = %v, %v", c, err)
	}
	down := &Domains{VirtualAlias: NewDomainList(nil, false).WithTables(failTable{})}
	if _, err := (&Recipients{Domains: down}).Classify(context.Background(), "x.example"); err == nil {
		t.Error("Classify with a failing table: no error")
	}
}

type userSet map[string]bool

func (u userSet) UserExists(_ context.Context, name string) (bool, error) { return u[name], nil }
