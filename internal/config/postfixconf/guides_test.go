package postfixconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"postcote/internal/config"
)

// loadGuide loads testdata/<dir> with the guide's root folder for files.
func loadGuide(t *testing.T, dir, root string) *Config {
	t.Helper()
	cfg, err := Load(filepath.Join("testdata", dir), WithHostname("host.example.net"), WithRoot(filepath.Join("testdata", root)))
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return cfg
}

func noErrors(t *testing.T, ds []config.Diagnostic) {
	t.Helper()
	for _, d := range ds {
		if d.Severity == config.Error {
			t.Errorf("unexpected error: %s", d)
		} else {
			t.Logf("%s", d)
		}
	}
}

func wantGet(t *testing.T, m *Main, name, want string) {
	t.Helper()
	if got := m.Get(name); got != want {
		t.Errorf("Get(%s) = %q, want %q", name, got, want)
	}
}

func TestGuides(t *testing.T) {
	tests := []struct {
		dir, root string
		hasMaster bool
		check     func(t *testing.T, c *Config)
	}{
		{"g000", "g000/root", true, func(t *testing.T, c *Config) {
			m := c.Main
			wantGet(t, m, "virtual_transport", "lmtp:inet:dovecot.company.com")
			wantGet(t, m, "virtual_mailbox_domains", "company.com")
			wantGet(t, m, "smtpd_banner", "mail.company.com ESMTP postcote (Debian/GNU)")
			wantGet(t, m, "smtp_tls_session_cache_database", "btree:/var/lib/postfix/smtp_scache")
			wantGet(t, m, "smtpd_sasl_path", "inet:dovecot.company.com:12345")
			wantGet(t, m, "relay_domains", "") // compatibility_level = 3.6
			if got := m.Tables("virtual_alias_maps"); len(got) != 1 || got[0].Type != "mysql" || got[0].Name != "/etc/postfix/sql/virtual_alias_maps" {
				t.Errorf("Tables(virtual_alias_maps) = %v", got)
			}
			if got := m.List("mynetworks"); len(got) != 5 || got[4] != "[2001:db8:1001::]/48" {
				t.Errorf("List(mynetworks) = %q", got)
			}
			if n, err := m.Size("mailbox_size_limit"); err != nil || n != 0 {
				t.Errorf("Size(mailbox_size_limit) = %d, %v", n, err)
			}
			sub := c.Master.Lookup("submission", TypeInet)
			if sub == nil || sub.Port != 587 || sub.Host != "" {
				t.Fatalf("submission service = %+v", sub)
			}
			if len(sub.Overrides) != 2 {
				t.Errorf("submission overrides = %+v, want 2 (commented ones skipped)", sub.Overrides)
			}
			v := c.Service(sub)
			wantGet(t, v, "smtpd_tls_auth_only", "yes")
			wantGet(t, v, "smtpd_tls_security_level", "encrypt")
			wantGet(t, v, "virtual_transport", "lmtp:inet:dovecot.company.com")
			subs := c.Master.Lookup("submissions", TypeInet)
			if subs == nil || subs.Port != 465 {
				t.Fatalf("submissions service = %+v", subs)
			}
			if b, err := c.Service(subs).Bool("smtpd_tls_wrappermode"); err != nil || !b {
				t.Errorf("submissions wrappermode = %v, %v", b, err)
			}
			if b, _ := m.Bool("smtpd_tls_wrappermode"); b {
				t.Error("main.cf view sees the submissions override")
			}
		}},
		{"g001", "g001/root", true, func(t *testing.T, c *Config) {
			m := c.Main
			wantGet(t, m, "virtual_mailbox_domains", "mx0.example.com")
			wantGet(t, m, "smtp_tls_loglevel", "1")
			wantGet(t, m, "smtp_tls_mandatory_protocols", "!SSLv2, !SSLv3")
			wantGet(t, m, "smtp_tls_exclude_ciphers", "")
			wantGet(t, m, "virtual_gid_maps", "ldap:/etc/postfix/ldap/virtual_uid_maps")
			wantGet(t, m, "smtpd_recipient_restrictions", "reject_sender_login_mismatch")
			sub := c.Master.Lookup("submission", TypeInet)
			if sub == nil {
				t.Fatal("no submission service")
			}
			if v, ok := sub.Override("tls_preempt_cipherlist"); !ok || v != "yes" {
				t.Errorf("override tls_preempt_cipherlist = %q, %v", v, ok)
			}
			wantGet(t, c.Service(sub), "syslog_name", "postfix/submission")
		}},
		{"g002", "g002/root", false, func(t *testing.T, c *Config) {
			m := c.Main
			wantGet(t, m, "myorigin", "example.com")
			wantGet(t, m, "smtpd_relay_restrictions", "permit_mynetworks permit_sasl_authenticated defer_unauth_destination")
			if got := m.List("inet_interfaces"); len(got) != 4 || got[3] != "[2001:db8:1::1]" {
				t.Errorf("inet_interfaces = %q", got)
			}
			if d, err := m.Duration("anvil_rate_time_unit"); err != nil || d.Seconds() != 60 {
				t.Errorf("anvil_rate_time_unit = %v, %v", d, err)
			}
			if n, err := m.Int("smtpd_client_message_rate_limit"); err != nil || n != 100 {
				t.Errorf("smtpd_client_message_rate_limit = %d, %v", n, err)
			}
			if n, err := m.Size("queue_minfree"); err != nil || n != 20971520 {
				t.Errorf("queue_minfree = %d, %v", n, err)
			}
			wantGet(t, m, "smtpd_client_event_limit_exceptions", "127.0.0.1/32, [::1]/128, 192.0.2.1/24, [2001:db8:1::1]/64")
			wantGet(t, m, "virtual_transport", "lmtp:unix:/var/run/dovecot/lmtp")
			if c.HasMaster || c.Master != nil {
				t.Error("master.cf reported present")
			}
		}},
		{"g002/nullclient", "g002/root", false, func(t *testing.T, c *Config) {
			m := c.Main
			wantGet(t, m, "mydestination", "")
			wantGet(t, m, "relayhost", "[relay.example.com]")
			wantGet(t, m, "local_transport", "error: local delivery disabled")
			wantGet(t, m, "inet_interfaces", "loopback-only")
			wantGet(t, m, "relay_domains", "") // $mydestination, empty
		}},
		{"g002/ldap", "g002/root", false, func(t *testing.T, c *Config) {
			wantGet(t, c.Main, "virtual_alias_maps", "ldap:/etc/postfix/ldap-aliases.cf")
		}},
		{"g002/remote-lmtp", "g002/root", false, func(t *testing.T, c *Config) {
			wantGet(t, c.Main, "mailbox_transport", "lmtp:inet:dovecot.example.com:24")
			wantGet(t, c.Main, "smtpd_sasl_path", "inet:192.0.2.10:12345")
		}},
		{"g003", "g003/root", false, func(t *testing.T, c *Config) {
			m := c.Main
			wantGet(t, m, "myorigin", "/etc/mailname")
			if o, err := m.FileValue("myorigin"); err != nil || o != "mail.example.jp" {
				t.Errorf("FileValue(myorigin) = %q, %v", o, err)
			}
			wantGet(t, m, "virtual_transport", "lmtp:unix:private/dovecot-lmtp")
			wantGet(t, m, "relayhost", "")
			wantGet(t, m, "recipient_delimiter", "+")
			if got := m.List("virtual_mailbox_domains"); strings.Join(got, "|") != "mail.example.jp|example.jp" {
				t.Errorf("virtual_mailbox_domains = %q", got)
			}
		}},
		{"g004", "g004/root", true, func(t *testing.T, c *Config) {
			m := c.Main
			wantGet(t, m, "mydomain", "example.com")
			wantGet(t, m, "mydestination", "examplehost.example.com, localhost.example.com, localhost")
			// No compatibility_level: Postfix's backwards-compatible default.
			wantGet(t, m, "relay_domains", "examplehost.example.com, localhost.example.com, localhost")
			wantGet(t, m, "default_transport", "error: Local delivery only!")
			wantGet(t, m, "smtpd_tls_dh1024_param_file", filepath.Join(mustAbs(t, "testdata/g004"), "ssl/dh_2048.pem"))
			if len(c.Master.Services) != 25 {
				t.Errorf("master.cf services = %d, want 25", len(c.Master.Services))
			}
			md := c.Master.Lookup("maildrop", TypeUnix)
			if md == nil || md.Command != "pipe" || strings.Join(md.Args, " ") != "flags=DRhu user=vmail argv=/usr/bin/maildrop -d ${recipient}" {
				t.Errorf("maildrop = %+v", md)
			}
			if pk := c.Master.Lookup("pickup", TypeFifo); pk == nil || pk.Wakeup != 60 || pk.MaxProc != 1 {
				t.Errorf("pickup = %+v", pk)
			}
			if tl := c.Master.Lookup("tlsmgr", TypeUnix); tl == nil || tl.Wakeup != 1000 || !tl.WakeupIfUsed {
				t.Errorf("tlsmgr = %+v", tl)
			}
		}},
		{"g004/relay", "g004/root", false, func(t *testing.T, c *Config) {
			wantGet(t, c.Main, "canonical_maps", "regexp:/etc/postfix/canonical.regexp")
			if got := c.Main.List("canonical_classes"); len(got) != 3 {
				t.Errorf("canonical_classes = %q", got)
			}
			wantGet(t, c.Main, "home_mailbox", "Maildir/")
		}},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.dir, "/", "_"), func(t *testing.T) {
			c := loadGuide(t, tt.dir, tt.root)
			if !c.HasMain {
				t.Fatal("main.cf not found")
			}
			if c.HasMaster != tt.hasMaster {
				t.Errorf("HasMaster = %v, want %v", c.HasMaster, tt.hasMaster)
			}
			noErrors(t, c.Check())
			tt.check(t, c)
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	a, err := filepath.Abs(p)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestStockDebianMaster(t *testing.T) {
	for _, f := range []string{"testdata/debian12-master.cf", "testdata/g004/master.cf"} {
		ms, err := ParseMaster(f)
		if err != nil {
			t.Fatalf("ParseMaster(%s): %v", f, err)
		}
		c := &Config{Main: NewMain(WithHostname("h.example.org")), Master: ms, HasMaster: true}
		noErrors(t, c.Check())
	}
	// Guide 004's relay-mode submission entry turns SASL on without
	// smtpd_sasl_type, i.e. Cyrus: postcote cannot do that, and says so
	// at the service's line. The Dovecot entry is fine.
	g4 := loadGuide(t, "g004", "g004/root")
	stock, err := os.ReadFile("testdata/g004/master.cf")
	if err != nil {
		t.Fatal(err)
	}
	subText, err := os.ReadFile("testdata/g004/submission-master.cf")
	if err != nil {
		t.Fatal(err)
	}
	g4.Master, err = ParseMasterBytes("master.cf", append(stock, subText...))
	if err != nil {
		t.Fatal(err)
	}
	var errs []config.Diagnostic
	for _, d := range g4.Check() {
		if d.Severity == config.Error {
			errs = append(errs, d)
		}
	}
	if len(errs) != 1 || errs[0].Pos.Line != 52 || !strings.Contains(errs[0].Message, "smtpd_sasl_type = dovecot") {
		t.Errorf("guide 004 submission errors = %v, want one about smtpd_sasl_type at line 52", errs)
	}
	ms, err := ParseMaster("testdata/debian12-master.cf")
	if err != nil {
		t.Fatal(err)
	}
	relay := ms.Lookup("relay", TypeUnix)
	if relay == nil || len(relay.Overrides) != 1 {
		t.Fatalf("relay = %+v", relay)
	}
	v := NewMain(WithHostname("h.example.org")).ForService(relay)
	wantGet(t, v, "syslog_name", "postfix/relay")
	pl := ms.Lookup("postlog", TypeUnixDgram)
	if pl == nil || pl.Private || pl.Chroot || pl.MaxProc != 1 || pl.Command != "postlogd" {
		t.Errorf("postlog = %+v", pl)
	}
	uucp := ms.Lookup("uucp", TypeUnix)
	if uucp == nil || strings.Join(uucp.Args, " ") != "flags=Fqhu user=uucp argv=uux -r -n -z -a$sender - $nexthop!rmail ($recipient)" {
		t.Errorf("uucp = %+v", uucp)
	}
	sub, err := ParseMaster("testdata/g004/submission-master.cf")
	if err != nil {
		t.Fatal(err)
	}
	lo := sub.Lookup("127.0.0.1:submission", TypeInet)
	if lo == nil || lo.Host != "127.0.0.1" || lo.Port != 587 || len(lo.Overrides) != 8 {
		t.Fatalf("127.0.0.1:submission = %+v", lo)
	}
	if v, _ := lo.Override("smtpd_recipient_restrictions"); v != "permit_mynetworks,permit_sasl_authenticated,reject" {
		t.Errorf("override = %q", v)
	}
	s0 := sub.Lookup("submission", TypeInet)
	if v, ok := s0.Override("smtpd_recipient_restrictions"); !ok || v != "" {
		t.Errorf("empty override = %q, %v", v, ok)
	}
}

func BenchmarkLoadAndCheckGuide000(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c, err := Load("testdata/g000", WithHostname("h.example.net"), WithRoot("testdata/g000/root"))
		if err != nil {
			b.Fatal(err)
		}
		c.Check()
	}
}
