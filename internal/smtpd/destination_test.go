package smtpd

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"postcote/internal/rewrite"
)

// memTable is a lookup table in memory.
type memTable map[string][]string

func (m memTable) Lookup(_ context.Context, key string) ([]string, error) { return m[key], nil }

// realRecipients is rewrite.Recipients as the server wires it: example.com
// and mx.example.com local, virtual.test a virtual mailbox domain,
// alias.test a virtual alias domain, relay.test a relay domain, and
// 127.0.0.1 an address this host listens on.
func realRecipients() *rewrite.Recipients {
	d := &rewrite.Domains{
		Local:          rewrite.NewDomainList([]string{"example.com", "mx.example.com"}, false),
		VirtualAlias:   rewrite.NewDomainList([]string{"alias.test"}, false),
		VirtualMailbox: rewrite.NewDomainList([]string{"virtual.test"}, false),
		Relay:          rewrite.NewDomainList([]string{"relay.test"}, true),
		Interfaces:     []netip.Addr{netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("::1")},
	}
	rules := &rewrite.Addresses{Myorigin: "example.com", Domains: d, SwapBangpath: true, PercentHack: true, ResolveDequoted: true,
		VirtualAlias: memTable{"group@alias.test": {"user@example.com"}}}
	return &rewrite.Recipients{Domains: d, Rules: rules,
		LocalRecipientMaps: memTable{"user": {"x"}, "other": {"x"}},
		VirtualMailboxMaps: memTable{"box@virtual.test": {"x"}, "u%x@virtual.test": {"x"}}}
}

// TestDestination: the resolved address, class and routing of a
// recipient are those of Postfix's resolve_clnt (trivial-rewrite
// resolve.c) as smtpd_check.c asks for them.
func TestDestination(t *testing.T) {
	p, err := compilePolicy(&Options{Hostname: "mx.example.com"}, realRecipients())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rcpt   string
		addr   string
		class  Class
		routed bool
	}{
		{"user@example.com", "user@example.com", Local, false},
		{"user@EXAMPLE.COM.", "user@example.com", Local, false},
		{"postmaster", "postmaster@mx.example.com", Local, false},
		// Routing in a local domain is applied, then looked at again.
		{"user%elsewhere.example@example.com", "user@elsewhere.example", Other, false},
		{"elsewhere.example!user@example.com", "user@elsewhere.example", Other, false},
		{`"user@elsewhere.example"@example.com`, "user@elsewhere.example", Other, false},
		{"user%mx.example.com@example.com", "user@mx.example.com", Local, false},
		{"user%box@virtual.test@example.com", "user%box@virtual.test", VirtualMailbox, true},
		{"user%elsewhere.example", "user@elsewhere.example", Other, false},
		// Elsewhere "%", "!" and "@" stay, and are routing.
		{"u%x@virtual.test", "u%x@virtual.test", VirtualMailbox, true},
		{"x!u@virtual.test", "x!u@virtual.test", VirtualMailbox, true},
		{"u%x@alias.test", "u%x@alias.test", VirtualAlias, true},
		{`"u@x"@alias.test`, "u@x@alias.test", VirtualAlias, true},
		{"u%x@relay.test", "u%x@relay.test", Relay, true},
		{"u%x@elsewhere.example", "u%x@elsewhere.example", Other, true},
		// A source route is ignored.
		{"@elsewhere.example:user@example.com", "user@example.com", Local, false},
		// Literals of our own addresses are local (resolve_local).
		{"user@[127.0.0.1]", "user@[127.0.0.1]", Local, false},
		{"user@[IPv6:::1]", "user@[ipv6:::1]", Local, false},
		{"user%elsewhere.example@[127.0.0.1]", "user@elsewhere.example", Other, false},
		{"user@[127.0.0.2]", "user@[127.0.0.2]", Other, false},
	} {
		path, err := parsePath(tc.rcpt)
		if err != nil {
			t.Fatalf("%s: %v", tc.rcpt, err)
		}
		d, err := p.destination(context.Background(), path)
		if err != nil || d.addr != tc.addr || d.class != tc.class || d.routed != tc.routed {
			t.Errorf("%s: %+v, %v; want %s %v routed=%v", tc.rcpt, d, err, tc.addr, tc.class, tc.routed)
		}
	}
}

// TestRelayResolved runs the relay and recipient checks with the real
// resolver: a stranger may not route through any of our domains, and
// the unlisted-recipient check looks at the resolved address.
func TestRelayResolved(t *testing.T) {
	for _, tc := range []struct {
		rcpt    string
		trusted bool
		want    string // "" permits
	}{
		{"user@example.com", false, ""},
		{"box@virtual.test", false, ""},
		{"group@alias.test", false, ""},
		{"u%x@virtual.test", false, "554 5.7.1 <u%x@virtual.test>: Relay access denied"},
		{"x!box@virtual.test", false, "554 5.7.1 <x!box@virtual.test>: Relay access denied"},
		{"user%elsewhere.example@alias.test", false, "554 5.7.1 <user%elsewhere.example@alias.test>: Relay access denied"},
		{`"user@elsewhere.example"@example.com`, false, "554 5.7.1 <user@elsewhere.example@example.com>: Relay access denied"},
		{"@example.com:user@elsewhere.example", false, "554 5.7.1 <user@elsewhere.example>: Relay access denied"},
		// user%other@ours, both local, is other@ours: not routing.
		{"other%mx.example.com@example.com", false, ""},
		{"nobody%mx.example.com@example.com", false, "550 5.1.1 <nobody%mx.example.com@example.com>: Recipient address rejected: User unknown in local recipient table"},
		{"postmaster@[127.0.0.1]", false, ""},
		{"user@[IPv6:::1]", false, ""},
		{"unknown@[127.0.0.1]", false, "550 5.1.1 <unknown@[127.0.0.1]>: Recipient address rejected: User unknown in local recipient table"},
		{"demo@[127.0.0.2]", false, "554 5.7.1 <demo@[127.0.0.2]>: Relay access denied"},
		// From mynetworks the routing is allowed, and the resolved
		// address is what must exist.
		{"u%x@virtual.test", true, ""},
		{"u%y@virtual.test", true, "550 5.1.1 <u%y@virtual.test>: Recipient address rejected: User unknown in virtual mailbox table"},
		{"user%elsewhere.example@example.com", true, ""},
	} {
		opts := &Options{Hostname: "mx.example.com", RelayRestrictions: []string{"permit_mynetworks", "reject_unauth_destination"},
			RecipientRestrictions: []string{"reject_unlisted_recipient"}}
		client := netip.MustParseAddr("203.0.113.1")
		if tc.trusted {
			opts.MyNetworks = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
		}
		p, err := compilePolicy(opts, realRecipients())
		if err != nil {
			t.Fatal(err)
		}
		rcpt, err := parsePath(tc.rcpt)
		if err != nil {
			t.Fatalf("%s: %v", tc.rcpt, err)
		}
		st := &checkState{clientName: "unknown", clientAddr: client, rcpt: &rcpt, atRCPT: true}
		d, err := p.evaluate(context.Background(), st, stageRelay, stageRecipient)
		if err != nil {
			t.Fatalf("%s: %v", tc.rcpt, err)
		}
		got := ""
		if d.verdict == deny {
			got = strings.TrimSpace(d.reply.String())
		}
		if got != tc.want {
			t.Errorf("%s (trusted %v): %q, want %q", tc.rcpt, tc.trusted, got, tc.want)
		}
	}
}
