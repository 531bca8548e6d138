package rewrite

import (
	"context"
	"errors"
	"testing"
)

func TestMasquerade(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		domains    []string
		classes    []string
		exceptions []string
		class      string
		in, want   string
	}{
		{"subdomain", []string{"example.com"}, nil, nil, EnvelopeSender, "joe@host.sub.example.com", "joe@example.com"},
		{"case and trailing parts", []string{"Example.COM"}, nil, nil, HeaderSender, "joe@Mail.Example.Com", "joe@example.com"},
		{"the domain itself unchanged", []string{"example.com"}, nil, nil, EnvelopeSender, "joe@example.com", "joe@example.com"},
		{"not a parent", []string{"example.com"}, nil, nil, EnvelopeSender, "joe@notexample.com", "joe@notexample.com"},
		{"unrelated", []string{"example.com"}, nil, nil, EnvelopeSender, "joe@example.org", "joe@example.org"},
		{"no domain", []string{"example.com"}, nil, nil, EnvelopeSender, "joe", "joe"},
		// postconf(5): the first match wins, so "!" before its parent.
		{"exception first", []string{"!sub.example.com", "example.com"}, nil, nil, EnvelopeSender, "joe@host.sub.example.com", "joe@host.sub.example.com"},
		{"exception's own name", []string{"!sub.example.com", "example.com"}, nil, nil, EnvelopeSender, "joe@sub.example.com", "joe@sub.example.com"},
		{"exception after its parent is too late", []string{"example.com", "!sub.example.com"}, nil, nil, EnvelopeSender, "joe@host.sub.example.com", "joe@example.com"},
		{"first parent wins", []string{"sub.example.com", "example.com"}, nil, nil, EnvelopeSender, "joe@a.sub.example.com", "joe@sub.example.com"},
		{"exact before shorter parent", []string{"sub.example.com", "example.com"}, nil, nil, EnvelopeSender, "joe@sub.example.com", "joe@sub.example.com"},
		{"envelope recipient off by default", []string{"example.com"}, nil, nil, EnvelopeRecipient, "joe@host.example.com", "joe@host.example.com"},
		{"header recipient on by default", []string{"example.com"}, nil, nil, HeaderRecipient, "joe@host.example.com", "joe@example.com"},
		{"envelope recipient when listed", []string{"example.com"}, []string{EnvelopeRecipient}, nil, EnvelopeRecipient, "joe@host.example.com", "joe@example.com"},
		{"class not listed", []string{"example.com"}, []string{EnvelopeRecipient}, nil, EnvelopeSender, "joe@host.example.com", "joe@host.example.com"},
		{"empty class list", []string{"example.com"}, []string{}, nil, EnvelopeSender, "joe@host.example.com", "joe@host.example.com"},
		{"user excepted", []string{"example.com"}, nil, []string{"root", "MAILER-DAEMON"}, EnvelopeSender, "Root@host.example.com", "Root@host.example.com"},
		{"user excepted case", []string{"example.com"}, nil, []string{"root", "MAILER-DAEMON"}, EnvelopeSender, "mailer-daemon@host.example.com", "mailer-daemon@host.example.com"},
		{"other user", []string{"example.com"}, nil, []string{"root"}, EnvelopeSender, "root+x@host.example.com", "root+x@example.com"},
		{"exception table", []string{"example.com"}, nil, []string{"inline:{admin=yes}"}, EnvelopeSender, "Admin@host.example.com", "Admin@host.example.com"},
		{"quoted local part kept", []string{"example.com"}, nil, nil, HeaderSender, `"a b"@x.example.com`, `"a b"@example.com`},
		{"no domains", nil, nil, nil, EnvelopeSender, "joe@host.example.com", "joe@host.example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			open := func(spec string) (Table, error) { return memTable{"admin": {"yes"}}, nil }
			m, err := NewMasquerade(tc.domains, tc.classes, tc.exceptions, open)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.Apply(ctx, tc.class, tc.in)
			if err != nil || got != tc.want {
				t.Errorf("Apply(%s, %q) = %q, %v; want %q", tc.class, tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := NewMasquerade([]string{"x"}, []string{"envelope_everything"}, nil, nil); err == nil {
		t.Error("unknown class accepted")
	}
	var nilMasq *Masquerade
	if got, err := nilMasq.Apply(ctx, EnvelopeSender, "a@b.c"); got != "a@b.c" || err != nil {
		t.Errorf("nil Masquerade: %q, %v", got, err)
	}
	// An exception table that cannot answer is a temporary failure, not
	// "not excepted".
	m := &Masquerade{Domains: []string{"example.com"}, ExceptionTables: []Table{failTable{}}}
	_, err := m.Apply(ctx, EnvelopeSender, "a@b.example.com")
	var ce *Error
	if !errors.As(err, &ce) || ce.Code != 451 || ce.Status != "4.3.0" {
		t.Errorf("failing exception table: %v", err)
	}
}

func TestRouteUnqualified(t *testing.T) {
	on := &Addresses{SwapBangpath: true, PercentHack: true, Myorigin: "example.com"}
	bangOnly := &Addresses{SwapBangpath: true, Myorigin: "example.com"}
	off := &Addresses{Myorigin: "example.com"}
	dot := &Addresses{SwapBangpath: true, PercentHack: true, Myorigin: "example.com", Mydomain: "example.com", AppendDotMydomain: true}
	// Postfix 3.7's cleanup (checked on a running Postfix): MAIL
	// FROM:<host!bob> is queued as bob@host, RCPT TO:<rem2.test!jim> as
	// jim@rem2.test, <ann%rem3.test> as ann@rem3.test.
	for _, tc := range []struct {
		a        *Addresses
		in, want string
	}{
		{on, "host!bob", "bob@host"},
		{on, "rem2.test!jim", "jim@rem2.test"},
		{on, "ann%rem3.test", "ann@rem3.test"},
		{on, "a!b!c", "b!c@a"},
		{on, "a%b%c", "a%b@c"},
		{on, "a!b%c", "b%c@a"},
		{on, "user", "user@example.com"},
		{on, "!user", "!user@example.com"},
		{on, "user!", "user!@example.com"},
		{on, "%user", "%user@example.com"},
		{on, "a b!c", "a b!c@example.com"}, // a quoted local part is one token
		{on, "user%x@y.example", "user%x@y.example"},
		{on, "", ""},
		{bangOnly, "ann%rem3.test", "ann%rem3.test@example.com"},
		{bangOnly, "site!ann", "ann@site"},
		{off, "site!ann", "site!ann@example.com"},
		{dot, "site!ann", "ann@site.example.com"},
	} {
		if got := tc.a.Qualify(tc.in); got != tc.want {
			t.Errorf("Qualify(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestResolveLocal(t *testing.T) {
	ctx := context.Background()
	domains := &Domains{
		Local:          NewDomainList([]string{"example.com", "mx.example.com"}, false),
		VirtualMailbox: NewDomainList([]string{"virtual.example"}, false),
		Relay:          NewDomainList([]string{"relay.example"}, true),
	}
	all := &Addresses{Domains: domains, SwapBangpath: true, PercentHack: true, ResolveDequoted: true}
	noPercent := &Addresses{Domains: domains, SwapBangpath: true, ResolveDequoted: true}
	noDequote := &Addresses{Domains: domains, SwapBangpath: true, PercentHack: true}
	for _, tc := range []struct {
		name     string
		a        *Addresses
		in, want string
	}{
		{"percent hack", all, "user%remote.example@example.com", "user@remote.example"},
		{"percent hack, case and dot", all, "user%remote.example@EXAMPLE.com.", "user@remote.example"},
		{"last percent first", all, "u%a.example%mx.example.com@example.com", "u@a.example"},
		{"bang path", all, "remote.example!user@example.com", "user@remote.example"},
		{"dequoted", all, "user@remote.example@example.com", "user@remote.example"},
		{"dequoted percent", all, "a b%remote.example@example.com", "a b@remote.example"},
		{"plain local user", all, "user@example.com", "user@example.com"},
		{"percent to ourselves", all, "user%mx.example.com@example.com", "user@mx.example.com"},
		{"virtual domain: mailbox name", all, "user%remote.example@virtual.example", "user%remote.example@virtual.example"},
		{"relay domain: mailbox name", all, "user%remote.example@relay.example", "user%remote.example@relay.example"},
		{"remote", all, "user%other@remote.example", "user%other@remote.example"},
		{"percent hack off", noPercent, "user%remote.example@example.com", "user%remote.example@example.com"},
		{"dequote off", noDequote, "user@remote.example@example.com", "user@remote.example@example.com"},
		{"empty parts", all, "%@example.com", "%@example.com"},
		{"no domain", all, "user", "user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.ResolveLocal(ctx, tc.in)
			if err != nil || got != tc.want {
				t.Errorf("ResolveLocal(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
	broken := &Addresses{Domains: &Domains{Local: NewDomainList(nil, false).WithTables(failTable{})}, PercentHack: true}
	if _, err := broken.ResolveLocal(ctx, "a%b@c.example"); err == nil {
		t.Error("a mydestination table that cannot answer gave no error")
	}
}
