package doveconf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/config"
)

func parse(t *testing.T, text string, opts ...Option) *Config {
	t.Helper()
	c, err := Parse("dovecot.conf", []byte(text), opts...)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestSyntax(t *testing.T) {
	c := parse(t, `# comment
protocols = imap   # trailing comment
quoted = "a # not a comment \"x\""
single = 'it''s'
nospace=value
cont = first \
   second \
  third
service imap-login {
  inet_listener imaps {
    port = 993
  }
}
mailbox_block = 1
namespace inbox {
  mailbox "Important Emails" {
    auto = create
  }
}
service imap-login {
  process_min_avail = 2
}
passdb {
  driver = pam
}
passdb {
  driver = passwd-file
}
`, WithEnv(func(string) (string, bool) { return "", false }))
	tests := []struct{ key, want string }{
		{"protocols", "imap"},
		{"quoted", `a # not a comment "x"`},
		{"nospace", "value"},
		{"cont", "first second third"},
	}
	for _, tt := range tests {
		if got, _ := c.Get(tt.key); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, got, tt.want)
		}
	}
	if st, _ := c.Setting("cont"); st.Pos.Line != 6 {
		t.Errorf("continued line pos = %v", st.Pos)
	}
	il := c.Section("service", "imap-login")
	if il == nil || len(c.SectionsOf("service")) != 1 {
		t.Fatalf("named sections were not merged: %+v", c.SectionsOf("service"))
	}
	if v, _ := il.Get("process_min_avail"); v != "2" || il.Pos.Line != 9 {
		t.Errorf("merged service = %+v", il)
	}
	if len(c.SectionsOf("passdb")) != 2 {
		t.Errorf("unnamed passdbs merged")
	}
	mb := c.Section("namespace", "inbox").Section("mailbox", "Important Emails")
	if mb == nil || mb.Path() != "namespace inbox / mailbox Important Emails" {
		t.Errorf("quoted section name: %+v", mb)
	}
}

func TestVariables(t *testing.T) {
	c := parse(t, `protocols = imap
protocols = $protocols lmtp
mail_plugins = $mail_plugins quota
other = $protocols and$literal $ alone
protocol lmtp {
  mail_plugins = $mail_plugins sieve
}
home = $ENV:POSTCOTE_TEST_HOME x
set = $SET:protocols
`, WithEnv(func(n string) (string, bool) {
		if n == "POSTCOTE_TEST_HOME" {
			return "/home/t", true
		}
		return "", false
	}))
	tests := []struct {
		s         *Section
		key, want string
	}{
		{c.Root, "protocols", "imap lmtp"},
		{c.Root, "mail_plugins", " quota"},
		{c.Root, "other", "imap lmtp and$literal $ alone"},
		{c.Section("protocol", "lmtp"), "mail_plugins", " quota sieve"},
		{c.Root, "home", "/home/t x"},
		{c.Root, "set", "imap lmtp"},
	}
	for _, tt := range tests {
		if got, _ := tt.s.Get(tt.key); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, got, tt.want)
		}
	}
	eff := c.EffectiveFor("lmtp")
	if v := eff.GetDefault("mail_plugins"); v != " quota sieve" {
		t.Errorf("EffectiveFor(lmtp) mail_plugins = %q", v)
	}
	if v := c.EffectiveFor("imap").GetDefault("mail_plugins"); v != " quota" {
		t.Errorf("EffectiveFor(imap) mail_plugins = %q", v)
	}
	if _, err := Parse("d.conf", []byte("a = 1\nb = $nosuchsetting\n")); err == nil || !strings.HasPrefix(err.Error(), "d.conf:2: b: unknown variable $nosuchsetting") {
		t.Errorf("unknown variable: %v", err)
	}
}

func TestProtocolFilterMatch(t *testing.T) {
	tests := []struct {
		filter, proto string
		want          bool
	}{
		{"imap", "imap", true}, {"imap", "pop3", false}, {"imap pop3", "pop3", true},
		{"!lmtp", "imap", true}, {"!lmtp", "lmtp", false},
	}
	for _, tt := range tests {
		if got := protocolMatches(tt.filter, tt.proto); got != tt.want {
			t.Errorf("protocolMatches(%q, %q) = %v", tt.filter, tt.proto, got)
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseErrors(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "loop1.conf"), "a = 1\n!include loop2.conf\n")
	write(t, filepath.Join(dir, "loop2.conf"), "\n\n!include loop1.conf\n")
	write(t, filepath.Join(dir, "open.conf"), "x = 1\nservice imap {\n")
	write(t, filepath.Join(dir, "close.conf"), "x = 1\n}\n")
	write(t, filepath.Join(dir, "noperm.pem"), "secret")
	if err := os.Chmod(filepath.Join(dir, "noperm.pem"), 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, text string
		file       string
		line       int
		msg        string
	}{
		{"unterminated section", "a = 1\nservice imap {\n  b = 2\n", "main.conf", 2, "is not closed"},
		{"stray brace", "a = 1\n}\n", "main.conf", 2, "unexpected '}'"},
		{"missing equals", "a = 1\nkeyonly\n", "main.conf", 2, "expecting '='"},
		{"garbage after brace", "service imap { x\n", "main.conf", 1, "garbage after '{'"},
		{"section without brace", "service imap x\n", "main.conf", 1, "expecting '=' or '{'"},
		{"unknown command", "!includ foo\n", "main.conf", 1, "unknown command"},
		{"include loop", "!include loop1.conf\n", "loop2.conf", 3, "recursive include"},
		{"missing include", "a = 1\n!include missing.conf\n", "main.conf", 2, "cannot read include file"},
		{"glob without match", "!include conf.d/*.conf\n", "main.conf", 1, "no files match"},
		{"section open in include", "!include open.conf\n", "open.conf", 2, "is not closed"},
		{"section closed in include", "service imap {\n!include close.conf\n}\n", "close.conf", 2, "which another file opened"},
		{"missing <file", "a = 1\nssl_cert = </nonexistent/cert.pem\n", "main.conf", 2, "cannot read /nonexistent/cert.pem"},
		{"unreadable <file", "ssl_key = <noperm.pem\n", "main.conf", 1, "cannot read"},
		{"<file is a directory", "ssl_key = <" + dir + "\n", "main.conf", 1, "cannot read"},
		{"unclosed quote name", "mailbox \"Sent {\n", "main.conf", 1, "missing closing"},
	}
	for _, tt := range tests {
		if tt.name == "unreadable <file" && os.Geteuid() == 0 {
			continue // root reads anything
		}
		path := filepath.Join(dir, "main.conf")
		write(t, path, tt.text)
		_, err := Load(path)
		var pe *config.PosError
		if !errors.As(err, &pe) || filepath.Base(pe.Pos.File) != tt.file || pe.Pos.Line != tt.line || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s: err = %v; want %s:%d %q", tt.name, err, tt.file, tt.line, tt.msg)
		}
	}
	// include_try skips what is missing.
	write(t, filepath.Join(dir, "main.conf"), "!include_try missing.conf\n!include_try conf.d/*.conf\na = 1\n")
	if _, err := Load(filepath.Join(dir, "main.conf")); err != nil {
		t.Errorf("include_try: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "none.conf")); err == nil {
		t.Error("Load of a missing file succeeded")
	}
}

func TestIncludeGlobOrderAndRelative(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "dovecot.conf"), "!include conf.d/*.conf\n")
	write(t, filepath.Join(dir, "conf.d/20-b.conf"), "protocols = $protocols sieve\n")
	write(t, filepath.Join(dir, "conf.d/10-a.conf"), "protocols = imap\n!include ../ext/auth.conf.ext\n")
	write(t, filepath.Join(dir, "ext/auth.conf.ext"), "passdb {\n  driver = static\n  args = password=x\n}\n")
	c, err := Load(filepath.Join(dir, "dovecot.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if v := c.GetDefault("protocols"); v != "imap sieve" {
		t.Errorf("protocols = %q", v)
	}
	if len(c.Files) != 4 || filepath.Base(c.Files[1]) != "10-a.conf" || filepath.Base(c.Files[2]) != "auth.conf.ext" {
		t.Errorf("files = %q", c.Files)
	}
}

func TestValues(t *testing.T) {
	c := parse(t, `auth_failure_delay = 5 secs
imap_idle_notify_interval = 2mins
mailbox_idle_check_interval = 1500 msecs
default_vsz_limit = 1G
imap_max_line_length = 64k
mail_max_keyword_length = 20
disable_plaintext_auth = NO
verbose_ssl = y
auth_debug = maybe
first_valid_uid = -1
replication_full_sync_interval = 3 fortnights
`)
	durs := []struct {
		key  string
		want time.Duration
	}{
		{"auth_failure_delay", 5 * time.Second}, {"imap_idle_notify_interval", 2 * time.Minute},
		{"mailbox_idle_check_interval", 1500 * time.Millisecond}, {"auth_cache_ttl", time.Hour},
	}
	for _, d := range durs {
		if got, err := c.Duration(d.key); err != nil || got != d.want {
			t.Errorf("Duration(%s) = %v, %v", d.key, got, err)
		}
	}
	if n, err := c.Size("default_vsz_limit"); err != nil || n != 1<<30 {
		t.Errorf("Size = %d, %v", n, err)
	}
	if n, err := c.Size("imap_max_line_length"); err != nil || n != 64<<10 {
		t.Errorf("Size = %d, %v", n, err)
	}
	if b, err := c.Bool("disable_plaintext_auth"); err != nil || b {
		t.Errorf("Bool = %v, %v", b, err)
	}
	if b, err := c.Bool("verbose_ssl"); err != nil || !b {
		t.Errorf("Bool(y) = %v, %v", b, err)
	}
	for _, k := range []string{"auth_debug", "first_valid_uid", "replication_full_sync_interval"} {
		var err error
		switch k {
		case "auth_debug":
			_, err = c.Bool(k)
		case "first_valid_uid":
			_, err = c.Int(k)
		default:
			_, err = c.Duration(k)
		}
		var pe *config.PosError
		if !errors.As(err, &pe) || pe.Key != k || pe.Pos.File != "dovecot.conf" || pe.Pos.Line == 0 {
			t.Errorf("%s: err = %v", k, err)
		}
	}
}

func TestCheckErrors(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/cert.pem"), "-----BEGIN CERTIFICATE-----\n")
	write(t, filepath.Join(root, "etc/dovecot/bad-ldap.conf.ext"), "uris = ldap://x\nscope = everywhere\n")
	write(t, filepath.Join(root, "etc/dovecot/bad-sql.conf.ext"), "driver = oracle\nconnect = x\n")
	base := "ssl_cert = </etc/cert.pem\nssl_key = </etc/cert.pem\n"
	tests := []struct {
		text string
		sev  config.Severity
		file string
		line int
		msg  string
	}{
		{base + "mail_locaton = maildir:~/Maildir\n", config.Error, "/dovecot.conf", 3, "unknown setting mail_locaton"},
		{base + "service imap {\n  mail_location = x\n}\n", config.Error, "/dovecot.conf", 4, "it is a global setting"},
		{base + "disable_plaintext_auth = maybe\n", config.Error, "/dovecot.conf", 3, "bad boolean"},
		{base + "default_vsz_limit = 10 parsecs\n", config.Error, "/dovecot.conf", 3, "bad size"},
		{base + "auth_failure_delay = soon\n", config.Error, "/dovecot.conf", 3, "bad time"},
		{base + "ssl = maybe\n", config.Error, "/dovecot.conf", 3, "use one of yes, no, required"},
		{base + "service auth {\n  unix_listener x {\n    mode = 0999\n  }\n}\n", config.Error, "/dovecot.conf", 5, "bad mode"},
		{base + "service imap-login {\n  inet_listener imap {\n    port = 70000\n  }\n}\n", config.Error, "/dovecot.conf", 5, "out of range"},
		{base + "frobnicate {\n}\n", config.Error, "/dovecot.conf", 3, "unknown section type"},
		{base + "mailbox Sent {\n}\n", config.Error, "/dovecot.conf", 3, "not allowed inside the top level"},
		{base + "namespace {\n}\n", config.Error, "/dovecot.conf", 3, "needs a name"},
		{base + "namespace inbox {\n  mailbox Sent {\n    special_use = \\Sentt\n  }\n}\n", config.Error, "/dovecot.conf", 5, "unknown flag"},
		{base + "namespace inbox {\n  mailbox Sent {\n    auto = always\n  }\n}\n", config.Error, "/dovecot.conf", 5, "use one of no, create, subscribe"},
		{base + "passdb {\n  args = x\n}\n", config.Error, "/dovecot.conf", 3, "has no driver"},
		{base + "passdb {\n  driver = magic\n}\n", config.Error, "/dovecot.conf", 4, "unknown passdb driver"},
		{base + "passdb {\n  driver = passwd-file\n  args = /etc/dovecot/users\n}\n", config.Error, "/dovecot.conf", 5, "cannot read /etc/dovecot/users"},
		{base + "userdb {\n  driver = ldap\n  args = /etc/dovecot/bad-ldap.conf.ext\n}\n", config.Error, "/etc/dovecot/bad-ldap.conf.ext", 2, "use one of base, onelevel, subtree"},
		{base + "userdb {\n  driver = sql\n  args = /etc/dovecot/bad-sql.conf.ext\n}\n", config.Error, "/etc/dovecot/bad-sql.conf.ext", 1, "unknown driver"},
		{base + "passdb {\n  driver = checkpassword\n}\n", config.Warning, "/dovecot.conf", 4, "not yet supported"},
		{base + "protocols = imap gopher\n", config.Error, "/dovecot.conf", 3, "unknown protocol"},
		{"ssl = required\n", config.Error, "/dovecot.conf", 1, "ssl_cert is not set"},
		{"ssl_cert = /etc/cert.pem\nssl_key = </etc/cert.pem\n", config.Error, "/dovecot.conf", 1, "write ssl_cert = </etc/cert.pem"},
		{base + "ssl_dh_parameters_length = 4096\n", config.Info, "/dovecot.conf", 3, "ignored"},
		{base + "service submission-login {\n  inet_listener submission {\n    port = 2587\n  }\n}\n", config.Warning, "/dovecot.conf", 3, "not yet supported"},
		{base + "auth_mechanisms = plain cram-md5\n", config.Warning, "/dovecot.conf", 3, "cram-md5 is not yet supported"},
		{base + "mail_location = mbox:~/mail:INBOX=/var/mail/%u\n", config.Warning, "/dovecot.conf", 3, "mbox is not yet supported"},
		{base + "mail_location = maildri:~/Maildir\n", config.Error, "/dovecot.conf", 3, "unknown mailbox format"},
		{base + "mail_location = ~/Maildir\n", config.Warning, "/dovecot.conf", 3, "no mailbox format"},
		{base + "metric imap_logins {\n  filter = event=auth_request_finished\n}\n", config.Warning, "/dovecot.conf", 3, "not yet supported"},
		{base + "listen = *#comment\n", config.Warning, "/dovecot.conf", 3, "ambiguous '#'"},
	}
	for _, tt := range tests {
		c, err := Parse("/dovecot.conf", []byte(tt.text), WithRoot(root))
		if err != nil {
			t.Fatalf("%q: %v", tt.text, err)
		}
		found := false
		ds := c.Check()
		for _, d := range ds {
			if d.Severity == tt.sev && d.Pos.File == tt.file && d.Pos.Line == tt.line && strings.Contains(d.Message, tt.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: no %s at %s:%d containing %q in %v", tt.text, tt.sev, tt.file, tt.line, tt.msg, ds)
		}
	}
	// A free-form plugin section accepts any key.
	c := parse(t, "ssl = no\nplugin {\n  sieve = file:~/sieve;active=~/.dovecot.sieve\n  anything_goes = 1\n}\n")
	if ds := c.Check(); config.HasErrors(ds) {
		t.Errorf("plugin section: %v", ds)
	}
}

func TestRegistry(t *testing.T) {
	for _, s := range KnownSettings() {
		if s.Doc == "" {
			t.Errorf("%s/%s: no doc", s.Scope, s.Name)
		}
		if s.Kind == KindFile {
			continue
		}
		if bad := validate(s, Setting{Key: s.Name, Value: s.Default}); bad != "" && s.Default != "" {
			t.Errorf("%s/%s: default %q invalid: %s", s.Scope, s.Name, s.Default, bad)
		}
		if s.Kind == KindEnum && len(s.Enum) == 0 {
			t.Errorf("%s/%s: enum without values", s.Scope, s.Name)
		}
	}
	if _, ok := sectionRules[""]; ok {
		t.Error("top level must not be a section rule")
	}
}

// TestVariableCorners follows the cases of Dovecot's own config-parser
// test: quoted values and words not starting with "$" stay literal, a
// whole word after $ENV: names the variable, and a setting may refer
// to its own earlier value.
func TestVariableCorners(t *testing.T) {
	env := map[string]string{"foo": "test1", "bar": "test2", "FOO$ENV:FOO": "works"}
	c := parse(t, `key=value
key2 = \$escape \escape \"escape\"
key3 = value
key3 = $key3 nothervalue
key3 = yetanother value $key3 right here
key4 = " $key3 "
key5 = ' $key4 '
pop3_deleted_flag = "$Deleted"
env_key=$ENV:foo
env_key=$env_key $ENV:bar
env_key=$env_key "$env_key"
env_key2 = foo$ENV:FOO bar
env_key3 = $ENV:FOO$ENV:FOO bar
env_key4 = $ENV:foo $ENV:bar $key
env_key5 = $ENV:foo $ENV:foo
`, WithEnv(func(n string) (string, bool) { v, ok := env[n]; return v, ok }))
	tests := []struct{ key, want string }{
		{"key", "value"},
		{"key2", `\$escape \escape \"escape\"`},
		{"key3", "yetanother value value nothervalue right here"},
		{"key4", " $key3 "},
		{"key5", " $key4 "},
		{"pop3_deleted_flag", "$Deleted"},
		{"env_key", `test1 test2 "$env_key"`},
		{"env_key2", "foo$ENV:FOO bar"},
		{"env_key3", "works bar"},
		{"env_key4", "test1 test2 value"},
		{"env_key5", "test1 test1"},
	}
	for _, tt := range tests {
		if got, _ := c.Get(tt.key); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.key, got, tt.want)
		}
	}
}
