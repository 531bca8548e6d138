package server

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/config/postfixconf"
	"postcote/internal/dnsx"
	"postcote/internal/lookup"
	"postcote/internal/maillog"
	"postcote/internal/rewrite"
	"postcote/internal/testenv"
	"postcote/internal/transport"
)

func TestSMTPAgentFromMain(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	// Any valid certificate will do as a CA bundle for loading.
	if err := os.WriteFile(ca, testenv.NewTestCA(t, "postcote test CA").CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	policyFile := filepath.Join(dir, "tls_policy")
	if err := os.WriteFile(policyFile, []byte("tls.example.net encrypt\n[relay.example]:587 verify match=relay.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		maincf  string
		check   func(t *testing.T, a *transport.SMTP)
		wantErr string
	}{
		{"defaults", "myhostname = mail.example.com\n", func(t *testing.T, a *transport.SMTP) {
			if a.HeloName != "mail.example.com" || a.Port != "25" || a.ConnectTimeout != 30*time.Second ||
				a.HeloTimeout != 300*time.Second || a.DataInitTimeout != 120*time.Second || a.DataXferTimeout != 180*time.Second ||
				a.DataDoneTimeout != 600*time.Second || a.MXAddressLimit != 5 || a.MXSessionLimit != 2 ||
				a.DisableMIMEConversion || a.TLS.Level != "none" {
				t.Errorf("%+v", a)
			}
			// Postfix's connection cache defaults.
			if !a.CacheOnDemand || a.CacheDestinations != nil || a.CacheTimeLimit != 2*time.Second || a.ReuseCountLimit != 0 ||
				a.ReuseTimeLimit != 300*time.Second || a.RsetTimeout != 20*time.Second || a.TLS.ConnectionReuse || len(a.TLSPolicyMaps) != 0 {
				t.Errorf("cache settings %+v", a)
			}
			if strings.Join(a.TLS.SecureCertMatch, ",") != "nexthop,dot-nexthop" || strings.Join(a.TLS.VerifyCertMatch, ",") != "hostname" {
				t.Errorf("cert match %q %q", a.TLS.SecureCertMatch, a.TLS.VerifyCertMatch)
			}
		}, ""},
		{"guide 004 style", "myhostname = h.example\nsmtp_helo_name = out.example\nsmtp_tls_security_level = verify\nsmtp_tls_CAfile = " + ca +
			"\nsmtp_tls_mandatory_protocols = !SSLv2, !SSLv3, !TLSv1, !TLSv1.1\nsmtp_connect_timeout = 5s\nsmtp_mx_session_limit = 3\ndisable_mime_output_conversion = yes\nsmtp_tls_loglevel = 1\n",
			func(t *testing.T, a *transport.SMTP) {
				if a.HeloName != "out.example" || a.TLS.Level != "verify" || a.TLS.CAFile != ca || a.ConnectTimeout != 5*time.Second ||
					a.MXSessionLimit != 3 || !a.DisableMIMEConversion || a.TLS.LogLevel != 1 || len(a.TLS.MandatoryProtocols) != 4 {
					t.Errorf("%+v", a)
				}
			}, ""},
		{"obsolete smtp_enforce_tls", "smtp_enforce_tls = yes\n", func(t *testing.T, a *transport.SMTP) {
			if a.TLS.Level != "encrypt" {
				t.Errorf("level %q", a.TLS.Level)
			}
		}, ""},
		{"missing CA file", "smtp_tls_security_level = verify\nsmtp_tls_CAfile = " + filepath.Join(dir, "nope.pem") + "\n", func(t *testing.T, a *transport.SMTP) {
			if err := a.Check(); err == nil || !strings.Contains(err.Error(), "nope.pem") {
				t.Errorf("Check: %v", err)
			}
		}, ""},
		{"no protocol left", "smtp_tls_security_level = encrypt\nsmtp_tls_mandatory_protocols = !TLSv1, !TLSv1.1, !TLSv1.2, !TLSv1.3\n", func(t *testing.T, a *transport.SMTP) {
			if err := a.Check(); err == nil || !strings.Contains(err.Error(), "no protocol") {
				t.Errorf("Check: %v", err)
			}
		}, ""},
		{"connection cache settings", "smtp_connection_cache_on_demand = no\nsmtp_connection_cache_time_limit = 5s\nsmtp_connection_reuse_count_limit = 10\n" +
			"smtp_connection_reuse_time_limit = 60s\nsmtp_rset_timeout = 7s\nsmtp_tls_connection_reuse = yes\n" +
			"smtp_connection_cache_destinations = Example.com, [relay.example]:587, texthash:" + policyFile + "\n",
			func(t *testing.T, a *transport.SMTP) {
				if a.CacheOnDemand || a.CacheTimeLimit != 5*time.Second || a.ReuseCountLimit != 10 || a.ReuseTimeLimit != time.Minute ||
					a.RsetTimeout != 7*time.Second || !a.TLS.ConnectionReuse || a.CacheDestinations == nil {
					t.Fatalf("%+v", a)
				}
				for hop, want := range map[string]bool{"example.com": true, "[relay.example]:587": true, "[relay.example]": false,
					"other.example": false, "tls.example.net": true} {
					if got, err := a.CacheDestinations(context.Background(), hop); err != nil || got != want {
						t.Errorf("cache destination %s: %v, %v; want %v", hop, got, err, want)
					}
				}
			}, ""},
		{"smtp_tls_policy_maps", "smtp_tls_policy_maps = texthash:" + policyFile + "\n", func(t *testing.T, a *transport.SMTP) {
			if len(a.TLSPolicyMaps) != 1 {
				t.Fatalf("%d policy tables", len(a.TLSPolicyMaps))
			}
			v, err := a.TLSPolicyMaps[0].Lookup(context.Background(), "[relay.example]:587")
			if err != nil || strings.Join(v, " ") != "verify match=relay.example" {
				t.Errorf("lookup: %q, %v", v, err)
			}
		}, ""},
		{"missing policy table", "smtp_tls_policy_maps = texthash:" + filepath.Join(dir, "none") + "\n", nil, "smtp_tls_policy_maps"},
		{"zero cache time limit", "smtp_connection_cache_time_limit = 0\n", nil, "must be positive"},
		{"unsupported level", "smtp_tls_security_level = fingerprint\n", nil, "not supported"},
		{"negative limit", "smtp_mx_address_limit = -1\n", nil, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := postfixconf.ParseMainBytes("main.cf", []byte(tc.maincf))
			if err != nil {
				t.Fatal(err)
			}
			reg := lookup.NewRegistry(lookup.Options{})
			defer reg.Close()
			open := func(spec string) (rewrite.Table, error) { return reg.Open(spec) }
			a, err := smtpAgent(m, maillog.New(io.Discard, "test", false), "smtp", open)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			if _, static := a.Resolver.(*dnsx.StaticResolver); a.Name != "smtp" || a.Resolver == nil || static {
				t.Errorf("name %q resolver %v (the test DNS must be off in normal builds)", a.Name, a.Resolver)
			}
			tc.check(t, a)
		})
	}
}

// TestSMTPDResolver: in a normal build smtpd asks the system's DNS (with
// timeouts), never the test zone, whatever the environment says.
func TestSMTPDResolver(t *testing.T) {
	t.Setenv("POSTCOTE_TEST_DNS", filepath.Join(t.TempDir(), "zone"))
	r, err := smtpdResolver()
	if err != nil {
		t.Fatal(err)
	}
	if _, static := r.(*dnsx.StaticResolver); r == nil || static {
		t.Errorf("smtpd resolver %T, want the system's", r)
	}
}
