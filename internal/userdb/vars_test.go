package userdb

import (
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	v := Vars{
		User: "Info@Example.JP", Service: "imap", Home: "/home/vmail/example.jp/info",
		LocalIP: "127.0.0.1", RemoteIP: "192.0.2.7", OrigUser: "INFO@example.jp",
		Fields: func(kind, name string) (string, bool) {
			if kind == "userdb" && name == "quota" {
				return "1G", true
			}
			return "", false
		},
	}
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"/etc/dovecot/users", "/etc/dovecot/users", false},
		{"%u", "Info@Example.JP", false},
		{"%n", "Info", false},
		{"%d", "Example.JP", false},
		{"%s", "imap", false},
		{"%h", "/home/vmail/example.jp/info", false},
		{"%%", "%", false},
		{"100%%", "100%", false},
		{"%Lu", "info@example.jp", false},
		{"%Ln", "info", false},
		{"%Ld", "example.jp", false},
		{"%Uu", "INFO@EXAMPLE.JP", false},
		{"%Un", "INFO", false},
		{"%{user}", "Info@Example.JP", false},
		{"%{username}", "Info", false},
		{"%{domain}", "Example.JP", false},
		{"%{service}", "imap", false},
		{"%{home}", "/home/vmail/example.jp/info", false},
		{"%L{user}", "info@example.jp", false},
		{"%{rip}/%{lip}", "192.0.2.7/127.0.0.1", false},
		{"%r %l", "192.0.2.7 127.0.0.1", false},
		{"%{orig_user}", "INFO@example.jp", false},
		{"[%c]", "[]", false},
		{"%{userdb:quota}", "1G", false},
		{"%{userdb:missing:5G}", "5G", false},
		{"/home/vmail/%d/%n", "/home/vmail/Example.JP/Info", false},
		{"maildir:/var/mail/%Ld/%Ln/Maildir", "maildir:/var/mail/example.jp/info/Maildir", false},
		{"%1Ln/%Ln", "i/info", false},
		{"%2.1n", "f", false},
		{"%-2.2Ln", "fo", false},
		{"%Rn", "ofnI", false},
		{"%Dd", "dc=Example,dc=JP", false},
		{"%x", "%x", true},
		{"%{nosuch}", "%{nosuch}", true},
		{"%{unterminated", "%{unterminated", true},
		{"trailing %", "trailing %", false},
		{"%L", "%L", true},
	}
	for _, tt := range tests {
		got, err := ExpandCheck(tt.in, v)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ExpandCheck(%q) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if e := Expand(tt.in, v); e != got {
			t.Errorf("Expand(%q) = %q, ExpandCheck gave %q", tt.in, e, got)
		}
	}
}

// TestExpandNoReexpansion: a "%" inside a value is copied, never expanded.
func TestExpandNoReexpansion(t *testing.T) {
	for _, user := range []string{"%u@x", "%{home}", "a%%b@%d", "%Lu%n"} {
		v := Vars{User: user, Home: "/secret"}
		if got := Expand("%u", v); got != user {
			t.Errorf("Expand(%%u) with user %q = %q", user, got)
		}
		if got := Expand("/home/%n", v); strings.Contains(got, "/secret") {
			t.Errorf("user %q re-expanded into %q", user, got)
		}
	}
}

func TestExpandEscape(t *testing.T) {
	v := Vars{User: "a/../b@x/y", Escape: func(s string) string { return strings.ReplaceAll(s, "/", "_") }}
	if got := Expand("/etc/%d/%n", v); got != "/etc/x_y/a_.._b" {
		t.Errorf("got %q", got)
	}
}

func TestHasVars(t *testing.T) {
	for in, want := range map[string]bool{"/a/b": false, "/a/%%b": false, "/a/%d": true, "%": false, "%%%u": true} {
		if HasVars(in) != want {
			t.Errorf("HasVars(%q) = %v", in, !want)
		}
	}
}

func TestTemplate(t *testing.T) {
	tm := ParseTemplate("uid=vmail gid=vmail home=/home/vmail/%d/%n mail=sdbox:~/dbox quota_rule=*:storage=1G nopassword")
	var f Fields
	tm.ApplyTo(&f, Vars{User: "info@example.jp"})
	want := "uid=vmail gid=vmail home=/home/vmail/example.jp/info mail=sdbox:~/dbox quota_rule=*:storage=1G nopassword"
	if f.String() != want {
		t.Errorf("got %q\nwant %q", f.String(), want)
	}
	// %h sees a home set earlier in the same template.
	f = nil
	ParseTemplate("home=/h/%n mail=maildir:%h/Maildir").ApplyTo(&f, Vars{User: "bob@x"})
	if f.Value("mail") != "maildir:/h/bob/Maildir" {
		t.Errorf("mail = %q", f.Value("mail"))
	}
}

func TestExpandSecured(t *testing.T) {
	if got := Expand("%c %{secured}", Vars{Secured: true}); got != "secured secured" {
		t.Errorf("got %q", got)
	}
}
