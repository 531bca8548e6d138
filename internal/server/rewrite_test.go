package server

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postcote/internal/config/postfixconf"
	"postcote/internal/lookup"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

func TestRewriteFrom(t *testing.T) {
	dir := t.TempDir()
	mailname := filepath.Join(dir, "mailname")
	if err := os.WriteFile(mailname, []byte("mail.example.jp\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := lookup.NewRegistry(lookup.Options{})
	defer reg.Close()
	open := func(spec string) (rewrite.Table, error) { return reg.Open(spec) }
	for _, tc := range []struct {
		name    string
		main    string
		open    rewrite.Opener
		errText string
		check   func(t *testing.T, r *mtaRewrite)
	}{
		// No local class at all (no mydestination, no listen address whose
		// literal would be local), so local_recipient_maps stays closed.
		{"defaults", "mydestination =\ninet_interfaces =\n", open, "", func(t *testing.T, r *mtaRewrite) {
			if r.rules.VirtualAlias != nil || r.rules.Canonical != nil || r.virtual != nil || r.recipients.LocalRecipientMaps != nil {
				t.Errorf("tables opened without settings: %+v", r.rules)
			}
			if !r.rules.PropagateCanonical || !r.rules.PropagateVirtual || r.rules.RecursionLimit != 1000 || r.rules.ExpansionLimit != 1000 {
				t.Errorf("defaults: %+v", r.rules)
			}
		}},
		{"myorigin file", "myorigin = " + mailname + "\nmydestination =\n", open, "", func(t *testing.T, r *mtaRewrite) {
			if r.rules.Myorigin != "mail.example.jp" {
				t.Errorf("myorigin %q", r.rules.Myorigin)
			}
		}},
		{"guide 004 canonical", "mydestination =\ncanonical_classes = envelope_sender, header_sender, header_recipient\ncanonical_maps = inline:{root@host.example.com=root+host@example.com}\n", open, "", func(t *testing.T, r *mtaRewrite) {
			got, err := r.rules.Canonicalize(context.Background(), rewrite.EnvelopeSender, "root@host.example.com")
			if err != nil || got != "root+host@example.com" {
				t.Errorf("Canonicalize = %q, %v", got, err)
			}
			if r.rules.CanonicalClasses[rewrite.EnvelopeRecipient] {
				t.Error("envelope_recipient enabled")
			}
		}},
		{"propagation off", "mydestination =\npropagate_unmatched_extensions = canonical\n", open, "", func(t *testing.T, r *mtaRewrite) {
			if !r.rules.PropagateCanonical || r.rules.PropagateVirtual {
				t.Errorf("propagation %v %v", r.rules.PropagateCanonical, r.rules.PropagateVirtual)
			}
		}},
		{"virtual mailbox maps", "mydestination =\nvirtual_mailbox_maps = inline:{a@x.example=x/a/}\nvirtual_uid_maps = static:5000\nvirtual_gid_maps = static:5000\nvirtual_mailbox_base = /srv/mail\n", open, "", func(t *testing.T, r *mtaRewrite) {
			if r.virtual == nil || r.virtual.MailboxBase != "/srv/mail" || r.virtual.MinimumUID != 100 {
				t.Fatalf("virtual agent %+v", r.virtual)
			}
			u, res := r.virtual.Lookup(context.Background(), "a@x.example")
			if res != nil || u.UID != 5000 || u.MailLocation != "maildir:/srv/mail/x/a" {
				t.Errorf("lookup %+v %+v", u, res)
			}
		}},
		{"bad class", "canonical_classes = envelope_sender, header_bogus\n", open, "unknown class \"header_bogus\"", nil},
		{"no table layer", "virtual_alias_maps = hash:/etc/postfix/virtual\n", nil, "table type not supported yet: hash", nil},
		{"missing table file", "virtual_alias_maps = hash:" + filepath.Join(dir, "nope") + "\n", open, "no such file or directory", nil},
		{"bad header rewrite clients", "local_header_rewrite_clients = reject_unknown_client_hostname\n", open, "not supported", nil},
		{"missing check_address_map table", "local_header_rewrite_clients = check_address_map hash:/nonexistent/x\n", open, "no such file", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := postfixconf.ParseMainBytes("main.cf", []byte(tc.main))
			if err != nil {
				t.Fatal(err)
			}
			// virtual_alias_domains defaults to $virtual_alias_maps, so
			// a bad alias table already fails the domain lists.
			var r *mtaRewrite
			domains, err := domainsFrom(m, tc.open)
			if err == nil {
				r, err = rewriteFrom(m, domains, nil, tc.open)
			}
			if tc.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errText) {
					t.Fatalf("err = %v, want %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

func TestDomainsFromTables(t *testing.T) {
	m, err := postfixconf.ParseMainBytes("main.cf", []byte("virtual_alias_domains = example.net, inline:{example.org=yes}\n"))
	if err != nil {
		t.Fatal(err)
	}
	reg := lookup.NewRegistry(lookup.Options{})
	defer reg.Close()
	d, err := domainsFrom(m, func(spec string) (rewrite.Table, error) { return reg.Open(spec) })
	if err != nil {
		t.Fatal(err)
	}
	for _, dom := range []string{"example.net", "example.org", "EXAMPLE.ORG."} {
		if c, err := d.ClassifyContext(context.Background(), dom); err != nil || c != rewrite.VirtualAlias {
			t.Errorf("%s: %v, %v", dom, c, err)
		}
	}
	if _, err := domainsFrom(m, nil); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Errorf("without a table layer: %v", err)
	}
}

// TestDomainsFromInterfaces: literals of inet_interfaces and
// proxy_interfaces addresses (of inet_protocols' families) are local,
// and resolve_numeric_domain makes user@1.2.3.4 one of them.
func TestDomainsFromInterfaces(t *testing.T) {
	for _, tc := range []struct {
		main  string
		local []string
		other []string
	}{
		{"inet_interfaces = 127.0.0.1\nproxy_interfaces = 192.0.2.7\ninet_protocols = ipv4\n",
			[]string{"[127.0.0.1]", "[192.0.2.7]"}, []string{"[127.0.0.2]", "[IPv6:::1]", "127.0.0.1"}},
		{"inet_interfaces = loopback-only\ninet_protocols = all\nresolve_numeric_domain = yes\n",
			[]string{"[127.0.0.1]", "[IPv6:::1]", "127.0.0.1"}, []string{"[192.0.2.7]", "192.0.2.7"}},
		{"inet_interfaces = loopback-only\ninet_protocols = ipv6\n",
			[]string{"[IPv6:::1]"}, []string{"[127.0.0.1]"}},
		// "all" is every interface address, the loopback's among them.
		{"inet_interfaces = all\ninet_protocols = ipv4\n", []string{"[127.0.0.1]"}, []string{"[192.0.2.255]"}},
	} {
		m, err := postfixconf.ParseMainBytes("main.cf", []byte(tc.main))
		if err != nil {
			t.Fatal(err)
		}
		d, err := domainsFrom(m, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.main, err)
		}
		for _, dom := range tc.local {
			if c := d.Classify(dom); c != rewrite.Local {
				t.Errorf("%q: %s is %v, want local", tc.main, dom, c)
			}
		}
		for _, dom := range tc.other {
			if c := d.Classify(dom); c != rewrite.Default {
				t.Errorf("%q: %s is %v, want default", tc.main, dom, c)
			}
		}
	}
	m, _ := postfixconf.ParseMainBytes("main.cf", []byte("resolve_numeric_domain = perhaps\n"))
	if _, err := domainsFrom(m, nil); err == nil {
		t.Error("resolve_numeric_domain = perhaps: no error")
	}
}

// TestHeaderRewriteClients: local_header_rewrite_clients as Postfix's
// smtpd_check_rewrite evaluates it; true is the local context.
func TestHeaderRewriteClients(t *testing.T) {
	nets := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	reg := lookup.NewRegistry(lookup.Options{})
	defer reg.Close()
	open := func(spec string) (rewrite.Table, error) {
		if spec == "fail:x" {
			return failTable{}, nil
		}
		return reg.Open(spec)
	}
	for _, tc := range []struct {
		setting string
		env     queue.Envelope
		want    bool
		errText string // from the setting ("" when it is valid)
		lookErr bool   // from the decision
		main    string // more of main.cf
	}{
		{setting: "-", main: "inet_interfaces = 192.0.2.5\n", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "192.0.2.5"}, want: true},
		{setting: "-", main: "inet_interfaces = 192.0.2.5\n", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "127.0.0.1"}},
		{setting: "-", main: "inet_interfaces = loopback-only\n", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "::1"}, want: true},
		{setting: "-", main: "inet_interfaces = 127.0.0.1\nproxy_interfaces = 198.51.100.7\n", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "198.51.100.7"}},
		{setting: "-", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "127.0.0.1"}, want: true}, // default permit_inet_interfaces
		{setting: "-", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "198.51.100.7"}},
		{setting: "-", env: queue.Envelope{Protocol: "local"}, want: true},
		{setting: "", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "127.0.0.1"}}, // empty: nobody
		{setting: "", env: queue.Envelope{Protocol: "local"}, want: true},              // sendmail always
		{setting: "PERMIT_MYNETWORKS", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "192.0.2.9"}, want: true},
		{setting: "permit_mynetworks", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "127.0.0.1"}},
		{setting: "permit_sasl_authenticated", env: queue.Envelope{Protocol: "ESMTPA", ClientAddr: "198.51.100.7", AuthUser: "u"}, want: true},
		{setting: "permit_sasl_authenticated", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "198.51.100.7"}},
		{setting: "static:all", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "198.51.100.7"}, want: true},
		{setting: "check_address_map inline:{198.51.100.7=ok}", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "198.51.100.7"}, want: true},
		{setting: "check_address_map inline:{198.51.100.7=ok}", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "198.51.100.8"}},
		{setting: "permit_mynetworks, inline:{2001:db8::1=ok}", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "2001:db8::1"}, want: true},
		{setting: "fail:x", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "198.51.100.7"}, lookErr: true},
		{setting: "permit_mynetworks, fail:x", env: queue.Envelope{Protocol: "ESMTP", ClientAddr: "192.0.2.1"}, want: true}, // first match wins
		{setting: "permit_tls_clientcerts", errText: "does not verify TLS client certificates"},
		{setting: "permit_tls_all_clientcerts", errText: "does not verify TLS client certificates"},
		{setting: "check_address_map", errText: "needs a table"},
		{setting: "reject", errText: `"reject" is not supported`},
		{setting: "permit_inet_interfaces, permit_auth_destination", errText: `"permit_auth_destination" is not supported`},
	} {
		main := tc.main
		if tc.setting != "-" {
			main += "local_header_rewrite_clients = " + tc.setting + "\n"
		}
		m, err := postfixconf.ParseMainBytes("main.cf", []byte(main))
		if err != nil {
			t.Fatal(err)
		}
		f, err := headerRewriteClients(m, nets, open)
		if tc.errText != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errText) || !strings.Contains(err.Error(), "local_header_rewrite_clients") {
				t.Errorf("%q: error %v, want one with %q", tc.setting, err, tc.errText)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.setting, err)
		}
		got, err := f(context.Background(), &tc.env)
		if (err != nil) != tc.lookErr || got != tc.want {
			t.Errorf("%q with %+v: %v, %v; want %v, error %v", tc.setting, tc.env, got, err, tc.want, tc.lookErr)
		}
	}
	// Without a table layer a table is an error naming the table type.
	m, err := postfixconf.ParseMainBytes("main.cf", []byte("local_header_rewrite_clients = static:all\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := headerRewriteClients(m, nets, nil); !errors.Is(err, rewrite.ErrTableType) {
		t.Errorf("static:all without tables: %v", err)
	}
}

// failTable is a table that cannot answer.
type failTable struct{}

func (failTable) Lookup(context.Context, string) ([]string, error) {
	return nil, errors.New("table unavailable")
}

// TestRemoteHeaderRewriteDomain: the setting reaches cleanup, and a
// value that is not a domain name is a configuration error.
func TestRemoteHeaderRewriteDomain(t *testing.T) {
	for _, tc := range []struct{ value, want, errText string }{
		{"", "", ""},
		{"example.com", "example.com", ""},
		{"Mail-1.Example.COM", "Mail-1.Example.COM", ""},
		{"exa mple.com", "", "is not a domain name"},
		{"user@example.com", "", "is not a domain name"},
		{"-bad.example", "", "is not a domain name"},
		{"a..b", "", "is not a domain name"},
	} {
		main := "mydestination =\nremote_header_rewrite_domain = " + tc.value + "\n"
		m, err := postfixconf.ParseMainBytes("main.cf", []byte(main))
		if err != nil {
			t.Fatal(err)
		}
		domains, err := domainsFrom(m, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rewriteFrom(m, domains, nil, nil)
		if tc.errText != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errText) {
				t.Errorf("%q: error %v, want %q", tc.value, err, tc.errText)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.value, err)
		}
		if c := r.cleanup(nil); c.RemoteHeaderDomain != tc.want || c.HeaderContext == nil {
			t.Errorf("%q: cleanup has %q, want %q", tc.value, c.RemoteHeaderDomain, tc.want)
		}
	}
}

// TestServiceCleanup: a master.cf -o local_header_rewrite_clients (or
// mynetworks) gives that smtpd service its own header context; other
// services share the main.cf one.
func TestServiceCleanup(t *testing.T) {
	m, err := postfixconf.ParseMainBytes("main.cf", []byte("mydestination =\nmynetworks = 192.0.2.0/24\nlocal_header_rewrite_clients = permit_mynetworks\nremote_header_rewrite_domain = example.org\n"))
	if err != nil {
		t.Fatal(err)
	}
	master, err := postfixconf.ParseMasterBytes("master.cf", []byte(
		"smtp inet n - n - - smtpd\n"+
			"submission inet n - n - - smtpd\n  -o local_header_rewrite_clients=permit_sasl_authenticated\n"+
			"alt inet n - n - - smtpd\n  -o mynetworks=198.51.100.0/24\n"+
			"bad inet n - n - - smtpd\n  -o local_header_rewrite_clients=permit_tls_clientcerts\n"))
	if err != nil {
		t.Fatal(err)
	}
	domains, err := domainsFrom(m, nil)
	if err != nil {
		t.Fatal(err)
	}
	nets := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
	r, err := rewriteFrom(m, domains, nets, nil)
	if err != nil {
		t.Fatal(err)
	}
	shared := r.cleanup(nil)
	stranger := &queue.Envelope{Protocol: "ESMTP", ClientAddr: "198.51.100.7"}
	authed := &queue.Envelope{Protocol: "ESMTPA", ClientAddr: "198.51.100.7", AuthUser: "u"}
	ours := &queue.Envelope{Protocol: "ESMTP", ClientAddr: "192.0.2.7"}
	want := map[string][3]bool{ // stranger, authed, ours
		"smtp":       {false, false, true},
		"submission": {false, true, false},
		"alt":        {true, true, false},
	}
	for _, svc := range master.Services {
		c, err := r.serviceCleanup(shared, m.ForService(svc))
		if svc.Name == "bad" {
			if err == nil || !strings.Contains(err.Error(), "permit_tls_clientcerts") {
				t.Errorf("bad: error %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", svc.Name, err)
		}
		if (c == shared) != (svc.Name == "smtp") || c.RemoteHeaderDomain != "example.org" || c.Rules != shared.Rules {
			t.Errorf("%s: cleanup %p (shared %p), remote domain %q", svc.Name, c, shared, c.RemoteHeaderDomain)
		}
		for i, env := range []*queue.Envelope{stranger, authed, ours} {
			got, err := c.HeaderContext(context.Background(), env)
			if err != nil || got != want[svc.Name][i] {
				t.Errorf("%s with %+v: local %v, %v; want %v", svc.Name, env, got, err, want[svc.Name][i])
			}
		}
	}
}
