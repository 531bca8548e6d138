package server

import (
	"os"
	"strings"
	"testing"

	"postcote/internal/config/doveconf"
	"postcote/internal/config/postfixconf"
)

func parseDovecot(t *testing.T, text string) *doveconf.Config {
	t.Helper()
	dc, err := doveconf.Parse("dovecot.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

func TestAuthListeners(t *testing.T) {
	tests := []struct {
		name, conf string
		want       []string // endpoint and mode
		err        string
	}{
		{"none", "protocols = imap\n", nil, ""},
		{"guide 004 unix", `service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
  }
  unix_listener auth-userdb {
    mode = 0600
    user = vmail
  }
}`, []string{"unix:/var/spool/postfix/private/auth -rw-rw----"}, ""},
		{"relative to base_dir, default mode", "base_dir = /run/pc\nservice auth {\n  unix_listener auth-client {\n  }\n}\n",
			[]string{"unix:/run/pc/auth-client -rw-------"}, ""},
		{"guide 000 inet", "listen = 127.0.0.1\nservice auth {\n  inet_listener {\n    port = 12345\n  }\n}\n",
			[]string{"127.0.0.1:12345 ----------"}, ""},
		{"inet address", "service auth {\n  inet_listener auth {\n    address = 192.0.2.1\n    port = 12345\n  }\n}\n",
			[]string{"192.0.2.1:12345 ----------"}, ""},
		{"port 0 is off", "service auth {\n  inet_listener {\n    port = 0\n  }\n}\n", nil, ""},
		{"bad port", "service auth {\n  inet_listener {\n    port = 99999\n  }\n}\n", nil, "not a port number"},
		{"no port", "service auth {\n  inet_listener {\n    address = 127.0.0.1\n  }\n}\n", nil, "needs a port"},
		{"bad mode", "service auth {\n  unix_listener /tmp/x {\n    mode = rw\n  }\n}\n", nil, "not an octal permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ls, err := authListeners(parseDovecot(t, tt.conf))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range ls {
				got = append(got, l.endpoint.String()+" "+l.endpoint.Mode.String())
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("listeners = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAuthListenerOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners are applied only when running as root")
	}
	ls, err := authListeners(parseDovecot(t, "service auth {\n  unix_listener /x/auth {\n    user = root\n    group = root\n  }\n}\n"))
	if err != nil || len(ls) != 1 || ls[0].uid != 0 || ls[0].gid != 0 {
		t.Fatalf("listeners %+v, %v", ls, err)
	}
	if _, err := authListeners(parseDovecot(t, "service auth {\n  unix_listener /x/auth {\n    user = no-such-user-here\n  }\n}\n")); err == nil {
		t.Fatal("unknown user accepted")
	}
}

func TestSmtpdSaslPath(t *testing.T) {
	dc := parseDovecot(t, `listen = *
service auth {
  unix_listener /var/spool/postfix/private/auth {
    mode = 0660
  }
  inet_listener {
    port = 12345
  }
}`)
	tests := []struct {
		main      string
		path      string
		servedHer bool
	}{
		{"queue_directory = /var/spool/postfix\nsmtpd_sasl_path = private/auth\n", "/var/spool/postfix/private/auth", true},
		{"queue_directory = /var/spool/postfix\nsmtpd_sasl_path = /var/spool/postfix/private/../private/auth\n", "/var/spool/postfix/private/../private/auth", true},
		{"queue_directory = /srv/q\nsmtpd_sasl_path = private/auth\n", "/srv/q/private/auth", false},
		{"smtpd_sasl_path = inet:127.0.0.1:12345\n", "inet:127.0.0.1:12345", true},
		{"smtpd_sasl_path = inet:localhost:12345\n", "inet:localhost:12345", true},
		{"smtpd_sasl_path = inet:dovecot.company.com:12345\n", "inet:dovecot.company.com:12345", false},
		{"smtpd_sasl_path = inet:127.0.0.1:12346\n", "inet:127.0.0.1:12346", false},
		{"queue_directory = /q\nsmtpd_sasl_path = unix:private/auth\n", "/q/private/auth", false},
	}
	for _, tt := range tests {
		m, err := postfixconf.ParseMainBytes("main.cf", []byte(tt.main))
		if err != nil {
			t.Fatal(err)
		}
		got := saslPath(m)
		if got != tt.path {
			t.Errorf("%q: path %q, want %q", tt.main, got, tt.path)
		}
		if here := servedHere(dc, got); here != tt.servedHer {
			t.Errorf("%q: served here = %v, want %v", tt.main, here, tt.servedHer)
		}
	}
	if servedHere(nil, "/var/spool/postfix/private/auth") {
		t.Error("served here without a dovecot.conf")
	}
}
