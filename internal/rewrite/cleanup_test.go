package rewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"postcote/internal/maillog"
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
	c := &Cleanup{Next: q, Rules: rules, HeaderContext: func(context.Context, *queue.Envelope) (bool, error) { return false, nil }}
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
		t.Errorf("headers rewritten though HeaderContext said remote: %q", q.content)
	}
	if q.env.Sender != "" {
		t.Errorf("null sender changed: %q", q.env.Sender)
	}
}

// TestCleanupFailures checks cleanup's failures against Postfix 3.7's
// answers and warnings (observed on a running Postfix with a texthash
// virtual map and a fail: table).
func TestCleanupFailures(t *testing.T) {
	loop := memTable{"a@x.example": {"b@x.example"}, "b@x.example": {"a@x.example"}}
	deep := memTable{"a@x.example": {"d2@x.example"}, "d2@x.example": {"d3@x.example"}, "d3@x.example": {"d4@x.example"}, "d4@x.example": {"d5@x.example"}}
	wide := memTable{"a@x.example": {"1@y.example, 2@y.example, 3@y.example, 4@y.example"}}
	long := memTable{"a@x.example": {strings.Repeat("l", 1001) + "@y.example"}}
	selfThenDown := Maps{memTable{"a@x.example": {"a@x.example, other@y.example"}}, failTable{}}
	hops := strings.Repeat("Received: from h by x\r\n", 50)
	for _, tc := range []struct {
		name  string
		rules *Addresses
		msg   string
		is    error
		reply string
		log   string
	}{
		{"alias loop", &Addresses{VirtualAlias: loop}, "", ErrAliasExpansion, "451 4.6.0 Alias expansion error",
			"warning: 4cYvZb0yq2z1Q: unreasonable virtual_alias_maps map nesting for a@x.example -- message not accepted, try again later"},
		{"recursion limit", &Addresses{VirtualAlias: deep, RecursionLimit: 3}, "", ErrAliasExpansion, "451 4.6.0 Alias expansion error",
			"warning: 4cYvZb0yq2z1Q: unreasonable virtual_alias_maps map nesting for a@x.example -- message not accepted, try again later"},
		{"expansion limit", &Addresses{VirtualAlias: wide, ExpansionLimit: 3}, "", ErrAliasExpansion, "451 4.6.0 Alias expansion error",
			"warning: 4cYvZb0yq2z1Q: unreasonable virtual_alias_maps map expansion size for a@x.example -- message not accepted, try again later"},
		{"address length limit", &Addresses{VirtualAlias: long}, "", ErrAliasExpansion, "451 4.6.0 Alias expansion error",
			"warning: 4cYvZb0yq2z1Q: unreasonable virtual_alias_maps result lll"},
		{"virtual table down", &Addresses{VirtualAlias: selfThenDown}, "", errTableDown, "451 4.3.0 Error: queue file write error",
			"warning: 4cYvZb0yq2z1Q: virtual_alias_maps map lookup problem for a@x.example -- message not accepted, try again later"},
		{"canonical down", &Addresses{Canonical: failTable{}}, "", errTableDown, "451 4.3.0 Error: queue file write error",
			"warning: 4cYvZb0yq2z1Q: canonical_maps map lookup problem for s@x.example -- message not accepted, try again later"},
		{"too many hops", &Addresses{}, hops, ErrTooManyHops, "554 5.4.0 Error: too many hops",
			"warning: 4cYvZb0yq2z1Q: message rejected: hopcount exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := &memQueue{}
			var log maillog.Buffer
			c := &Cleanup{Next: q, Rules: tc.rules, Log: maillog.New(&log, "localhost", false)}
			env := &queue.Envelope{ID: "4cYvZb0yq2z1Q", Sender: "s@x.example", Recipients: []queue.Recipient{{Address: "a@x.example"}}}
			err := c.Enqueue(context.Background(), env, strings.NewReader(tc.msg+"From: a@x.example\r\n\r\n"))
			if err == nil || q.env != nil {
				t.Fatalf("err = %v, queued = %v", err, q.env != nil)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v: no *Error", err)
			}
			code, status, text := ce.SMTPReply()
			if got := fmt.Sprintf("%d %s %s", code, status, text); got != tc.reply {
				t.Errorf("reply %q, want %q", got, tc.reply)
			}
			if ce.Temporary() != (code/100 == 4) {
				t.Errorf("Temporary() = %v for %d", ce.Temporary(), code)
			}
			if !strings.Contains(log.String(), "postcote/cleanup[") || !strings.Contains(log.String(), tc.log) {
				t.Errorf("log %q, want %q", log.String(), tc.log)
			}
		})
	}
}

// TestCleanupMasquerade: masquerade_domains = example.com as Postfix 3.7
// applies it to SMTP mail from a client whose headers are rewritten
// (checked on a running Postfix): the envelope sender and the From: and
// To: headers are masqueraded after canonical mapping, the envelope
// recipient is not (masquerade_classes default), and bang paths in
// unqualified header addresses are swapped.
func TestCleanupMasquerade(t *testing.T) {
	masq, err := NewMasquerade([]string{"!keep.example.com", "example.com"}, nil, []string{"root"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rules := &Addresses{
		Myorigin:     "mx.example.com",
		Canonical:    memTable{"old@mx.example.com": {"new@host.example.com"}},
		Masquerade:   masq,
		SwapBangpath: true,
		PercentHack:  true,
	}
	q := &memQueue{}
	c := &Cleanup{Next: q, Rules: rules}
	env := &queue.Envelope{Sender: "sender@mx.example.com", Recipients: []queue.Recipient{
		{Address: "user@mx.example.com"}, {Address: "old@mx.example.com"}}}
	msg := "From: A <a@mx.example.com>\r\nSender: root@mx.example.com\r\nTo: old, b@keep.example.com, x!y\r\nCc: p%q, c@other.example\r\nSubject: a@mx.example.com\r\n\r\nbody a@mx.example.com\r\n"
	if err := c.Enqueue(context.Background(), env, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if q.env.Sender != "sender@example.com" {
		t.Errorf("sender %q", q.env.Sender)
	}
	var rcpts []string
	for _, r := range q.env.Recipients {
		rcpts = append(rcpts, r.Address)
	}
	if got := strings.Join(rcpts, " "); got != "user@mx.example.com new@host.example.com" {
		t.Errorf("recipients %q", got)
	}
	want := "From: A <a@example.com>\r\nSender: root@mx.example.com\r\nTo: new@example.com, b@keep.example.com, y@x\r\nCc: p@q, c@other.example\r\nSubject: a@mx.example.com\r\n\r\nbody a@mx.example.com\r\n"
	if q.content != want {
		t.Errorf("content\n%q\nwant\n%q", q.content, want)
	}

	// envelope_recipient in masquerade_classes: masqueraded before the
	// virtual alias lookup, which then sees the masqueraded address.
	rules.Masquerade.Classes = map[string]bool{EnvelopeRecipient: true}
	rules.VirtualAlias = memTable{"user@example.com": {"mailbox@example.com"}}
	env = &queue.Envelope{Sender: "s@mx.example.com", Recipients: []queue.Recipient{{Address: "user@mx.example.com"}}}
	if err := c.Enqueue(context.Background(), env, strings.NewReader(msg)); err != nil {
		t.Fatal(err)
	}
	if r := q.env.Recipients[0]; r.Address != "mailbox@example.com" || r.OrigAddress != "user@mx.example.com" || q.env.Sender != "s@mx.example.com" {
		t.Errorf("envelope_recipient only: sender %q, recipient %+v", q.env.Sender, r)
	}
}

// TestCleanupPercentHack: an accepted recipient "user%remote@ourhost"
// goes to user@remote, as Postfix's resolver routes it; duplicates that
// appear only after resolving are merged.
func TestCleanupPercentHack(t *testing.T) {
	rules := &Addresses{
		Domains:      &Domains{Local: NewDomainList([]string{"example.com"}, false)},
		SwapBangpath: true, PercentHack: true, ResolveDequoted: true,
	}
	q := &memQueue{}
	c := &Cleanup{Next: q, Rules: rules}
	env := &queue.Envelope{Sender: "host!bob", Recipients: []queue.Recipient{
		{Address: "user%remote.example@example.com"},
		{Address: "remote.example!user@example.com"},
		{Address: "ann%rem3.example"},
		{Address: "kim%virtual.example@other.example"},
	}}
	if err := c.Enqueue(context.Background(), env, strings.NewReader("Subject: s\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	var rcpts []string
	for _, r := range q.env.Recipients {
		rcpts = append(rcpts, r.Address+"<"+r.OrigAddress)
	}
	want := "user@remote.example<user%remote.example@example.com ann@rem3.example<ann%rem3.example kim%virtual.example@other.example<kim%virtual.example@other.example"
	if got := strings.Join(rcpts, " "); got != want || q.env.Sender != "bob@host" {
		t.Errorf("sender %q, recipients\n%s\nwant\n%s", q.env.Sender, got, want)
	}

	// "victim%elsewhere@virtual.example" from a stranger: Postfix's
	// smtpd refuses it (sender routing outside mydestination), postcote's
	// smtpd takes "%" there as part of the mailbox name and accepts it
	// when a catch-all alias makes it a known recipient. Either way the
	// alias result, an address of a local domain, must not be routed to
	// elsewhere.example.
	rules.Domains.VirtualAlias = NewDomainList([]string{"virtual.example"}, false)
	rules.VirtualAlias = memTable{"@virtual.example": {"@example.com"}, "list@example.com": {"bob%remote.example@example.com"}}
	env = &queue.Envelope{Sender: "s@x.example", Recipients: []queue.Recipient{
		{Address: "victim%elsewhere.example@virtual.example"},
		{Address: "victim%elsewhere.example@example.com"}, // only a trusted client gets this past smtpd
	}}
	if err := c.Enqueue(context.Background(), env, strings.NewReader("Subject: s\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	if got := q.env.Recipients[0].Address; got != "victim%elsewhere.example@example.com" {
		t.Errorf("catch-all alias result routed: %q", got)
	}
	if got := q.env.Recipients[1].Address; got != "victim@elsewhere.example" {
		t.Errorf("trusted percent hack: %q", got)
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
	routing := &Addresses{Domains: domains, Delimiter: "+", PercentHack: true, SwapBangpath: true}
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
		{"percent hack: the resolved address is checked", &Recipients{Domains: domains, Rules: routing, Users: users, LocalRecipientMaps: memTable{"alice": {"x"}}}, "alice%mbox.example@localhost.example", false, false},
		{"percent hack to a known user", &Recipients{Domains: domains, Rules: routing, Users: users, LocalRecipientMaps: memTable{"alice": {"x"}}}, "joe%mbox.example@localhost.example", true, false},
		{"percent hack to a remote domain", &Recipients{Domains: domains, Rules: routing, LocalRecipientMaps: memTable{"alice": {"x"}}}, "bob%remote.example@localhost.example", true, false},
		{"percent hack off", &Recipients{Domains: domains, Rules: rules, LocalRecipientMaps: memTable{"alice": {"x"}}}, "bob%remote.example@localhost.example", false, false},
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
