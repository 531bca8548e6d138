package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// doveadmConf writes a dovecot.conf with a passwd-file of two users.
func doveadmConf(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	users := "alice:{PLAIN}secret:1000:1000::/home/alice::userdb_mail=maildir:/srv/mail/alice userdb_quota_rule=*:storage=1G\n" +
		"bob:{PLAIN}pw:1001:1001::/home/bob::\n" +
		"carol:{PLAIN}pw:1002:1002::/home/carol::\n"
	if err := os.WriteFile(filepath.Join(dir, "users"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := "protocols = none\nssl = no\nauth_failure_delay = 0\nfirst_valid_uid = 100\nmail_location = maildir:~/Maildir\n" +
		"passdb {\n  driver = passwd-file\n  args = " + filepath.Join(dir, "users") + "\n}\n" +
		"userdb {\n  driver = passwd-file\n  args = " + filepath.Join(dir, "users") + "\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "dovecot.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestDoveadmAuthAndUser(t *testing.T) {
	dir := doveadmConf(t)
	tests := []struct {
		name string
		run  func([]string, *bytes.Buffer) error
		args []string
		want string
		code int
	}{
		{"auth test ok", runAuth, []string{"test", "-c", dir, "alice", "secret"},
			"passdb: alice auth succeeded\nextra fields:\n  user=alice\n", 0},
		{"auth test wrong", runAuth, []string{"test", "-c", dir, "alice", "nope"},
			"passdb: alice auth failed\nextra fields:\n  user=alice\n", 77},
		{"auth test unknown", runAuth, []string{"test", "-c", dir, "-x", "service=imap", "-x", "rip=192.0.2.1", "zed", "x"},
			"passdb: zed auth failed\nextra fields:\n  user=zed\n", 77},
		{"auth login", runAuth, []string{"login", "-c", dir, "alice", "secret"},
			"passdb: alice auth succeeded\nextra fields:\n  user=alice\nuserdb extra fields:\n  alice\n" +
				"  uid=1000\n  gid=1000\n  home=/home/alice\n  mail=maildir:/srv/mail/alice\n  quota_rule=*:storage=1G\n  auth_mech=PLAIN\n", 0},
		{"user", runUser, []string{"-c", dir, "alice"},
			"field\tvalue\nuid\t1000\ngid\t1000\nhome\t/home/alice\nmail\tmaildir:/srv/mail/alice\nquota_rule\t*:storage=1G\n", 0},
		{"user mail_location", runUser, []string{"-c", dir, "bob"},
			"field\tvalue\nuid\t1001\ngid\t1001\nhome\t/home/bob\nmail\tmaildir:~/Maildir\n", 0},
		{"user -f", runUser, []string{"-c", dir, "-f", "home", "bob"}, "/home/bob\n", 0},
		{"user unknown", runUser, []string{"-c", dir, "nobody"}, "", 67},
		{"user iterate", runUser, []string{"-c", dir, "*"}, "alice\nbob\ncarol\n", 0},
		{"user mask", runUser, []string{"-c", dir, "?o*"}, "bob\n", 0},
		{"user -u", runUser, []string{"-c", dir, "-u", "carol"}, "carol\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := tt.run(tt.args, &out)
			code := 0
			var ee exitError
			if errors.As(err, &ee) {
				code = ee.code
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || out.String() != tt.want {
				t.Fatalf("exit %d, output\n%s\nwant exit %d, output\n%s", code, out.String(), tt.code, tt.want)
			}
		})
	}
}

func runAuth(args []string, out *bytes.Buffer) error { return doveadmAuth(args, out) }
func runUser(args []string, out *bytes.Buffer) error { return doveadmUser(args, out) }

func TestDoveadmUsage(t *testing.T) {
	for _, args := range [][]string{{"auth"}, {"auth", "frob"}, {"auth", "test"}, {"auth", "test", "-x", "color=red", "a", "b"}, {"user"}} {
		var ue usageError
		var err error
		if args[0] == "auth" {
			err = doveadmAuth(args[1:], &bytes.Buffer{})
		} else {
			err = doveadmUser(args[1:], &bytes.Buffer{})
		}
		if !errors.As(err, &ue) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}

func TestHoistConfigFlag(t *testing.T) {
	tests := []struct{ in, want string }{
		{"-c /etc/dovecot user alice", "user -c /etc/dovecot alice"},
		{"-c /etc/dovecot auth test alice pw", "auth test -c /etc/dovecot alice pw"},
		{"-c=/etc/dovecot user *", "user -c /etc/dovecot *"},
		{"user -c /x alice", "user -c /x alice"},
		{"pw -s CRYPT", "pw -s CRYPT"},
	}
	for _, tt := range tests {
		if got := strings.Join(hoistConfigFlag(strings.Fields(tt.in)), " "); got != tt.want {
			t.Errorf("hoistConfigFlag(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestWildcardMatch(t *testing.T) {
	tests := []struct {
		mask, s string
		want    bool
	}{
		{"*", "", true}, {"*", "alice", true}, {"a*", "alice", true}, {"a*", "bob", false},
		{"*@example.com", "al@example.com", true}, {"*@example.com", "al@example.org", false},
		{"?ob", "bob", true}, {"?ob", "bobb", false}, {"a**e", "alice", true}, {"[a]", "a", false},
	}
	for _, tt := range tests {
		if got := wildcardMatch(tt.mask, tt.s); got != tt.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", tt.mask, tt.s, got)
		}
	}
}
