package smtpd

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"postcote/internal/dnsx"
	"postcote/internal/maillog"
)

// testZone is the DNS of the restriction tests (dnsx's static format).
const testZone = `
mx.example         MX   10 mail.mx.example
a.example          A    192.0.2.10
v6.example         AAAA 2001:db8::10
null.example       MX   0 .
fail.example       SERVFAIL
relay.test         SERVFAIL
good.example       A    192.0.2.20
192.0.2.20         PTR  good.example
192.0.2.21         PTR  forged.example
forged.example     A    192.0.2.99
192.0.2.23         SERVFAIL
192.0.2.24         PTR  gone.example
2001:db8::25       PTR  v6host.example
v6host.example     AAAA 2001:db8::25
127.0.0.1          PTR  localhost.example
localhost.example  A    127.0.0.1
2.0.0.127.zen.example  A   127.0.0.2
2.0.0.127.zen.example  TXT "spam source"
4.0.0.127.zen.example  A   127.0.0.4
5.0.0.127.zen.example  A   127.0.0.5
5.0.0.127.zen.example  TXT "bad` + "\x01" + `text"
5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.example A 127.0.0.2
2.0.0.127.wl.example   A   127.0.2.15
bad.example.dbl.example A  127.0.1.2
2.0.0.127.down.example SERVFAIL
`

func testResolver(t testing.TB) *dnsx.StaticResolver {
	t.Helper()
	r, err := dnsx.ParseStaticResolver(strings.NewReader(testZone))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDNSRestrictions(t *testing.T) {
	path := func(s string) *Path {
		pth, err := parsePath(s)
		if err != nil {
			t.Fatalf("parsePath(%q): %v", s, err)
		}
		return &pth
	}
	stranger := netip.MustParseAddr("198.51.100.7")
	listed := netip.MustParseAddr("127.0.0.2")
	rbl := func(o *Options) { o.ClientRestrictions = []string{"reject_rbl_client zen.example"} }
	usd := func(o *Options) { o.SenderRestrictions = []string{"reject_unknown_sender_domain"} }
	urd := func(o *Options) { o.RecipientRestrictions = []string{"reject_unknown_recipient_domain"} }
	uhh := func(o *Options) { o.HeloRestrictions = []string{"reject_unknown_helo_hostname"} }
	uch := func(o *Options) { o.ClientRestrictions = []string{"reject_unknown_client_hostname"} }
	urch := func(o *Options) { o.ClientRestrictions = []string{"reject_unknown_reverse_client_hostname"} }
	code550 := func(o *Options) {
		o.UnknownAddressRejectCode, o.UnknownClientRejectCode, o.UnknownHostnameRejectCode = 550, 550, 550
	}
	both := func(fs ...func(*Options)) func(*Options) {
		return func(o *Options) {
			for _, f := range fs {
				f(o)
			}
		}
	}
	tests := []struct {
		name     string
		opts     func(*Options)
		st       checkState
		want     string // reply line, "" for permit
		deferred bool
	}{
		// reject_unknown_sender_domain / reject_unknown_recipient_domain
		{"sender NXDOMAIN", usd, checkState{sender: path("x@nowhere.example")},
			"450 4.1.8 <x@nowhere.example>: Sender address rejected: Domain not found", false},
		{"sender NXDOMAIN, code 550", both(usd, code550), checkState{sender: path("x@nowhere.example")},
			"550 5.1.8 <x@nowhere.example>: Sender address rejected: Domain not found", false},
		{"sender SERVFAIL defers if permitted", usd, checkState{sender: path("x@fail.example"), rcpt: path("user@example.com")},
			"450 4.1.8 <x@fail.example>: Sender address rejected: Domain not found", true},
		{"sender SERVFAIL, then an unknown user wins", usd, checkState{sender: path("x@fail.example"), rcpt: path("nobody@example.com"), atRCPT: true},
			"550 5.1.1 <nobody@example.com>: Recipient address rejected: User unknown in local recipient table", false},
		{"sender SERVFAIL, known user deferred", usd, checkState{sender: path("x@fail.example"), rcpt: path("user@example.com"), atRCPT: true},
			"450 4.1.8 <x@fail.example>: Sender address rejected: Domain not found", true},
		{"sender SERVFAIL, then a reject wins", both(usd, func(o *Options) { o.RecipientRestrictions = []string{"reject"} }),
			checkState{sender: path("x@fail.example"), rcpt: path("user@example.com")},
			"554 5.7.1 <user@example.com>: Recipient address rejected: Access denied", false},
		{"sender SERVFAIL, tempfail action defer", both(usd, func(o *Options) {
			o.UnknownAddressTempfailAction = "defer"
			o.RecipientRestrictions = []string{"reject"}
		}), checkState{sender: path("x@fail.example"), rcpt: path("user@example.com")},
			"450 4.1.8 <x@fail.example>: Sender address rejected: Domain not found", false},
		{"sender null MX", usd, checkState{sender: path("x@null.example")},
			"550 5.7.27 <x@null.example>: Sender address rejected: Domain null.example does not accept mail (nullMX)", false},
		{"sender MX only", usd, checkState{sender: path("x@MX.example.")}, "", false},
		{"sender A only", usd, checkState{sender: path("x@a.example")}, "", false},
		{"sender AAAA only", usd, checkState{sender: path("x@v6.example")}, "", false},
		{"sender in our domain", usd, checkState{sender: path("x@example.com")}, "", false},
		{"sender in our virtual domain", usd, checkState{sender: path("x@virtual.test")}, "", false},
		{"null sender", usd, checkState{sender: path("")}, "", false},
		{"address literal sender", usd, checkState{sender: path("x@[192.0.2.1]")}, "", false},
		{"unqualified sender", usd, checkState{sender: path("root")}, "", false},
		{"relay domain is looked up", urd, checkState{rcpt: path("u@relay.test")},
			"450 4.1.2 <u@relay.test>: Recipient address rejected: Domain not found", true},
		{"recipient NXDOMAIN", urd, checkState{rcpt: path("u@nowhere.example")},
			"450 4.1.2 <u@nowhere.example>: Recipient address rejected: Domain not found", false},
		{"recipient null MX", urd, checkState{rcpt: path("u@null.example")},
			"556 5.1.10 <u@null.example>: Recipient address rejected: Domain null.example does not accept mail (nullMX)", false},
		{"recipient in our domain", urd, checkState{rcpt: path("user@example.com")}, "", false},
		{"sender check in the recipient list", func(o *Options) { o.RecipientRestrictions = []string{"reject_unknown_sender_domain"} },
			checkState{sender: path("x@nowhere.example"), rcpt: path("user@example.com")},
			"450 4.1.8 <x@nowhere.example>: Sender address rejected: Domain not found", false},

		// reject_unknown_helo_hostname
		{"helo unknown", uhh, checkState{helo: "nohost.example"},
			"450 4.7.1 <nohost.example>: Helo command rejected: Host not found", false},
		{"helo unknown, code 550", both(uhh, code550), checkState{helo: "nohost.example"},
			"550 5.7.1 <nohost.example>: Helo command rejected: Host not found", false},
		{"helo SERVFAIL", uhh, checkState{helo: "fail.example"},
			"450 4.7.1 <fail.example>: Helo command rejected: Host not found", true},
		{"helo with A", uhh, checkState{helo: "a.example"}, "", false},
		{"helo with MX", uhh, checkState{helo: "mx.example."}, "", false},
		{"helo with null MX", uhh, checkState{helo: "null.example"}, "", false},
		{"helo bad literal", uhh, checkState{helo: "[300.1.1.1]"},
			"501 5.5.2 <[300.1.1.1]>: Helo command rejected: invalid ip address", false},
		{"helo literal", uhh, checkState{helo: "[192.0.2.1]"}, "", false},
		{"no helo", uhh, checkState{}, "", false},

		// reject_unknown_client_hostname, reject_unknown_reverse_client_hostname
		{"client confirmed", uch, checkState{nameStatus: peerOK, reverseStatus: peerOK}, "", false},
		{"client no PTR", uch, checkState{nameStatus: peerPerm, reverseStatus: peerPerm},
			"450 4.7.25 Client host rejected: cannot find your hostname, [198.51.100.7]", false},
		{"client no PTR, code 550", both(uch, code550), checkState{nameStatus: peerPerm, reverseStatus: peerPerm},
			"550 5.7.25 Client host rejected: cannot find your hostname, [198.51.100.7]", false},
		{"client forged, code 550", both(uch, code550), checkState{nameStatus: peerForged, reverseStatus: peerOK},
			"550 5.7.25 Client host rejected: cannot find your hostname, [198.51.100.7]", false},
		{"client DNS failure stays 450", both(uch, code550), checkState{nameStatus: peerTemp, reverseStatus: peerTemp},
			"450 4.7.25 Client host rejected: cannot find your hostname, [198.51.100.7]", false},
		{"reverse: forged name has a PTR", both(urch, code550), checkState{nameStatus: peerForged, reverseStatus: peerOK}, "", false},
		{"reverse: no PTR", both(urch, code550), checkState{nameStatus: peerPerm, reverseStatus: peerPerm},
			"550 5.7.1 Client host rejected: cannot find your reverse hostname, [198.51.100.7]", false},
		{"reverse: DNS failure", both(urch, code550), checkState{nameStatus: peerTemp, reverseStatus: peerTemp},
			"450 4.7.1 Client host rejected: cannot find your reverse hostname, [198.51.100.7]", false},

		// DNS lists
		{"rbl listed with reason", rbl, checkState{clientAddr: listed},
			"554 5.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.example; spam source", false},
		{"rbl listed without TXT", rbl, checkState{clientAddr: netip.MustParseAddr("127.0.0.4")},
			"554 5.7.1 Service unavailable; Client host [127.0.0.4] blocked using zen.example", false},
		{"rbl reason is filtered", rbl, checkState{clientAddr: netip.MustParseAddr("127.0.0.5")},
			"554 5.7.1 Service unavailable; Client host [127.0.0.5] blocked using zen.example; bad_text", false},
		{"rbl IPv6 client", rbl, checkState{clientAddr: netip.MustParseAddr("2001:db8::25")},
			"554 5.7.1 Service unavailable; Client host [2001:db8::25] blocked using zen.example", false},
		{"rbl not listed", rbl, checkState{clientAddr: netip.MustParseAddr("127.0.0.9")}, "", false},
		{"rbl filter excludes", func(o *Options) { o.ClientRestrictions = []string{"reject_rbl_client zen.example=127.0.0.2"} },
			checkState{clientAddr: netip.MustParseAddr("127.0.0.4")}, "", false},
		{"rbl filter range", func(o *Options) { o.ClientRestrictions = []string{"reject_rbl_client", "zen.example=127.0.0.[1;3..4]"} },
			checkState{clientAddr: netip.MustParseAddr("127.0.0.4")},
			"554 5.7.1 Service unavailable; Client host [127.0.0.4] blocked using zen.example", false},
		{"rbl list down: not listed", func(o *Options) { o.ClientRestrictions = []string{"reject_rbl_client down.example"} },
			checkState{clientAddr: listed}, "", false},
		{"rbl code", func(o *Options) { rbl(o); o.MapsRBLRejectCode = 450 }, checkState{clientAddr: listed},
			"450 4.7.1 Service unavailable; Client host [127.0.0.2] blocked using zen.example; spam source", false},
		{"rbl_reply_maps", func(o *Options) {
			rbl(o)
			o.OpenTable = replyMaps(mapTable{"zen.example": "521 5.7.0 Client $client_address listed by ${rbl_domain}${rbl_reason?: $rbl_reason}${sender:, no sender}"})
			o.RBLReplyMaps = []string{"hash:/etc/postfix/empty", "hash:/etc/postfix/rbl_reply"}
		}, checkState{clientAddr: listed}, "521 5.7.0 Client 127.0.0.2 listed by zen.example: spam source, no sender", false},
		{"rbl_reply_maps bad code", func(o *Options) {
			rbl(o)
			o.OpenTable = replyMaps(mapTable{"zen.example": "250 fine"})
			o.RBLReplyMaps = []string{"hash:/etc/postfix/rbl_reply"}
		}, checkState{clientAddr: listed}, "450 4.7.1 Service unavailable", false},
		{"rhsbl sender", func(o *Options) { o.SenderRestrictions = []string{"reject_rhsbl_sender dbl.example"} },
			checkState{sender: path("x@Bad.Example")},
			"554 5.7.1 Service unavailable; Sender address [x@Bad.Example] blocked using dbl.example", false},
		{"rhsbl sender not listed", func(o *Options) { o.SenderRestrictions = []string{"reject_rhsbl_sender dbl.example"} },
			checkState{sender: path("x@a.example")}, "", false},
		{"rhsbl helo", func(o *Options) { o.HeloRestrictions = []string{"reject_rhsbl_helo dbl.example"} },
			checkState{helo: "bad.example"},
			"554 5.7.1 Service unavailable; Helo command [bad.example] blocked using dbl.example", false},
		{"rhsbl client", func(o *Options) { o.ClientRestrictions = []string{"reject_rhsbl_client dbl.example"} },
			checkState{clientName: "bad.example"},
			"554 5.7.1 Service unavailable; Client host [bad.example] blocked using dbl.example", false},
		{"rhsbl reverse client", func(o *Options) { o.ClientRestrictions = []string{"reject_rhsbl_reverse_client dbl.example"} },
			checkState{reverseName: "bad.example"},
			"554 5.7.1 Service unavailable; Unverified Client host [bad.example] blocked using dbl.example", false},
		{"rhsbl recipient", func(o *Options) { o.RecipientRestrictions = []string{"reject_rhsbl_recipient dbl.example"} },
			checkState{rcpt: path("u@bad.example"), atRCPT: true},
			"554 5.7.1 Service unavailable; Recipient address [u@bad.example] blocked using dbl.example", false},
		{"dnswl permits", func(o *Options) { o.ClientRestrictions = []string{"permit_dnswl_client wl.example", "reject"} },
			checkState{clientAddr: listed, rcpt: path("user@example.com"), atRCPT: true}, "", false},
		{"dnswl does not open the relay", func(o *Options) { o.ClientRestrictions = []string{"permit_dnswl_client wl.example", "reject"} },
			checkState{clientAddr: listed, rcpt: path("u@elsewhere.example"), atRCPT: true},
			"554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied", false},
		{"dnswl down turns a reject into 450", func(o *Options) { o.ClientRestrictions = []string{"permit_dnswl_client down.example", "reject"} },
			checkState{clientAddr: listed},
			"450 4.7.1 <127.0.0.2>: Client host rejected: Service unavailable", false},

		// reject_multi_recipient_bounce
		{"bounce to two", func(o *Options) { o.RecipientRestrictions = []string{"reject_multi_recipient_bounce"} },
			checkState{sender: path(""), rcpt: path("user@example.com"), rcptCount: 1, atRCPT: true},
			"550 5.5.3 <user@example.com>: Recipient address rejected: Multi-recipient bounce", false},
		{"bounce to one", func(o *Options) { o.RecipientRestrictions = []string{"reject_multi_recipient_bounce"} },
			checkState{sender: path(""), rcpt: path("user@example.com"), atRCPT: true}, "", false},
		{"two from a sender", func(o *Options) { o.RecipientRestrictions = []string{"reject_multi_recipient_bounce"} },
			checkState{sender: path("a@a.example"), rcpt: path("user@example.com"), rcptCount: 5, atRCPT: true}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := baseOptions()
			opts.Resolver = testResolver(t)
			opts.RelayRestrictions = []string{"permit"}
			opts.RecipientRestrictions = []string{"reject_unauth_destination"}
			tt.opts(&opts)
			if opts.RecipientRestrictions[0] != "reject_unauth_destination" && opts.RecipientRestrictions[0] != "reject" {
				opts.RecipientRestrictions = append(opts.RecipientRestrictions, "reject_unauth_destination")
			}
			p, err := compilePolicy(&opts, newFakeAddrs())
			if err != nil {
				t.Fatal(err)
			}
			st := tt.st
			if st.clientName == "" {
				st.clientName = "unknown"
			}
			if st.reverseName == "" {
				st.reverseName = "unknown"
			}
			if !st.clientAddr.IsValid() {
				st.clientAddr = stranger
			}
			st.cache = &dnsCache{}
			d, err := p.evaluate(context.Background(), &st, stageClient, stageHelo, stageSender, stageRelay, stageRecipient)
			if err != nil {
				t.Errorf("err = %v", err)
			}
			got := ""
			if d.verdict == deny {
				got = d.reply.Line()
			}
			if got != tt.want || d.deferred != tt.deferred {
				t.Errorf("got %q (deferred %v), want %q (deferred %v)", got, d.deferred, tt.want, tt.deferred)
			}
		})
	}
}

// replyMaps opens hash:/etc/postfix/rbl_reply as m, and any other table
// as an empty one.
func replyMaps(m mapTable) func(string) (Table, error) {
	return func(name string) (Table, error) {
		if name == "hash:/etc/postfix/rbl_reply" {
			return m, nil
		}
		return mapTable{}, nil
	}
}

func TestDNSRestrictionConfig(t *testing.T) {
	tests := []struct {
		name string
		opts func(*Options)
		want string // part of the error
	}{
		{"no resolver", func(o *Options) { o.Resolver = nil; o.SenderRestrictions = []string{"reject_unknown_sender_domain"} }, "needs DNS"},
		{"no list", func(o *Options) { o.ClientRestrictions = []string{"reject_rbl_client"} }, "needs a DNS list domain"},
		{"bad list", func(o *Options) { o.ClientRestrictions = []string{"reject_rbl_client", "zen..example"} }, "bad DNS list domain"},
		{"bad filter", func(o *Options) { o.ClientRestrictions = []string{"reject_rbl_client zen.example=127.0.0.[9..2]"} }, "bad address pattern"},
		{"bad tempfail action", func(o *Options) { o.UnknownAddressTempfailAction = "reject" }, "unknown_address_tempfail_action"},
		{"bad code", func(o *Options) { o.MapsRBLRejectCode = 250 }, "maps_rbl_reject_code"},
		{"bad default reply", func(o *Options) { o.DefaultRBLReply = "554 ${rbl_domain" }, "default_rbl_reply"},
		{"reply maps without tables", func(o *Options) { o.RBLReplyMaps = []string{"hash:x"} }, "rbl_reply_maps: no lookup tables"},
		{"reply map that does not open", func(o *Options) { o.OpenTable = openMap; o.RBLReplyMaps = []string{"hash:x"} }, "rbl_reply_maps hash:x"},
	}
	for _, tt := range tests {
		opts := baseOptions()
		opts.Resolver = testResolver(t)
		tt.opts(&opts)
		if _, err := New(opts, &fakeQueue{}, newFakeAddrs(), fakeAuth{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want %q", tt.name, err, tt.want)
		}
	}
}

func TestExpandTemplate(t *testing.T) {
	vars := map[string]string{"a": "A", "empty": ""}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	tests := []struct{ in, want string }{
		{"$a-${a}-$(a)", "A-A-A"},
		{"$$a", "$a"},
		{"${a?yes}${empty?no}${missing?no}", "yes"},
		{"${a:no}${empty:e}${missing:m}", "em"},
		{"${a?[${a:x}$a]}", "[A]"},
		{"$missing.", "."},
	}
	for _, tt := range tests {
		if got, err := expandTemplate(tt.in, lookup); err != nil || got != tt.want {
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"$", "${a", "${}", "${a!x}", "$-", "${a?${b?${c?${d?${e?${f?${g?${h?${i?${j?${k?${l?${m?${n?${o?${p?${q?${r?${s?${t?${u?${v?x}}}}}}}}}}}}}}}}}}}}}}"} {
		if _, err := expandTemplate(bad, func(string) (string, bool) { return "x", true }); err == nil {
			t.Errorf("expand(%q) accepted", bad)
		}
	}
}

// TestPeerName: the session's client name is the forward-confirmed PTR
// name, with Postfix's statuses for each way the lookup can fail.
func TestPeerName(t *testing.T) {
	tests := []struct {
		addr          string
		name, reverse string
		nameSt, revSt peerStatus
		warning       string
	}{
		{"192.0.2.20", "good.example", "good.example", peerOK, peerOK, ""},
		{"::ffff:192.0.2.20", "good.example", "good.example", peerOK, peerOK, ""},
		{"2001:db8::25", "v6host.example", "v6host.example", peerOK, peerOK, ""},
		{"192.0.2.21", "unknown", "forged.example", peerForged, peerOK, "hostname forged.example does not resolve to address 192.0.2.21"},
		{"192.0.2.22", "unknown", "unknown", peerPerm, peerPerm, ""},
		{"192.0.2.23", "unknown", "unknown", peerTemp, peerTemp, ""},
		{"192.0.2.24", "unknown", "gone.example", peerPerm, peerOK, "hostname gone.example does not resolve to address 192.0.2.24: Name or service not known"},
	}
	for _, tt := range tests {
		var log maillog.Buffer
		opts := baseOptions()
		opts.Resolver = testResolver(t)
		opts.Logger = maillog.New(&log, "mx", false)
		s := &session{srv: &Server{opts: opts, program: "smtpd"}, opts: &opts, clientName: "unknown",
			clientAddr: netip.MustParseAddr(tt.addr).Unmap()}
		s.lookupPeer(context.Background())
		if s.clientName != tt.name || s.reverseName != tt.reverse || s.nameStatus != tt.nameSt || s.reverseStatus != tt.revSt {
			t.Errorf("%s: name %q reverse %q statuses %d/%d, want %q %q %d/%d", tt.addr, s.clientName, s.reverseName,
				s.nameStatus, s.reverseStatus, tt.name, tt.reverse, tt.nameSt, tt.revSt)
		}
		if tt.warning != "" && !strings.Contains(log.String(), "warning: "+tt.warning) {
			t.Errorf("%s: log %q lacks %q", tt.addr, log.String(), tt.warning)
		}
	}
	// smtpd_peername_lookup = no: no query at all.
	opts := baseOptions()
	opts.Resolver = &dnsx.StaticResolver{ServFail: map[string]bool{"192.0.2.20": true}}
	opts.NoPeernameLookup = true
	s := &session{srv: &Server{opts: opts}, opts: &opts, clientName: "unknown", clientAddr: netip.MustParseAddr("192.0.2.20")}
	s.lookupPeer(context.Background())
	if s.clientName != "unknown" || s.nameStatus != peerPerm || s.reverseStatus != peerPerm {
		t.Errorf("no lookup: %q %d %d", s.clientName, s.nameStatus, s.reverseStatus)
	}
}

func TestAddrPattern(t *testing.T) {
	tests := []struct {
		pat  string
		addr string
		want bool
	}{
		{"127.0.0.2", "127.0.0.2", true},
		{"127.0.0.2", "127.0.0.3", false},
		{"127.0.0.[2..11]", "127.0.0.11", true},
		{"127.0.0.[2..11]", "127.0.0.12", false},
		{"127.0.[1;3].[2;4..6]", "127.0.3.5", true},
		{"127.0.[1;3].[2;4..6]", "127.0.2.5", false},
		{"127.0.0.2", "::1", false},
	}
	for _, tt := range tests {
		p, err := parseAddrPattern(tt.pat)
		if err != nil {
			t.Fatalf("%s: %v", tt.pat, err)
		}
		if got := p.match(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("%s ~ %s = %v", tt.pat, tt.addr, got)
		}
	}
	for _, bad := range []string{"1.2.3", "1.2.3.4.5", "1.2.3.256", "1.2.3.[]", "1.2.3.[4..]", "1.2.3.x", "1.2.3.[5..4]", "1.2.3.-1"} {
		if _, err := parseAddrPattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
