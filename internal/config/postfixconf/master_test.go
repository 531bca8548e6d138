package postfixconf

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"postcote/internal/config"
)

func TestMasterServices(t *testing.T) {
	text := `smtp      inet  n       -       y       -       -       smtpd
127.0.0.1:submission inet n -   y       -       -       smtpd
  -o smtpd_tls_security_level=encrypt
  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }
  -osmtpd_sasl_auth_enable=yes
[::1]:2525 inet n - n - 10 smtpd -v
mail.example.com:smtps inet n - n - - smtpd
  -o smtpd_tls_wrappermode=yes
lmtp-in   inet  n - n - - smtpd
maildrop  unix  -       n       n       -       -       pipe
  flags=DRhu user=vmail argv=/usr/bin/maildrop -d ${recipient} { arg with spaces }
`
	ms, err := ParseMasterBytes("master.cf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		host string
		port int
		perr bool
	}{
		{"smtp", "", 25, false},
		{"127.0.0.1:submission", "127.0.0.1", 587, false},
		{"[::1]:2525", "::1", 2525, false},
		{"mail.example.com:smtps", "mail.example.com", 465, false},
		{"lmtp-in", "", 0, true},
	}
	for _, tt := range tests {
		s := ms.Lookup(tt.name, TypeInet)
		if s == nil {
			t.Fatalf("no service %s", tt.name)
		}
		if s.Host != tt.host || s.Port != tt.port || (s.PortErr != "") != tt.perr {
			t.Errorf("%s: host %q port %d err %q", tt.name, s.Host, s.Port, s.PortErr)
		}
	}
	sub := ms.Lookup("127.0.0.1:submission", TypeInet)
	if len(sub.Overrides) != 3 {
		t.Fatalf("overrides = %+v", sub.Overrides)
	}
	if v, _ := sub.Override("smtpd_client_restrictions"); v != "permit_sasl_authenticated, reject" {
		t.Errorf("braced override = %q", v)
	}
	if sub.Overrides[1].Pos.Line != 2 {
		t.Errorf("override pos = %v", sub.Overrides[1].Pos)
	}
	v1 := ms.Lookup("[::1]:2525", TypeInet)
	if v1.MaxProc != 10 || v1.Chroot || strings.Join(v1.Args, " ") != "-v" {
		t.Errorf("[::1]:2525 = %+v", v1)
	}
	md := ms.Lookup("maildrop", TypeUnix)
	if len(md.Args) != 6 || md.Args[5] != "arg with spaces" {
		t.Errorf("maildrop args = %q", md.Args)
	}
	main := parse(t, "smtpd_client_restrictions = reject\n")
	view := main.ForService(sub)
	if got := view.List("smtpd_client_restrictions"); strings.Join(got, "|") != "permit_sasl_authenticated|reject" {
		t.Errorf("view = %q", got)
	}
	if main.Get("smtpd_client_restrictions") != "reject" {
		t.Error("WithOverrides changed main")
	}
	if view.Pos("smtpd_client_restrictions").File != "master.cf" {
		t.Errorf("override pos = %v", view.Pos("smtpd_client_restrictions"))
	}
	c := &Config{Main: main, HasMain: true, Master: ms, HasMaster: true}
	var portErr bool
	for _, d := range c.Check() {
		if d.Severity == config.Error && d.Pos.Line == 9 && strings.Contains(d.Message, `unknown port "lmtp-in"`) {
			portErr = true
		}
	}
	if !portErr {
		t.Errorf("no error for lmtp-in: %v", c.Check())
	}
	var buf bytes.Buffer
	if err := ms.Write(&buf); err != nil {
		t.Fatal(err)
	}
	again, err := ParseMasterBytes("again", buf.Bytes())
	if err != nil {
		t.Fatalf("reparse of Write output: %v\n%s", err, buf.String())
	}
	if len(again.Services) != len(ms.Services) {
		t.Errorf("round trip lost services")
	}
	if v, _ := again.Lookup("127.0.0.1:submission", TypeInet).Override("smtpd_client_restrictions"); v != "permit_sasl_authenticated, reject" {
		t.Errorf("round trip override = %q", v)
	}
}

func TestMasterErrors(t *testing.T) {
	tests := []struct {
		text string
		line int
		msg  string
	}{
		{"smtp inet n - y - - smtpd\nfoo bar n - y - - smtpd\n", 2, `unknown service type "bar"`},
		{"smtp inet n - y -\n", 1, "expected 8 columns"},
		{"smtp inet x - y - - smtpd\n", 1, "bad private column"},
		{"smtp inet n - y soon - smtpd\n", 1, "bad wakeup column"},
		{"smtp inet n - y - many smtpd\n", 1, "bad maxproc column"},
		{"# c\nsmtp inet n - y - - smtpd\n  -o\n", 2, "-o without"},
		{"smtp inet n - y - - smtpd\n  -o novalue\n", 1, "bad -o option"},
		{"smtp inet n - y - - smtpd\n  -o { a = b\n", 1, "unbalanced '{'"},
		{"smtp inet n - y - - smtpd }\n", 1, "unbalanced '}'"},
	}
	for _, tt := range tests {
		_, err := ParseMasterBytes("master.cf", []byte(tt.text))
		if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "master.cf:"+strconv.Itoa(tt.line)+":") {
			t.Errorf("%q: err = %v, want master.cf:%d %q", tt.text, err, tt.line, tt.msg)
		}
	}
	stock, err := ParseMaster("testdata/debian12-master.cf")
	if err != nil {
		t.Fatal(err)
	}
	bad := &Config{Main: parse(t, "virtual_transport = lmtp2:unix:private/dovecot-lmtp\n"), HasMain: true, Master: stock, HasMaster: true}
	var found bool
	for _, d := range bad.Check() {
		if d.Severity == config.Error && d.Pos.Line == 1 && strings.Contains(d.Message, `transport "lmtp2" is not a service`) {
			found = true
		}
	}
	if !found {
		t.Errorf("unknown transport not reported: %v", bad.Check())
	}
	ms, err := ParseMasterBytes("master.cf", []byte("smtp inet n - y - - smtpd\nsmtp inet n - y - - smtpd\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := &Config{Main: NewMain(), Master: ms, HasMaster: true}
	if ds := c.Check(); !config.HasErrors(ds) || !strings.Contains(ds[len(ds)-1].Message+ds[0].Message, "duplicate service") {
		t.Errorf("duplicate: %v", ds)
	}
}
