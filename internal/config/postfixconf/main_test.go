package postfixconf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/config"
)

func parse(t *testing.T, text string) *Main {
	t.Helper()
	m, err := ParseMainBytes("main.cf", []byte(text), WithHostname("mx1.example.org"))
	if err != nil {
		t.Fatalf("ParseMainBytes: %v", err)
	}
	return m
}

func TestMainSyntax(t *testing.T) {
	m := parse(t, "# comment\n"+
		"a = one # not a comment\n"+
		"b=two\n"+
		"c = first\n"+
		"   # comment inside a continued line\n"+
		"\n"+
		"  second\n"+
		"\tthird\n"+
		"d =\n"+
		"e = trailing   \n")
	tests := []struct {
		name, raw string
		line      int
	}{
		{"a", "one # not a comment", 2},
		{"b", "two", 3},
		{"c", "first second third", 4},
		{"d", "", 9},
		{"e", "trailing", 10},
	}
	for _, tt := range tests {
		p, ok := m.Raw(tt.name)
		if !ok || p.Value != tt.raw || p.Pos.Line != tt.line || p.Pos.File != "main.cf" {
			t.Errorf("Raw(%s) = %+v, %v; want %q at line %d", tt.name, p, ok, tt.raw, tt.line)
		}
	}
	if got := strings.Join(m.Names(), ","); got != "a,b,c,d,e" {
		t.Errorf("Names = %s", got)
	}
}

func TestMainSyntaxErrors(t *testing.T) {
	tests := []struct {
		text string
		line int
		msg  string
	}{
		{"a = 1\nnovalue\n", 2, "missing '='"},
		{"a = 1\n= 3\n", 2, "missing parameter name"},
		{"a b = 1\n", 1, "missing '='"},
		{"a = 1\nb-c = 2\n", 2, "bad parameter name"},
	}
	for _, tt := range tests {
		_, err := ParseMainBytes("main.cf", []byte(tt.text))
		var pe *config.PosError
		if !errors.As(err, &pe) || pe.Pos.Line != tt.line || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%q: err = %v, want line %d %q", tt.text, err, tt.line, tt.msg)
		}
	}
}

func TestExpansion(t *testing.T) {
	m := parse(t, `
myhostname = mail.example.com
a = $myhostname
b = ${myhostname}/$(mydomain)
c = x${a}y
empty =
d = ${empty?set}${empty:unset}
e = ${a?set}${a:unset}
f = ${a?{yes}:{no}} ${empty?{yes}:{no}}
g = $$literal and $ alone and $
h = $undefined_name
i = ${a?$a-$mydomain}
r1 = ${{$a} == {mail.example.com} ? {same} : {other}}
r2 = ${{$a} != {mail.example.com}?{same}:{other}}
r3 = ${{10} < {9} ? {lt}:{ge}}
r4 = ${{$empty} == {}?{blank}}
r5 = ${{x} < {9} ? {a}}
j = $loop1
loop1 = $loop2
loop2 = $j
k = ${unbalanced
`)
	tests := []struct{ name, want string }{
		{"a", "mail.example.com"},
		{"b", "mail.example.com/example.com"},
		{"c", "xmail.example.comy"},
		{"d", "unset"},
		{"e", "set"},
		{"f", "yes no"},
		{"g", "$literal and $ alone and $"},
		{"h", ""},
		{"i", "mail.example.com-example.com"},
		{"myorigin", "mail.example.com"},
		{"mydestination", "mail.example.com, localhost.example.com, localhost"},
		{"smtpd_banner", "mail.example.com ESMTP postcote"},
		{"unknown_and_unset", ""},
		{"r1", "same"},
		{"r2", "other"},
		{"r3", "ge"},
		{"r4", "blank"},
	}
	for _, tt := range tests {
		if got := m.Get(tt.name); got != tt.want {
			t.Errorf("Get(%s) = %q, want %q", tt.name, got, tt.want)
		}
	}
	if _, err := m.Expand("$j"); err == nil || !strings.Contains(err.Error(), "loop") {
		t.Errorf("loop: err = %v", err)
	}
	if _, err := m.Expand("$r5"); err == nil || !strings.Contains(err.Error(), "compares numbers") {
		t.Errorf("relational on text: err = %v", err)
	}
	if _, err := m.Expand("$k"); err == nil || !strings.Contains(err.Error(), "unbalanced") {
		t.Errorf("unbalanced: err = %v", err)
	}
}

func TestExpansionBlowUp(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 40; i++ {
		b.WriteString("p")
		b.WriteString(string(rune('a' + i%26)))
		b.WriteString(strings.Repeat("x", i/26))
		b.WriteString(" = ")
		if i < 39 {
			n := "p" + string(rune('a'+(i+1)%26)) + strings.Repeat("x", (i+1)/26)
			b.WriteString("$" + n + "$" + n + "${" + n + "?$" + n + "}")
		} else {
			b.WriteString("0123456789")
		}
		b.WriteString("\n")
	}
	m := parse(t, b.String())
	start := time.Now()
	_, err := m.Expand("$pa")
	if err == nil {
		t.Error("expected an expansion limit error")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("expansion took %v", d)
	}
}

func TestDefaults(t *testing.T) {
	tests := []struct {
		host, text, name, want string
	}{
		{"mx1.example.org", "", "mydomain", "example.org"},
		{"mx1", "", "myhostname", "mx1.localdomain"},
		{"mx1", "", "mydomain", "localdomain"},
		{"mx1", "mydomain = corp.test\n", "myhostname", "mx1.corp.test"},
		{"mx1.example.org", "", "relay_domains", "mx1.example.org, localhost.example.org, localhost"},
		{"mx1.example.org", "compatibility_level = 2\n", "relay_domains", ""},
		{"mx1.example.org", "compatibility_level = 3.6\n", "mynetworks_style", "host"},
		{"mx1.example.org", "", "mynetworks_style", "subnet"},
		{"mx1.example.org", "", "append_dot_mydomain", "yes"},
		{"mx1.example.org", "compatibility_level = 1\n", "smtpd_relay_restrictions", "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination"},
		{"mx1.example.org", "", "inet_interfaces", "all"},
		{"mx1.example.org", "", "message_size_limit", "10240000"},
		{"mx1.example.org", "", "smtpd_recipient_limit", "1000"},
		{"mx1.example.org", "", "recipient_delimiter", ""},
		{"mx1.example.org", "", "queue_directory", "/var/spool/postfix"},
		{"mx1.example.org", "", "smtpd_client_event_limit_exceptions", ""},
		{"mx1.example.org", "mynetworks = 10.0.0.0/8\n", "smtpd_client_event_limit_exceptions", "10.0.0.0/8"},
		{"mx1.example.org", "myhostname = $mydomain\n", "mydomain", "localdomain"}, // a loop; Check reports it
	}
	for _, tt := range tests {
		m, err := ParseMainBytes("main.cf", []byte(tt.text), WithHostname(tt.host))
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Get(tt.name); got != tt.want {
			t.Errorf("host %s, %q: Get(%s) = %q, want %q", tt.host, tt.text, tt.name, got, tt.want)
		}
	}
}

func TestTypedValues(t *testing.T) {
	m := parse(t, `
yes1 = YES
no1 = no
badbool = maybe
int1 = 42
badint = 4x2
size1 = 52428800
badsize = 10M
t1 = 4h
t2 = 90
t3 = 2w
badtime = 3y
maximal_queue_lifetime = 2
delay_warning_time = 4
list1 = a, b  c,,d	e
tables = hash:/etc/a, inline:{ x=y, z=w } proxy:ldap:/etc/l.cf
`)
	if b, err := m.Bool("yes1"); err != nil || !b {
		t.Errorf("Bool(yes1) = %v, %v", b, err)
	}
	if b, err := m.Bool("no1"); err != nil || b {
		t.Errorf("Bool(no1) = %v, %v", b, err)
	}
	if n, err := m.Int("int1"); err != nil || n != 42 {
		t.Errorf("Int = %d, %v", n, err)
	}
	if n, err := m.Size("size1"); err != nil || n != 52428800 {
		t.Errorf("Size = %d, %v", n, err)
	}
	durs := []struct {
		name string
		want time.Duration
	}{
		{"t1", 4 * time.Hour}, {"t2", 90 * time.Second}, {"t3", 14 * 24 * time.Hour},
		{"maximal_queue_lifetime", 48 * time.Hour}, {"delay_warning_time", 4 * time.Hour},
		{"minimal_backoff_time", 300 * time.Second}, {"bounce_queue_lifetime", 5 * 24 * time.Hour},
	}
	for _, d := range durs {
		if got, err := m.Duration(d.name); err != nil || got != d.want {
			t.Errorf("Duration(%s) = %v, %v; want %v", d.name, got, err, d.want)
		}
	}
	bad := []struct {
		name string
		call func() error
		line int
	}{
		{"badbool", func() error { _, err := m.Bool("badbool"); return err }, 4},
		{"badint", func() error { _, err := m.Int("badint"); return err }, 6},
		{"badsize", func() error { _, err := m.Size("badsize"); return err }, 8},
		{"badtime", func() error { _, err := m.Duration("badtime"); return err }, 12},
	}
	for _, b := range bad {
		err := b.call()
		var pe *config.PosError
		if !errors.As(err, &pe) || pe.Pos.Line != b.line || pe.Key != b.name || !strings.HasPrefix(err.Error(), "main.cf:") {
			t.Errorf("%s: err = %v, want main.cf:%d", b.name, err, b.line)
		}
	}
	if got := strings.Join(m.List("list1"), "|"); got != "a|b|c|d|e" {
		t.Errorf("List = %s", got)
	}
	tb := m.Tables("tables")
	if len(tb) != 3 || tb[1].String() != "inline:{ x=y, z=w }" || tb[2].Type != "proxy" || tb[2].Name != "ldap:/etc/l.cf" {
		t.Errorf("Tables = %v", tb)
	}
}

func TestFiles(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "etc/mailname"), "\n# comment\nexample.net\n")
	mustWrite(t, filepath.Join(root, "etc/postfix/domains"), "# hosted\na.example, b.example\nc.example\n")
	m, err := ParseMainBytes("main.cf", []byte("myorigin = /etc/mailname\nmydestination = localhost, /etc/postfix/domains\nrelay_domains = /etc/missing\n"), WithRoot(root))
	if err != nil {
		t.Fatal(err)
	}
	if o, err := m.FileValue("myorigin"); err != nil || o != "example.net" {
		t.Errorf("FileValue = %q, %v", o, err)
	}
	if l, err := m.ListWithFiles("mydestination"); err != nil || strings.Join(l, "|") != "localhost|a.example|b.example|c.example" {
		t.Errorf("ListWithFiles = %q, %v", l, err)
	}
	if _, err := m.ListWithFiles("relay_domains"); err == nil || !strings.Contains(err.Error(), "main.cf:3") {
		t.Errorf("missing list file: err = %v", err)
	}
}

func mustWrite(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCheck(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "etc/aliases"), "root: admin\n")
	mustWrite(t, filepath.Join(root, "cert.pem"), "x")
	tests := []struct {
		text string
		sev  config.Severity
		line int
		msg  string
	}{
		{"mydomian = example.com\n", config.Warning, 1, "unknown parameter mydomian"},
		{"smtpd_tls_auth_only = perhaps\n", config.Error, 1, "bad boolean"},
		{"message_size_limit = 10M\n", config.Error, 1, "bad size"},
		{"maximal_queue_lifetime = 5y\n", config.Error, 1, "bad time"},
		{"smtpd_recipient_limit = lots\n", config.Error, 1, "bad number"},
		{"smtpd_tls_security_level = required\n", config.Error, 1, "use one of none, may, encrypt"},
		{"inet_protocols = ipv5\n", config.Error, 1, "bad protocol"},
		{"a = 1\nsmtpd_tls_cert_file = /missing.pem\n", config.Error, 2, "cannot read /missing.pem"},
		{"alias_maps = hash:/etc/aliases, hash:/etc/nonexistent\n", config.Error, 1, "cannot read /etc/nonexistent"},
		{"alias_maps = nonsense\n", config.Error, 1, "not a lookup table"},
		{"alias_maps = frob:/x\n", config.Error, 1, "unknown lookup table type"},
		{"alias_maps = cdb:/etc/aliases\n", config.Warning, 1, "not yet supported"},
		{"myorigin = /etc/mailname\n", config.Error, 1, "cannot read /etc/mailname"},
		{"mynetworks = 127.0.0.0/8 /etc/postfix/nets\n", config.Error, 1, "cannot read list file /etc/postfix/nets"},
		{"smtpd_banner = $myhostnam ESMTP\n", config.Warning, 1, "undefined parameter $myhostnam"},
		{"a = $b\nb = $a\nc = 1\n", config.Error, 1, "loop"},
		{"smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destinaton\n", config.Error, 1, "unknown restriction"},
		{"smtpd_recipient_restrictions = check_recipient_access\n", config.Error, 1, "needs an argument"},
		{"smtpd_recipient_restrictions = check_recipient_access hash:/etc/none\n", config.Error, 1, "cannot read /etc/none"},
		{"smtpd_client_restrictions = check_policy_service inet:127.0.0.1:10023\n", config.Warning, 1, "not yet supported"},
		{"smtpd_sasl_auth_enable = yes\n", config.Error, 1, "smtpd_sasl_type = dovecot"},
		{"smtpd_tls_security_level = encrypt\n", config.Error, 1, "smtpd_tls_cert_file is empty"},
		{"transport_maps = hash:/etc/aliases\n", config.Warning, 1, "not yet supported by postcote"},
		{"biff = no\n", config.Info, 1, "ignored"},
		{"relayhost = [relay.example.com:25\n", config.Error, 1, "missing ']'"},
		{"relayhost = [relay.example.com]:smtpx\n", config.Error, 1, "unknown port"},
		{"smtpd_sasl_type = dovecot\nsmtpd_sasl_path = inet:dovecot.example.com\n", config.Error, 2, "write inet:host:port"},
		{"x = 1\nx = 2\n", config.Warning, 2, "set again"},
		{"  indented = 1\n", config.Warning, 1, "must not start with whitespace"},
	}
	for _, tt := range tests {
		m, err := ParseMainBytes("main.cf", []byte(tt.text), WithRoot(root), WithHostname("h.example"))
		if err != nil {
			t.Fatalf("%q: %v", tt.text, err)
		}
		found := false
		for _, d := range m.Check() {
			if d.Severity == tt.sev && d.Pos.Line == tt.line && d.Pos.File == "main.cf" && strings.Contains(d.Message, tt.msg) {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: no %s at line %d containing %q in %v", tt.text, tt.sev, tt.line, tt.msg, m.Check())
		}
	}
	// Parameters read unexpanded keep their per-message $names quietly.
	m0 := parse(t, "default_rbl_reply = $rbl_code Blocked by $rbl_domain${rbl_reason?; $rbl_reason}\nforward_path = $home/.forward${recipient_delimiter}${extension}\n")
	for _, d := range m0.Check() {
		if d.Severity >= config.Warning {
			t.Errorf("raw parameter: %s", d)
		}
	}
	// User-defined parameters used as $name are not "unknown".
	m := parse(t, "mua_client_restrictions = permit_sasl_authenticated, reject\nsmtpd_client_restrictions = $mua_client_restrictions\n")
	for _, d := range m.Check() {
		if d.Severity >= config.Warning {
			t.Errorf("user-defined parameter: %s", d)
		}
	}
}

func TestWriteNonDefault(t *testing.T) {
	m := parse(t, "b = $a two\na = one\n")
	var buf bytes.Buffer
	if err := m.WriteNonDefault(&buf); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "a = one\nb = $a two\n" {
		t.Errorf("postconf -n = %q", got)
	}
	buf.Reset()
	if err := m.WriteEffective(&buf); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "a = one\nb = one two\n" {
		t.Errorf("postconf -nx = %q", got)
	}
	buf.Reset()
	if err := m.WriteDefaults(&buf, true); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "\nmessage_size_limit = 10240000\n") || !strings.Contains(buf.String(), "(not yet supported)") {
		t.Errorf("postconf -d lacks expected lines")
	}
}

func TestRegistryDefaultsAreValid(t *testing.T) {
	m := NewMain(WithHostname("h.example.org"))
	for _, p := range Known() {
		if p.Doc == "" {
			t.Errorf("%s: no doc", p.Name)
		}
		if bad := validate(p, strings.TrimSpace(m.Get(p.Name))); bad != "" {
			t.Errorf("%s: default %q invalid: %s", p.Name, m.Get(p.Name), bad)
		}
		if p.Kind == KindTime && p.Unit == 0 {
			t.Errorf("%s: time parameter without default unit", p.Name)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(filepath.Join(dir, "nope")); err == nil {
		t.Error("Load of a missing folder succeeded")
	}
	c, err := Load(dir)
	if err != nil || c.HasMain || c.HasMaster || c.Main == nil {
		t.Fatalf("empty folder: %+v, %v", c, err)
	}
	mustWrite(t, filepath.Join(dir, "main.cf"), "myhostname = a.example\n")
	c, err = Load(filepath.Join(dir, "main.cf"))
	if err != nil || !c.HasMain || c.HasMaster || c.Main.Get("myhostname") != "a.example" {
		t.Fatalf("file path: %+v, %v", c, err)
	}
	mustWrite(t, filepath.Join(dir, "master.cf"), "smtp inet n - y - - smtpd\nbroken\n")
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "master.cf:2") {
		t.Errorf("bad master.cf: err = %v", err)
	}
}

// Per-transport scheduling settings of a master.cf service: the ones the
// queue manager implements are checked for their form and not flagged;
// the others still say they have no effect.
func TestCheckPerTransportSettings(t *testing.T) {
	tests := []struct {
		line string
		sev  config.Severity // 0: nothing at Warning or above
		msg  string
	}{
		{"dovecot_destination_recipient_limit = 1", 0, ""},
		{"dovecot_destination_concurrency_limit = 4", 0, ""},
		{"dovecot_destination_rate_delay = 1s", 0, ""},
		{"dovecot_destination_recipient_limit = one", config.Error, "bad number"},
		{"dovecot_destination_rate_delay = soon", config.Error, "bad time"},
		{"dovecot_recipient_refill_limit = 100", config.Warning, "not yet supported"},
	}
	for _, tc := range tests {
		dir := t.TempDir()
		mustWrite(t, filepath.Join(dir, "main.cf"), tc.line+"\n")
		mustWrite(t, filepath.Join(dir, "master.cf"), "smtp inet n - n - - smtpd\ndovecot unix - n n - - pipe\n  flags=DRhu user=vmail argv=/usr/lib/dovecot/deliver -d ${recipient}\n")
		cfg, err := Load(dir, WithHostname("h.example"))
		if err != nil {
			t.Fatal(err)
		}
		var got []config.Diagnostic
		for _, d := range cfg.Check() {
			if d.Severity >= config.Warning && strings.Contains(d.Message, strings.Fields(tc.line)[0]) {
				got = append(got, d)
			}
		}
		switch {
		case tc.sev == 0 && len(got) > 0:
			t.Errorf("%s: unexpected %v", tc.line, got)
		case tc.sev != 0 && (len(got) == 0 || got[0].Severity != tc.sev || !strings.Contains(got[0].Message, tc.msg)):
			t.Errorf("%s: got %v, want %s containing %q", tc.line, got, tc.sev, tc.msg)
		}
	}
}
