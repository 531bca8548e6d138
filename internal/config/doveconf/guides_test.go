package doveconf

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"postcote/internal/config"
)

// loadGuide loads /etc/dovecot/<file> of a guide's tree under testdata.
func loadGuide(t *testing.T, guide, file string) *Config {
	t.Helper()
	c, err := Load(filepath.Join("/etc/dovecot", file), WithRoot(filepath.Join("testdata", guide)))
	if err != nil {
		t.Fatalf("Load(%s %s): %v", guide, file, err)
	}
	return c
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

func want(t *testing.T, s *Section, key, wantV string) {
	t.Helper()
	if s == nil {
		t.Fatalf("nil section looking for %s", key)
	}
	if got := s.GetDefault(key); got != wantV {
		t.Errorf("%s: %s = %q, want %q", s.Path(), key, got, wantV)
	}
}

func TestGuides(t *testing.T) {
	tests := []struct {
		guide, file string
		check       func(t *testing.T, c *Config)
	}{
		{"g000", "dovecot.conf", func(t *testing.T, c *Config) {
			want(t, c.Root, "mail_location", "maildir:/mailboxes/%u")
			want(t, c.Root, "protocols", "imap lmtp")
			want(t, c.Root, "disable_plaintext_auth", "no")
			want(t, c.Root, "auth_mechanisms", "plain login")
			if st, _ := c.Setting("ssl_cert"); st.File != "/cert/mail.crt" || !strings.Contains(st.Value, "BEGIN CERTIFICATE") {
				t.Errorf("ssl_cert = %+v", st)
			}
			lmtp := c.Section("service", "lmtp")
			want(t, lmtp.Section("inet_listener", "lmtp"), "address", "10.0.0.102")
			want(t, lmtp.Section("inet_listener", "lmtp"), "port", "24")
			auth := c.Section("service", "auth")
			ls := auth.SectionsOf("inet_listener")
			if len(ls) != 1 || ls[0].Name != "" {
				t.Fatalf("auth inet listeners = %+v", ls)
			}
			if n, err := ls[0].Int("port"); err != nil || n != 12345 {
				t.Errorf("auth port = %d, %v", n, err)
			}
			pdb := c.SectionsOf("passdb")
			if len(pdb) != 1 {
				t.Fatalf("passdbs = %d", len(pdb))
			}
			want(t, pdb[0], "driver", "ldap")
			want(t, pdb[0], "args", "/etc/dovecot/dovecot-ldap.conf.ext")
			if pdb[0].Pos.File != "/etc/dovecot/conf.d/auth-ldap.conf.ext" {
				t.Errorf("passdb pos = %v", pdb[0].Pos)
			}
			l, err := ParseLDAPFile("/etc/dovecot/dovecot-ldap.conf.ext", WithRoot("testdata/g000"))
			if err != nil {
				t.Fatal(err)
			}
			if !l.AuthBind || l.AuthBindUserDN != "uid=%n,ou=people,dc=company,dc=com" || l.URIs[0] != "ldap://int-srv.company.com" ||
				l.Scope != "subtree" || l.PassAttrs != "mail=user,userPassword=password" || l.DNPass != "Passw0rd" {
				t.Errorf("ldap conf = %+v", l)
			}
		}},
		{"g001", "dovecot.conf", func(t *testing.T, c *Config) {
			want(t, c.Root, "ssl", "required")
			want(t, c.Root, "verbose_ssl", "yes")
			want(t, c.Root, "mail_location", "maildir:~/mailbox")
			il := c.Section("service", "imap-login")
			want(t, il.Section("inet_listener", "imap"), "port", "0")
			imaps := il.Section("inet_listener", "imaps")
			if b, err := imaps.Bool("ssl"); err != nil || !b {
				t.Errorf("imaps ssl = %v, %v", b, err)
			}
			want(t, il, "service_count", "1")
			ul := c.Section("service", "auth").Section("unix_listener", "/var/spool/postfix/private/auth")
			if m, err := ul.Mode("mode"); err != nil || m != 0o660 {
				t.Errorf("auth socket mode = %o, %v", m, err)
			}
			want(t, ul, "user", "postfix")
			want(t, ul, "group", "postfix")
			// An unchanged listener keeps Dovecot's built-in default.
			want(t, c.Section("service", "pop3-login").Section("inet_listener", "pop3s"), "port", "995")
			want(t, c.Section("service", "pop3-login").Section("inet_listener", "pop3s"), "ssl", "yes")
			var buf bytes.Buffer
			if err := c.WriteNonDefault(&buf); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(buf.String(), "  inet_listener imap {\n    port = 0\n  }\n") || strings.Contains(buf.String(), "pop3-login") {
				t.Errorf("doveconf -n:\n%s", buf.String())
			}
			l, err := ParseLDAPFile("/etc/dovecot/dovecot-ldap.conf.ext", WithRoot("testdata/g001"))
			if err != nil {
				t.Fatal(err)
			}
			if !l.TLS || l.TLSRequireCert != "hard" || l.TLSCACertFile != "/etc/ldap/tls/CA.pem" || l.LDAPVersion != 3 || l.AuthBindUserDN != "uid=%u,ou=Mail,dc=example,dc=com" {
				t.Errorf("ldap conf = %+v", l)
			}
		}},
		{"g002", "dovecot.conf", func(t *testing.T, c *Config) {
			want(t, c.Root, "protocols", "imap lmtp sieve")
			want(t, c.Root, "mail_plugins", " notify replication")
			want(t, c.Root, "mail_location", "sdbox:/var/mail/%n/")
			want(t, c.Root, "doveadm_password", "replicationSecret")
			if n, err := c.Int("replication_max_conns"); err != nil || n != 20 {
				t.Errorf("replication_max_conns = %d, %v", n, err)
			}
			if n, err := c.Int("first_valid_uid"); err != nil || n != 1000 {
				t.Errorf("first_valid_uid = %d, %v", n, err)
			}
			want(t, c.Section("plugin", ""), "mail_replica", "tcp:server2.example.com:12345")
			ns := c.Section("namespace", "inbox")
			want(t, ns.Section("mailbox", "Sent"), "special_use", `\Sent`)
			want(t, ns.Section("mailbox", "Sent"), "auto", "subscribe")
			want(t, ns.Section("mailbox", "Important Emails"), "auto", "create")
			want(t, ns.Section("mailbox", "Important Emails"), "special_use", "")
			agg := c.Section("service", "aggregator")
			want(t, agg.Section("fifo_listener", "replication-notify-fifo"), "user", "vmail")
			lm := c.Section("service", "lmtp")
			want(t, lm.Section("unix_listener", "lmtp"), "mode", "0600")
			want(t, lm.Section("inet_listener", "lmtp"), "port", "24")
			udb := c.SectionsOf("userdb")
			if len(udb) != 1 {
				t.Fatalf("userdbs = %d", len(udb))
			}
			want(t, udb[0], "override_fields", "uid=vmail gid=vmail home=/var/mail/%n/")
			want(t, c.SectionsOf("passdb")[0], "driver", "pam")
			if st, _ := c.Setting("ssl_ca"); st.File != "/etc/pki/dovecot/certs/ca.crt" {
				t.Errorf("ssl_ca = %+v", st)
			}
		}},
		{"g002", "variants/ldap.conf", func(t *testing.T, c *Config) {
			want(t, c.SectionsOf("userdb")[0], "override_fields", "uid=vmail gid=vmail home=/var/mail/%n/")
			l, err := ParseLDAPFile("/etc/dovecot/dovecot-ldap.conf.ext", WithRoot("testdata/g002"))
			if err != nil {
				t.Fatal(err)
			}
			if l.Scope != "onelevel" || l.URIs[0] != "ldaps://LDAP-srv.example.com" || l.PassFilter != "(&(objectClass=posixAccount)(uid=%n))" {
				t.Errorf("ldap = %+v", l)
			}
		}},
		{"g002", "variants/sql.conf", func(t *testing.T, c *Config) {
			want(t, c.SectionsOf("passdb")[0], "driver", "sql")
			s, err := ParseSQLFile("/etc/dovecot/dovecot-sql.conf.ext", WithRoot("testdata/g002"))
			if err != nil {
				t.Fatal(err)
			}
			if s.Driver != "mysql" || s.DefaultPassScheme != "SHA512-CRYPT" ||
				s.Connect != "host=mariadb_srv.example.com dbname=dovecotDB user=dovecot password=dovecotPW ssl_ca=/etc/pki/tls/certs/ca.crt" ||
				s.PasswordQuery != "SELECT username AS user, password FROM users WHERE username='%u';" ||
				s.IterateQuery != "SELECT username FROM users;" {
				t.Errorf("sql = %+v", s)
			}
			if p := s.Pos("password_query"); p.Line != 10 {
				t.Errorf("password_query pos = %v", p)
			}
		}},
		{"g003", "dovecot.conf", func(t *testing.T, c *Config) {
			lm := c.Section("service", "lmtp").Section("unix_listener", "/var/spool/postfix/private/dovecot-lmtp")
			want(t, lm, "mode", "0600")
			want(t, lm, "user", "postfix")
			// The stock "unix_listener lmtp" of 10-master.conf was replaced.
			if c.Section("service", "lmtp").Section("unix_listener", "lmtp") != nil {
				t.Error("stock lmtp listener still present")
			}
			p := c.SectionsOf("passdb")[0]
			want(t, p, "args", "scheme=CRYPT username_format=%u /etc/dovecot/users")
			want(t, c.SectionsOf("userdb")[0], "default_fields", "uid=vmail gid=vmail home=/home/vmail/%d/%n mail=sdbox:~/dbox")
			for _, k := range []string{"auth_verbose", "auth_debug", "auth_debug_passwords", "mail_debug"} {
				if b, err := c.Bool(k); err != nil || !b {
					t.Errorf("%s = %v, %v", k, b, err)
				}
			}
			want(t, c.Root, "mail_location", "")
		}},
		{"g004", "dovecot.conf", func(t *testing.T, c *Config) {
			want(t, c.Root, "ssl", "required")
			want(t, c.Root, "mail_location", "maildir:~/Maildir")
			want(t, c.Section("namespace", "inbox"), "separator", "/")
			want(t, c.Section("namespace", "inbox"), "inbox", "yes")
			want(t, c.SectionsOf("passdb")[0], "driver", "pam")
			want(t, c.SectionsOf("userdb")[0], "driver", "passwd")
			want(t, c.Section("service", "auth").Section("unix_listener", "/var/spool/postfix/private/auth"), "mode", "0660")
			if got := c.Files; len(got) != 2 || got[1] != "/etc/dovecot/local.conf" {
				t.Errorf("files = %q", got)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.guide+"_"+strings.ReplaceAll(tt.file, "/", "_"), func(t *testing.T) {
			c := loadGuide(t, tt.guide, tt.file)
			noErrors(t, c.Check())
			tt.check(t, c)
			var buf bytes.Buffer
			if err := c.WriteNonDefault(&buf); err != nil {
				t.Fatal(err)
			}
			// doveconf -n output is itself a valid configuration (file
			// values read again from the same root).
			again, err := Parse("/etc/dovecot/n.conf", buf.Bytes(), WithRoot(filepath.Join("testdata", tt.guide)))
			if err != nil {
				t.Fatalf("reparse of doveconf -n output: %v\n%s", err, buf.String())
			}
			var buf2 bytes.Buffer
			if err := again.WriteNonDefault(&buf2); err != nil {
				t.Fatal(err)
			}
			first, second := buf.String(), buf2.String()
			first = first[strings.Index(first, "\n"):]
			second = second[strings.Index(second, "\n"):]
			if first != second {
				t.Errorf("doveconf -n not stable:\n%s\n---\n%s", first, second)
			}
		})
	}
}

// TestStockDebian loads a fresh Debian 12 dovecot-imapd and
// dovecot-lmtpd installation (its dovecot.conf, conf.d and the
// protocols.d files of the packages): no errors, Dovecot's defaults.
func TestStockDebian(t *testing.T) {
	c := loadGuide(t, "debian12", "dovecot.conf")
	noErrors(t, c.Check())
	if got := strings.Join(c.ProtocolList(), " "); got != "imap pop3 lmtp" {
		t.Errorf("protocols = %q", got)
	}
	want(t, c.Root, "mail_location", "mbox:~/mail:INBOX=/var/mail/%u")
	ns := c.Section("namespace", "inbox")
	want(t, ns, "inbox", "yes")
	want(t, ns.Section("mailbox", "Sent Messages"), "special_use", `\Sent`)
	if f := c.Section("protocol", "!indexer-worker"); f == nil || !f.IsFilter() {
		t.Errorf("protocol !indexer-worker filter = %+v", f)
	}
	il := c.Section("service", "imap-login")
	want(t, il.Section("inet_listener", "imaps"), "port", "993")
	if il.Section("inet_listener", "imaps").Pos.File != "/etc/dovecot/conf.d/10-master.conf" {
		t.Errorf("imaps pos = %v", il.Section("inet_listener", "imaps").Pos)
	}
	if len(c.Section("service", "director").Sections) != 4 {
		t.Errorf("director listeners = %d", len(c.Section("service", "director").Sections))
	}
	var buf bytes.Buffer
	if err := c.WriteNonDefault(&buf); err != nil {
		t.Fatal(err)
	}
	for _, wantLine := range []string{"mail_location = mbox:~/mail:INBOX=/var/mail/%u\n", "ssl_cert = </etc/dovecot/private/dovecot.pem\n", "mail_privileged_group = mail\n"} {
		if !strings.Contains(buf.String(), wantLine) {
			t.Errorf("doveconf -n lacks %q:\n%s", wantLine, buf.String())
		}
	}
}

func BenchmarkLoadAndCheckGuide002(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c, err := Load("/etc/dovecot/dovecot.conf", WithRoot("testdata/g002"))
		if err != nil {
			b.Fatal(err)
		}
		c.Check()
	}
}
