package rewrite

import "testing"

func TestClassify(t *testing.T) {
	d := &Domains{
		Local:          NewDomainList([]string{"mail.example.jp", "localhost"}, false),
		VirtualAlias:   NewDomainList([]string{"alias.example"}, false),
		VirtualMailbox: NewDomainList([]string{"example.jp", ".sub.example.net"}, false),
		Relay:          NewDomainList([]string{"relay.example"}, true),
	}
	for _, tc := range []struct {
		domain string
		want   Class
	}{
		{"", Local},
		{"localhost", Local},
		{"MAIL.Example.JP.", Local},
		{"alias.example", VirtualAlias},
		{"example.jp", VirtualMailbox},
		{"EXAMPLE.JP.", VirtualMailbox},
		{"x.example.jp", Default}, // no subdomain match without a leading dot
		{"a.sub.example.net", VirtualMailbox},
		{"sub.example.net", Default},
		{"relay.example", Relay},
		{"mx.relay.example", Relay}, // relay_domains match subdomains
		{"example.org", Default},
		{"example.jp.evil.example", Default},
		{"[127.0.0.1]", Default},
	} {
		if got := d.Classify(tc.domain); got != tc.want {
			t.Errorf("Classify(%q) = %v, want %v", tc.domain, got, tc.want)
		}
	}
}

func TestSplitAddress(t *testing.T) {
	for _, tc := range []struct{ in, local, domain string }{
		{"user@example.com", "user", "example.com"},
		{`"a@b"@example.com`, `"a@b"`, "example.com"},
		{"postmaster", "postmaster", ""},
	} {
		l, d := SplitAddress(tc.in)
		if l != tc.local || d != tc.domain {
			t.Errorf("SplitAddress(%q) = %q, %q", tc.in, l, d)
		}
	}
}
