package server

import (
	"crypto/tls"
	"net/netip"
	"path/filepath"
	"testing"

	"postcote/internal/config/postfixconf"
)

func TestParseNetwork(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"127.0.0.0/8", "127.0.0.0/8"},
		{"10.1.2.3", "10.1.2.3/32"},
		{"[::ffff:127.0.0.0]/104", "127.0.0.0/8"},
		{"[::1]/128", "::1/128"},
		{"[2001:db8:1001::]/48", "2001:db8:1001::/48"},
		{"192.168.1.77/24", "192.168.1.0/24"},
	} {
		got, err := parseNetwork(tc.in)
		if err != nil || got != netip.MustParsePrefix(tc.want) {
			t.Errorf("parseNetwork(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "nonsense", "10.0.0.0/33", "[::1]/129", "1.2.3.4/x"} {
		if _, err := parseNetwork(bad); err == nil {
			t.Errorf("parseNetwork(%q) accepted", bad)
		}
	}
}

func TestMinTLSVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
	}{
		{"!SSLv2, !SSLv3", tls.VersionTLS10},
		{"!SSLv2,!SSLv3,!TLSv1,!TLSv1.1", tls.VersionTLS12},
		{">=TLSv1.2", tls.VersionTLS12},
		{"TLSv1.2 TLSv1.3", tls.VersionTLS12},
		{"TLSv1.3", tls.VersionTLS13},
	} {
		got, err := minTLSVersion(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("minTLSVersion(%q) = %x, %v; want %x", tc.in, got, err, tc.want)
		}
	}
	if _, err := minTLSVersion("TLSv9"); err == nil {
		t.Error("minTLSVersion accepted TLSv9")
	}
}

func TestInetEndpointsAndServiceNames(t *testing.T) {
	m, err := postfixconf.ParseMainBytes("main.cf", []byte("inet_interfaces = loopback-only\ninet_protocols = ipv4\n"))
	if err != nil {
		t.Fatal(err)
	}
	master, err := postfixconf.ParseMasterBytes("master.cf", []byte(
		"smtp inet n - y - - smtpd\n"+
			"127.0.0.1:2587 inet n - n - - smtpd\n  -o syslog_name=postfix/submission\n"+
			"submissions inet n - y - - smtpd\n  -o smtpd_tls_wrappermode=yes\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		addr, name string
	}{{"127.0.0.1:25", "smtp"}, {"127.0.0.1:2587", "submission"}, {"127.0.0.1:465", "submissions"}}
	for i, svc := range master.Services {
		view := m.ForService(svc)
		eps, err := inetEndpoints(view, svc)
		if err != nil {
			t.Fatal(err)
		}
		if len(eps) != 1 || eps[0].Address != want[i].addr {
			t.Errorf("service %s listens on %v, want %s", svc.Name, eps, want[i].addr)
		}
		if got := serviceName(view, svc); got != want[i].name {
			t.Errorf("service %s is named %q in logs, want %q", svc.Name, got, want[i].name)
		}
	}
}

func TestListenAddresses(t *testing.T) {
	got := listenAddresses("127.0.0.1, 10.0.0.102")
	if len(got) != 2 || got[0].host != "127.0.0.1" || got[1].host != "10.0.0.102" {
		t.Errorf("listenAddresses = %v", got)
	}
	if got := listenAddresses("*"); len(got) != 1 || got[0].network != "tcp4" || got[0].host != "0.0.0.0" {
		t.Errorf(`listenAddresses("*") = %v`, got)
	}
}

func TestUnixListenerMakesFolderAndKeepsLiveSockets(t *testing.T) {
	dir := t.TempDir()
	e := Endpoint{Network: "unix", Address: filepath.Join(dir, "private", "auth"), Mode: 0o600}
	ls := NewListeners()
	defer ls.CloseAll()
	if _, err := ls.Listen(e); err != nil {
		t.Fatalf("unix listener in a missing folder: %v", err)
	}
	// A second process binding the same live socket must not steal it.
	if _, err := listen(e); err == nil {
		t.Error("took over a socket another listener serves")
	}
}

// The smtpd switches main.cf turns off reach smtpd.Options.
func TestSMTPDOptionSwitches(t *testing.T) {
	for _, tc := range []struct {
		main               string
		noDelay, keepUnlst bool
	}{
		{"", false, false},
		{"smtpd_delay_reject = no\nsmtpd_reject_unlisted_recipient = no\n", true, true},
	} {
		m, err := postfixconf.ParseMainBytes("main.cf", []byte(tc.main))
		if err != nil {
			t.Fatal(err)
		}
		o, err := smtpdOptions(m, &postfixconf.Service{Name: "smtp", Type: "inet", MaxProc: 100})
		if err != nil {
			t.Fatal(err)
		}
		if o.NoDelayReject != tc.noDelay || o.KeepUnlistedRecipients != tc.keepUnlst {
			t.Errorf("%q: NoDelayReject %v KeepUnlistedRecipients %v", tc.main, o.NoDelayReject, o.KeepUnlistedRecipients)
		}
	}
}
