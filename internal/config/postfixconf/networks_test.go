package postfixconf

import (
	"net"
	"strings"
	"testing"
)

func mustCIDR(t *testing.T, s string) net.Addr {
	t.Helper()
	ip, n, err := net.ParseCIDR(s)
	if err != nil {
		t.Fatal(err)
	}
	n.IP = ip
	return n
}

func TestDeriveMynetworks(t *testing.T) {
	addrs := []net.Addr{mustCIDR(t, "127.0.0.1/8"), mustCIDR(t, "192.0.2.10/24"), mustCIDR(t, "172.16.5.4/20"), mustCIDR(t, "2001:db8::5/64")}
	tests := []struct{ style, want string }{
		{"host", "127.0.0.0/8 [::1]/128 127.0.0.1/32 192.0.2.10/32 172.16.5.4/32 [2001:db8::5]/128"},
		{"subnet", "127.0.0.0/8 [::1]/128 192.0.2.0/24 172.16.0.0/20 [2001:db8::]/64"},
		{"class", "127.0.0.0/8 [::1]/128 192.0.2.0/24 172.16.0.0/16 [2001:db8::]/64"},
	}
	for _, tt := range tests {
		if got := strings.Join(DeriveMynetworks(tt.style, addrs), " "); got != tt.want {
			t.Errorf("%s: %s\nwant %s", tt.style, got, tt.want)
		}
	}
	m := parse(t, "compatibility_level = 2\n")
	if got, err := m.Mynetworks(addrs); err != nil || len(got) != 6 {
		t.Errorf("default style host: %q, %v", got, err)
	}
	m = parse(t, "mynetworks = 10.0.0.0/8, [::1]/128\n")
	if got, err := m.Mynetworks(addrs); err != nil || strings.Join(got, " ") != "10.0.0.0/8 [::1]/128" {
		t.Errorf("explicit: %q, %v", got, err)
	}
}

func TestTLSLevels(t *testing.T) {
	tests := []struct{ text, smtpd, smtp string }{
		{"", "none", "none"},
		{"smtpd_use_tls = yes\nsmtp_use_tls = yes\n", "may", "may"},
		{"smtpd_enforce_tls = yes\nsmtp_enforce_tls = yes\n", "encrypt", "encrypt"},
		{"smtpd_use_tls = yes\nsmtpd_tls_security_level = encrypt\nsmtp_tls_security_level = verify\n", "encrypt", "verify"},
	}
	for _, tt := range tests {
		m := parse(t, tt.text)
		if got := m.SMTPDTLSLevel(); got != tt.smtpd {
			t.Errorf("%q: SMTPDTLSLevel = %s", tt.text, got)
		}
		if got := m.SMTPTLSLevel(); got != tt.smtp {
			t.Errorf("%q: SMTPTLSLevel = %s", tt.text, got)
		}
	}
}

func TestInetInterfaces(t *testing.T) {
	m := parse(t, "inet_interfaces = 127.0.0.1/32, [::1]/128, 192.0.2.1, [2001:db8:1::1], mail.example.com\n")
	got, err := m.InetInterfaces()
	if err != nil || strings.Join(got, " ") != "127.0.0.1 ::1 192.0.2.1 2001:db8:1::1 mail.example.com" {
		t.Errorf("InetInterfaces = %q, %v", got, err)
	}
	warned := 0
	for _, d := range m.Check() {
		if strings.Contains(d.Message, "Postfix rejects") {
			warned++
		}
	}
	if warned != 2 {
		t.Errorf("warnings about prefixes = %d, want 2: %v", warned, m.Check())
	}
	bad := parse(t, "inet_interfaces = 10.0.0.0/8\n")
	if _, err := bad.InetInterfaces(); err == nil || !strings.Contains(err.Error(), "main.cf:1") {
		t.Errorf("network prefix: err = %v", err)
	}
	if ds := bad.Check(); len(ds) == 0 || ds[0].Severity.String() != "error" {
		t.Errorf("network prefix: Check = %v", ds)
	}
	def := parse(t, "")
	if got, _ := def.InetInterfaces(); strings.Join(got, " ") != "all" {
		t.Errorf("default = %q", got)
	}
}
