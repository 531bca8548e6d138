package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/config/postfixconf"
	"postcote/internal/dnsx"
	"postcote/internal/maillog"
	"postcote/internal/transport"
)

func TestSMTPAgentFromMain(t *testing.T) {
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	// Any valid certificate will do as a CA bundle for loading.
	if err := os.WriteFile(ca, selfSignedPEM(t), 0o644); err != nil {
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
		{"unsupported level", "smtp_tls_security_level = fingerprint\n", nil, "not supported"},
		{"negative limit", "smtp_mx_address_limit = -1\n", nil, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := postfixconf.ParseMainBytes("main.cf", []byte(tc.maincf))
			if err != nil {
				t.Fatal(err)
			}
			agent, err := smtpAgent(m, maillog.New(io.Discard, "test", false), "smtp")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := agent.(*transport.SMTP)
			if _, static := a.Resolver.(*dnsx.StaticResolver); a.Name != "smtp" || a.Resolver == nil || static {
				t.Errorf("name %q resolver %v (the test DNS must be off in normal builds)", a.Name, a.Resolver)
			}
			tc.check(t, a)
		})
	}
}

// selfSignedPEM makes a certificate to load as a CA bundle.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "postcote test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
