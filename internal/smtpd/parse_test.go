package smtpd

import (
	"strings"
	"testing"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		raw                        string
		local, domain, route, addr string
		bad                        bool
	}{
		{raw: "", addr: ""},
		{raw: "user@example.com", local: "user", domain: "example.com", addr: "user@example.com"},
		{raw: "User@Example.COM.", local: "User", domain: "Example.COM.", addr: "User@example.com"},
		{raw: `"john doe"@example.com`, local: "john doe", domain: "example.com", addr: "john doe@example.com"},
		{raw: `"a\"b@c"@example.com`, local: `a"b@c`, domain: "example.com", addr: `a"b@c@example.com`},
		{raw: "@a.example,@b.example:user@d.example", local: "user", domain: "d.example", route: "@a.example,@b.example", addr: "user@d.example"},
		{raw: "user@[192.0.2.1]", local: "user", domain: "[192.0.2.1]", addr: "user@[192.0.2.1]"},
		{raw: "user@[IPv6:2001:db8::1]", local: "user", domain: "[IPv6:2001:db8::1]", addr: "user@[ipv6:2001:db8::1]"},
		{raw: "postmaster", local: "postmaster", addr: "postmaster"},
		{raw: "a%b@c.example", local: "a%b", domain: "c.example", addr: "a%b@c.example"},
		{raw: "a@b@c.example", local: "a@b", domain: "c.example", addr: "a@b@c.example"},
		{raw: "jösé@exämple.de", local: "jösé", domain: "exämple.de", addr: "jösé@exämple.de"},
		{raw: "user@", bad: true},
		{raw: "@example.com", bad: true},
		{raw: "a b@example.com", bad: true},
		{raw: `"unterminated@example.com`, bad: true},
		{raw: `""@example.com`, bad: true},
		{raw: "user@exa mple.com", bad: true},
		{raw: "user@-example.com", bad: true},
		{raw: "user@[300.1.1.1]", bad: true},
		{raw: "user@[IPv6:1.2.3.4]", bad: true},
		{raw: "@a:", bad: true},
		{raw: "@:user@example.com", bad: true},
		{raw: "user@example..com", bad: true},
		{raw: "\xff@example.com", bad: true},
	}
	for _, tt := range tests {
		p, err := parsePath(tt.raw)
		if tt.bad {
			if err == nil {
				t.Errorf("parsePath(%q) = %+v, want error", tt.raw, p)
			}
			continue
		}
		if err != nil {
			t.Errorf("parsePath(%q): %v", tt.raw, err)
			continue
		}
		if p.Local != tt.local || p.Domain != tt.domain || p.Route != tt.route || p.Address() != tt.addr || p.Null != (tt.raw == "") {
			t.Errorf("parsePath(%q) = %+v (address %q)", tt.raw, p, p.Address())
		}
	}
}

// TestPathDisplay: replies and logs name an address as Postfix's smtpd
// does, in its internal form (smtpd.c extract_addr).
func TestPathDisplay(t *testing.T) {
	for _, tc := range []struct{ raw, want string }{
		{"", ""},
		{"user@example.com", "user@example.com"},
		{"User@Example.COM.", "User@Example.COM."}, // the domain as sent
		{`"demo@example.test"@example.jp`, "demo@example.test@example.jp"},
		{`"john doe"@example.com`, "john doe@example.com"},
		{`"a\"b"@example.com`, `a"b@example.com`},
		{"@example.jp:demo@example.test", "demo@example.test"},
		{"@a.example,@b.example:user@d.example", "user@d.example"},
		{"demo%example.test@example.jp", "demo%example.test@example.jp"},
		{"postmaster", "postmaster"},
		{"user@[IPv6:::1]", "user@[IPv6:::1]"},
	} {
		p, err := parsePath(tc.raw)
		if err != nil {
			t.Fatalf("parsePath(%q): %v", tc.raw, err)
		}
		if got := p.Display(); got != tc.want {
			t.Errorf("parsePath(%q).Display() = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

func TestParseMailArg(t *testing.T) {
	tests := []struct {
		arg, raw string
		params   int
		err      string // "", "path", "syntax"
	}{
		{arg: "FROM:<a@b.example>", raw: "a@b.example"},
		{arg: "from: <a@b.example>", raw: "a@b.example"},
		{arg: "FROM:a@b.example SIZE=10", raw: "a@b.example", params: 1},
		{arg: "FROM:<> BODY=8BITMIME SMTPUTF8", raw: "", params: 2},
		{arg: `FROM:<"odd>name"@b.example> RET=FULL`, raw: `"odd>name"@b.example`, params: 1},
		{arg: "FROM:<a@b.example>SIZE=10", err: "path"},
		{arg: "FROM:<a@b.example", err: "path"},
		{arg: "FROM:<<a@b.example>>", err: "path"},
		{arg: "FROM:", err: "syntax"},
		{arg: "FROM <a@b.example>", err: "syntax"},
		{arg: "FROM:<a@b.example> =x", err: "syntax"},
		{arg: "FROM:<a@b.example> SIZE=", err: "syntax"},
		{arg: "FROM:<a@b.example> S_ZE=1", err: "syntax"},
	}
	for _, tt := range tests {
		p, params, err := parseMailArg(tt.arg, "FROM")
		got := ""
		if err == errPathSyntax {
			got = "path"
		} else if err != nil {
			got = "syntax"
		}
		if got != tt.err {
			t.Errorf("parseMailArg(%q) error %v, want %s", tt.arg, err, tt.err)
			continue
		}
		if err == nil && (p.Raw != tt.raw || len(params) != tt.params) {
			t.Errorf("parseMailArg(%q) = %+v %+v", tt.arg, p, params)
		}
	}
}

func TestParseCommand(t *testing.T) {
	for _, tt := range []struct{ line, verb, arg string }{
		{"ehlo example.com", "EHLO", "example.com"},
		{"MAIL FROM:<a@b>  ", "MAIL", "FROM:<a@b>"},
		{"QUIT", "QUIT", ""},
		{"noop\tx", "NOOP", "x"},
		{"", "", ""},
	} {
		if v, a := parseCommand(tt.line); v != tt.verb || a != tt.arg {
			t.Errorf("parseCommand(%q) = %q, %q", tt.line, v, a)
		}
	}
}

func TestXtextAndDSN(t *testing.T) {
	for _, tt := range []struct{ in, out string }{
		{"abc", "abc"}, {"a+2Bb", "a+b"}, {"+3D", "="}, {"", ""},
	} {
		if got, err := decodeXtext(tt.in); err != nil || got != tt.out {
			t.Errorf("decodeXtext(%q) = %q, %v", tt.in, got, err)
		}
	}
	for _, bad := range []string{"a+2b", "a+", "a+4", "a=b", "a b", "é"} {
		if _, err := decodeXtext(bad); err == nil {
			t.Errorf("decodeXtext(%q) accepted", bad)
		}
	}
	for _, tt := range []struct{ in, out string }{
		{"never", "NEVER"}, {"success,failure,delay", "SUCCESS,FAILURE,DELAY"}, {"DELAY", "DELAY"},
	} {
		if got, err := parseNotify(tt.in); err != nil || got != tt.out {
			t.Errorf("parseNotify(%q) = %q, %v", tt.in, got, err)
		}
	}
	for _, bad := range []string{"", "NEVER,SUCCESS", "SUCCESS,SUCCESS", "SOMETIMES"} {
		if _, err := parseNotify(bad); err == nil {
			t.Errorf("parseNotify(%q) accepted", bad)
		}
	}
	if got, err := parseORCPT("rfc822;a+2Bb@c.example"); err != nil || got != "rfc822;a+b@c.example" {
		t.Errorf("parseORCPT = %q, %v", got, err)
	}
	if got, err := parseORCPT("utf-8;jösé@c.example"); err != nil || got != "utf-8;jösé@c.example" {
		t.Errorf("parseORCPT utf-8 = %q, %v", got, err)
	}
	for _, bad := range []string{"rfc822", ";a@b", "rfc822;", "rf c;a@b", "rfc822;a+zz"} {
		if _, err := parseORCPT(bad); err == nil {
			t.Errorf("parseORCPT(%q) accepted", bad)
		}
	}
}

func TestReplyString(t *testing.T) {
	r := Reply{250, "", "a\nb\nc"}
	if got := r.String(); got != "250-a\r\n250-b\r\n250 c\r\n" {
		t.Errorf("multi-line reply %q", got)
	}
	if got := (Reply{550, "5.1.1", "x"}).String(); got != "550 5.1.1 x\r\n" {
		t.Errorf("reply %q", got)
	}
	if !strings.HasPrefix(replyTooBig.Line(), "552 5.3.4 ") {
		t.Error(replyTooBig.Line())
	}
}
