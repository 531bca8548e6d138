package transport

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postcote/internal/queue"
)

func TestTLSPolicyTableValue(t *testing.T) {
	base := TLSPolicy{Level: "may", CAFile: "/ca.pem", VerifyCertMatch: []string{"hostname"}, MandatoryProtocols: []string{">=TLSv1"}}
	tests := []struct {
		value string
		check func(TLSPolicy) bool
		bad   string
	}{
		{value: "encrypt", check: func(p TLSPolicy) bool { return p.Level == "encrypt" && p.CAFile == "/ca.pem" }},
		{value: "NONE", check: func(p TLSPolicy) bool { return p.Level == "none" }},
		{value: "dane", check: func(p TLSPolicy) bool { return p.Level == "dane" }},
		{value: "verify match=hostname:dot-nexthop", check: func(p TLSPolicy) bool {
			return p.Level == "verify" && strings.Join(p.VerifyCertMatch, ",") == "hostname,dot-nexthop"
		}},
		{value: "secure match=.example.net", check: func(p TLSPolicy) bool { return strings.Join(p.SecureCertMatch, ",") == ".example.net" }},
		{value: "encrypt protocols=!SSLv2:!SSLv3:!TLSv1 ciphers=high", check: func(p TLSPolicy) bool {
			return strings.Join(p.MandatoryProtocols, ",") == "!SSLv2,!SSLv3,!TLSv1" && strings.Join(p.Protocols, ",") == "!SSLv2,!SSLv3,!TLSv1"
		}},
		{value: "verify tafile=/a.pem tafile=/b.pem", check: func(p TLSPolicy) bool {
			return p.CAFile == "" && strings.Join(p.TAFiles, ",") == "/a.pem,/b.pem"
		}},
		{value: "may servername=nexthop connection_reuse=yes", check: func(p TLSPolicy) bool { return p.ServerName == "nexthop" && p.ConnectionReuse }},
		{value: "", bad: "empty"},
		{value: "dane-only", bad: "not supported"},
		{value: "fingerprint match=AA:BB", bad: "not supported"},
		{value: "must", bad: "unknown security level"},
		{value: "encrypt match=x", bad: "match= is for"},
		{value: "encrypt tafile=/a.pem", bad: "tafile= is for"},
		{value: "verify exclude=aNULL", bad: "unknown attribute"},
		{value: "verify ciphers=null", bad: "not supported"},
		{value: "verify match", bad: "name=value"},
		{value: "may connection_reuse=maybe", bad: "yes or no"},
	}
	for _, tc := range tests {
		p, err := base.withTableValue(tc.value)
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Errorf("%q: err %v, want %q", tc.value, err, tc.bad)
			}
			continue
		}
		if err != nil || !tc.check(p) {
			t.Errorf("%q: %+v, %v", tc.value, p, err)
		}
	}
}

// policyClient delivers to fake servers for example.com (MX
// mx.example.com, 127.0.0.7), example.org (MX mx1, 127.0.0.2) and
// relay.example (127.0.0.4, port 587) with smtp_tls_policy_maps.
func policyClient(t *testing.T, routes map[string]string, base TLSPolicy, tables ...PolicyTable) *SMTP {
	t.Helper()
	dns := exampleDNS()
	dns.MX["example.com"] = []*net.MX{{Host: "mx.example.com", Pref: 10}}
	dns.IP["mx.example.com"] = ips("127.0.0.7")
	dns.IP["relay.example"] = ips("127.0.0.4")
	dns.IP["mail.sub.example.com"] = ips("127.0.0.7")
	c, _, _ := newTestClient(t, dns, routes)
	c.TLS = base
	c.TLSPolicyMaps = tables
	return c
}

func send1(c *SMTP, rcpt, nexthop string) queue.Result {
	return c.Send(context.Background(), smtpEnv(rcpt), 10, opener(plainMsg), []int{0}, nexthop)[0]
}

// "example.com encrypt" forces TLS for example.com only.
func TestSMTPTLSPolicyMapsEncrypt(t *testing.T) {
	plain := startFakeMX(t, &fakeMX{}) // no STARTTLS
	routes := map[string]string{"127.0.0.7:25": plain.addr(), "127.0.0.2:25": plain.addr()}
	c := policyClient(t, routes, TLSPolicy{Level: "may"}, policyMap{"example.com": "encrypt"})
	if r := send1(c, "a@example.com", "example.com"); r.Status != queue.StatusDeferred || r.DSN != "4.7.4" ||
		!strings.Contains(r.Reply, "TLS is required, but was not offered") {
		t.Errorf("example.com without STARTTLS: %+v", r)
	}
	if r := send1(c, "a@example.org", "example.org"); r.Status != queue.StatusSent {
		t.Errorf("example.org (main.cf's may): %+v", r)
	}
	if plain.sawMail() && len(plain.messages()) != 1 {
		t.Errorf("messages %d, want only example.org's", len(plain.messages()))
	}

	// With STARTTLS offered and main.cf saying none, example.com still
	// goes over TLS and example.org does not.
	_, srvTLS := testCA(t, "mx.example.com")
	tlsMX := startFakeMX(t, &fakeMX{tls: srvTLS})
	routes = map[string]string{"127.0.0.7:25": tlsMX.addr(), "127.0.0.2:25": tlsMX.addr()}
	c = policyClient(t, routes, TLSPolicy{Level: "none"}, policyMap{"example.com": "encrypt"})
	for _, d := range []string{"example.com", "example.org"} {
		if r := send1(c, "a@"+d, d); r.Status != queue.StatusSent {
			t.Fatalf("%s: %+v", d, r)
		}
	}
	tlsMX.mu.Lock()
	used := append([]bool(nil), tlsMX.tlsUsed...)
	tlsMX.mu.Unlock()
	if len(used) != 2 || !used[0] || used[1] {
		t.Errorf("over TLS: %v, want [true false]", used)
	}
}

// "[relay.example]:587 verify match=…" is honoured, and the lookup key
// keeps the brackets and the port.
func TestSMTPTLSPolicyMapsRelayVerify(t *testing.T) {
	caPEM, srvTLS := testCA(t, "relay.example", "smtp.relay.example")
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	f := startFakeMX(t, &fakeMX{tls: srvTLS})
	routes := map[string]string{"127.0.0.4:587": f.addr(), "127.0.0.4:25": f.addr()}
	tests := []struct {
		name    string
		table   policyMap
		base    TLSPolicy
		nexthop string
		status  queue.Status
		dsn     string
	}{
		{"verify match=smtp.relay.example", policyMap{"[relay.example]:587": "verify match=smtp.relay.example"},
			TLSPolicy{Level: "none", CAFile: caFile}, "[relay.example]:587", queue.StatusSent, "2.0.0"},
		{"verify with a name the certificate lacks", policyMap{"[relay.example]:587": "verify match=other.example"},
			TLSPolicy{Level: "none", CAFile: caFile}, "[relay.example]:587", queue.StatusDeferred, "4.7.5"},
		{"key with port does not match the default port", policyMap{"[relay.example]:587": "verify match=other.example"},
			TLSPolicy{Level: "none", CAFile: caFile}, "[relay.example]", queue.StatusSent, "2.0.0"},
		{"tafile replaces the CAs", policyMap{"[relay.example]:587": "verify match=relay.example tafile=" + caFile},
			TLSPolicy{Level: "none"}, "[relay.example]:587", queue.StatusSent, "2.0.0"},
		{"verify without the CA", policyMap{"[relay.example]:587": "verify match=relay.example"},
			TLSPolicy{Level: "none", CAFile: filepath.Join(dir, "missing.pem")}, "[relay.example]:587", queue.StatusDeferred, "4.7.5"},
		{"secure, nexthop match", policyMap{"[relay.example]:587": "secure match=nexthop"},
			TLSPolicy{Level: "none", CAFile: caFile}, "[relay.example]:587", queue.StatusSent, "2.0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := policyClient(t, routes, tc.base, tc.table)
			if r := send1(c, "a@example.net", tc.nexthop); r.Status != tc.status || r.DSN != tc.dsn {
				t.Errorf("%+v, want %v %s", r, tc.status, tc.dsn)
			}
		})
	}
}

func TestSMTPTLSPolicyMapsLookup(t *testing.T) {
	plain := startFakeMX(t, &fakeMX{})
	routes := map[string]string{"127.0.0.7:25": plain.addr(), "127.0.0.2:25": plain.addr()}
	tests := []struct {
		name    string
		tables  []PolicyTable
		nexthop string
		status  queue.Status
		reply   string
	}{
		{"parent domain .example.com", []PolicyTable{policyMap{".example.com": "encrypt"}}, "mail.sub.example.com", queue.StatusDeferred, "TLS is required"},
		{"parent does not cover the domain itself", []PolicyTable{policyMap{".example.com": "encrypt"}}, "example.com", queue.StatusSent, ""},
		{"exact before parent", []PolicyTable{policyMap{".example.com": "encrypt", "mail.sub.example.com": "none"}}, "mail.sub.example.com", queue.StatusSent, ""},
		{"nearest parent first", []PolicyTable{policyMap{".example.com": "encrypt", ".sub.example.com": "none"}}, "mail.sub.example.com", queue.StatusSent, ""},
		{"no parent search for [host]", []PolicyTable{policyMap{".example.com": "encrypt"}}, "[mail.sub.example.com]", queue.StatusSent, ""},
		{"case-insensitive key", []PolicyTable{policyMap{"example.com": "encrypt"}}, "Example.COM", queue.StatusDeferred, "TLS is required"},
		{"first table wins", []PolicyTable{policyMap{}, policyMap{"example.com": "encrypt"}, policyMap{"example.com": "none"}}, "example.com", queue.StatusDeferred, "TLS is required"},
		{"dane is may", []PolicyTable{policyMap{"example.com": "dane"}}, "example.com", queue.StatusSent, ""},
		{"dane-only defers", []PolicyTable{policyMap{"example.com": "dane-only"}}, "example.com", queue.StatusDeferred, "TLS policy lookup error"},
		{"bad value defers", []PolicyTable{policyMap{"example.com": "encrypt bogus=1"}}, "example.com", queue.StatusDeferred, "TLS policy lookup error"},
		{"table failure defers", []PolicyTable{failTable{}}, "example.com", queue.StatusDeferred, "TLS policy lookup error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := policyClient(t, routes, TLSPolicy{Level: "may"}, tc.tables...)
			r := send1(c, "a@example.com", tc.nexthop)
			if r.Status != tc.status || !strings.Contains(r.Reply, tc.reply) {
				t.Errorf("%+v, want %v with %q", r, tc.status, tc.reply)
			}
			if tc.status == queue.StatusDeferred && strings.Contains(tc.reply, "lookup") && r.DSN != "4.7.5" {
				t.Errorf("DSN %s, want 4.7.5", r.DSN)
			}
		})
	}
}
