package userdb

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"postcote/internal/config/doveconf"
	"postcote/internal/maillog"
	"postcote/internal/sasl"
)

// sysNow is the clock of the expiry tests: 2025-11-25, day 20417.
var sysNow = time.Date(2025, 11, 25, 12, 0, 0, 0, time.UTC)

// cryptOf returns a cheap SHA256-crypt hash of pw, as passwd(1) would
// store it (without a {SCHEME} prefix).
func cryptOf(t testing.TB, pw string) string {
	t.Helper()
	h, err := GenerateRounds("SHA256-CRYPT", pw, 1000)
	if err != nil {
		t.Fatal(err)
	}
	_, data := SplitScheme(h)
	return data
}

// sysFixture writes passwd, group and shadow files covering the cases the
// drivers must tell apart and returns the SystemIDs over them.
func sysFixture(t testing.TB) (*SystemIDs, string, string) {
	t.Helper()
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	group := filepath.Join(dir, "group")
	shadow := filepath.Join(dir, "shadow")
	writeFile(t, passwd, strings.Join([]string{
		"root:x:0:0:root:/root:/bin/bash",
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
		"# a comment",
		"",
		"alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash",
		"bob:x:1001:1001::/home/bob:/bin/sh",
		"carol:x:1002:1002::/home/carol:/bin/sh",
		"dave:x:1003:1003::/home/dave:/bin/sh",
		"erin:x:1004:1004::/home/erin:/bin/sh",
		"frank:x:1005:1005::/home/frank:/bin/sh",
		"grace:x:1006:1006::/home/grace:/bin/sh",
		"heidi:" + cryptOf(t, "heidi pw") + ":1007:1007::/home/heidi:/bin/sh",
		"ivan:x:1008:1008::/home/ivan:/bin/sh",
		"judy:x:notanumber:1009::/home/judy:/bin/sh",
		"mallory:x:1010:1010::/home/mallory:/bin/sh",
		"yann:x:1011:1011::/home/yann:/bin/sh",
		"vmail:x:5000:5000::/var/mail:/usr/sbin/nologin",
		"alice:x:4000:4000::/duplicate:/bin/sh",
		"+nisuser",
		"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
	}, "\n")+"\n")
	writeFile(t, group, "root:x:0:\nalice:x:1000:\nvmail:x:5000:\n")
	writeFile(t, shadow, strings.Join([]string{
		"root:*:19000:0:99999:7:::",
		"alice:" + cryptOf(t, "alice pw") + ":19000:0:99999:7:::",
		"bob:" + cryptOf(t, "bob pw") + ":19000::::::",
		"carol:!" + cryptOf(t, "carol pw") + ":19000:0:99999:7:::",
		"dave:" + cryptOf(t, "dave pw") + ":19000:0:99999:7::19500:",
		"erin::19000:0:99999:7:::",
		"frank:" + cryptOf(t, "frank pw") + ":0:0:99999:7:::",
		"grace:" + cryptOf(t, "grace pw") + ":19000:0:90:7:::",
		"mallory:" + cryptOf(t, "mallory pw") + ":abc:0:99999:7:::",
		// mkpasswd -m yescrypt -R 1, password "pass1".
		"yann:$y$j75$8bcHCEb1n/K1qAkvLeswt1$ZK9kc91BZG2aBKS9pMtpp9bby5ydd2GCtzP63MvMk62:19000:0:99999:7:::",
		"vmail:*:19000:0:99999:7:::",
	}, "\n")+"\n")
	return NewSystemFiles(passwd, group, shadow), passwd, shadow
}

func sysOptions(files *SystemIDs) (Options, *maillog.Buffer) {
	buf := &maillog.Buffer{}
	return Options{Log: maillog.New(buf, "test", false), IDs: files}, buf
}

func TestSystemFilesLookup(t *testing.T) {
	files, _, _ := sysFixture(t)
	e, ok, err := files.LookupPasswd("alice")
	if err != nil || !ok || e.UID != 1000 || e.Home != "/home/alice" || e.Gecos != "Alice,,," {
		t.Errorf("alice = %+v %v %v (first line must win)", e, ok, err)
	}
	if _, ok, err := files.LookupPasswd("+nisuser"); ok || err != nil {
		t.Errorf("NIS compat line: %v %v", ok, err)
	}
	if _, _, err := files.LookupPasswd("judy"); !errors.Is(err, ErrMalformedEntry) || !strings.Contains(err.Error(), ":14:") {
		t.Errorf("judy: %v", err)
	}
	sp, ok, err := files.LookupShadow("dave")
	if err != nil || !ok || sp.Expire != 19500 || sp.InactiveDays != -1 || sp.MaxDays != 99999 {
		t.Errorf("dave shadow = %+v %v %v", sp, ok, err)
	}
	if _, _, err := files.LookupShadow("mallory"); !errors.Is(err, ErrMalformedEntry) {
		t.Errorf("mallory: %v", err)
	}
	if uid, ok := files.LookupUID("vmail"); uid != 5000 || !ok {
		t.Errorf("LookupUID(vmail) = %d %v", uid, ok)
	}
	missing := NewSystemFiles(filepath.Join(t.TempDir(), "none"), "", filepath.Join(t.TempDir(), "none"))
	if _, _, err := missing.LookupShadow("alice"); err == nil {
		t.Error("missing shadow file: no error")
	}
}

// verifyCase is one login against a passdb: the status and a part of the
// reason expected, or an error (the back end could not answer).
type verifyCase struct {
	user, pw string
	want     PassStatus
	reason   string
	wantErr  bool
}

func checkVerify(t *testing.T, db PassDB, tests []verifyCase) {
	t.Helper()
	for _, tt := range tests {
		res, err := db.Verify(context.Background(), Request{User: tt.user, Service: "imap", RemoteIP: "192.0.2.1"}, tt.pw)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s: no error", tt.user)
			}
			continue
		}
		if err != nil || res.Status != tt.want || !strings.Contains(res.Reason, tt.reason) {
			t.Errorf("%s/%q: %v %q %v, want %v %q", tt.user, tt.pw, res.Status, res.Reason, err, tt.want, tt.reason)
		}
	}
}

func TestShadowPassDB(t *testing.T) {
	files, _, _ := sysFixture(t)
	opts, buf := sysOptions(files)
	db, err := NewPassDB("shadow", "blocking=no", opts)
	if err != nil {
		t.Fatal(err)
	}
	db.(*shadowPassDB).now = func() time.Time { return sysNow }
	checkVerify(t, db, []verifyCase{
		{"alice", "alice pw", PassOK, "", false},
		{"alice", "wrong", PassMismatch, "password mismatch", false},
		{"bob", "bob pw", PassOK, "", false}, // empty aging fields
		{"carol", "carol pw", PassMismatch, "locked", false},
		{"root", "anything", PassMismatch, "disabled", false},
		{"dave", "dave pw", PassMismatch, "expired", false},
		{"erin", "", PassMismatch, "no password", false},
		{"erin", "x", PassMismatch, "no password", false},
		{"frank", "frank pw", PassOK, "", false}, // aging is PAM's account check, not the shadow driver's
		{"grace", "grace pw", PassOK, "", false},
		{"yann", "pass1", PassOK, "", false},
		{"yann", "pass2", PassMismatch, "mismatch", false},
		{"nosuch", "x", PassUnknownUser, "", false},
		{"mallory", "mallory pw", 0, "", true},
		{"alice\x00", "alice pw", PassUnknownUser, "", false},
		{"ali*", "alice pw", PassUnknownUser, "", false},
	})
	if strings.Contains(buf.String(), "alice pw") {
		t.Error("a password was logged")
	}
	if _, err := NewPassDB("shadow", "nosuch=1", opts); err == nil {
		t.Error("unknown arg accepted")
	}
	// Credentials for doveadm auth lookup.
	stored, scheme, res, err := db.(CredentialsDB).LookupCredentials(context.Background(), Request{User: "alice"})
	if err != nil || res.Status != PassOK || scheme != "CRYPT" || !strings.HasPrefix(stored, "$5$") {
		t.Errorf("credentials: %q %q %v %v", stored, scheme, res, err)
	}
}

func TestPasswdPassDB(t *testing.T) {
	files, _, _ := sysFixture(t)
	opts, _ := sysOptions(files)
	db, err := NewPassDB("passwd", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	checkVerify(t, db, []verifyCase{
		{"heidi", "heidi pw", PassOK, "", false},
		{"heidi", "nope", PassMismatch, "mismatch", false},
		{"alice", "alice pw", PassMismatch, "shadow", false},
		{"nosuch", "x", PassUnknownUser, "", false},
	})
	if _, err := db.Verify(context.Background(), Request{User: "judy"}, "x"); !errors.Is(err, ErrMalformedEntry) {
		t.Errorf("judy: %v", err)
	}
}

func TestPAMArgs(t *testing.T) {
	tests := []struct {
		args string
		want pamArgs
		err  bool
	}{
		{"", pamArgs{service: "dovecot"}, false},
		{"dovecot", pamArgs{service: "dovecot"}, false},
		{"%s", pamArgs{service: "%s"}, false},
		{"*", pamArgs{service: "%Ls"}, false},
		{"session=yes setcred=yes failure_show_msg=yes max_requests=100 cache_key=%u%r imap",
			pamArgs{service: "imap", session: true, setcred: true, failureShowMsg: true, maxRequests: 100, cacheKey: "%u%r"}, false},
		{"-session -setcred blocking=yes", pamArgs{service: "dovecot", session: true, setcred: true}, false},
		{"blocking=no", pamArgs{service: "dovecot"}, false},
		{"session=no mail", pamArgs{service: "mail"}, false},
		{"max_requests=x", pamArgs{}, true},
		{"bogus other", pamArgs{}, true},
		{"session=maybe x", pamArgs{}, true},
		{"%{nosuchvar}", pamArgs{}, true},
	}
	for _, tt := range tests {
		got, err := parsePAMArgs(tt.args)
		if (err != nil) != tt.err || (!tt.err && got != tt.want) {
			t.Errorf("parsePAMArgs(%q) = %+v, %v", tt.args, got, err)
		}
	}
}

func TestPasswdUserDB(t *testing.T) {
	files, passwdPath, _ := sysFixture(t)
	opts, buf := sysOptions(files)
	db, err := NewUserDB("passwd", "", "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	f, found, err := db.Lookup(ctx, Request{User: "alice"})
	if err != nil || !found {
		t.Fatalf("alice: %v %v", found, err)
	}
	for k, v := range map[string]string{"uid": "1000", "gid": "1000", "home": "/home/alice", "system_groups_user": "alice"} {
		if f.Value(k) != v {
			t.Errorf("alice %s = %q, want %q", k, f.Value(k), v)
		}
	}
	if _, found, err := db.Lookup(ctx, Request{User: "nosuch"}); found || err != nil {
		t.Errorf("nosuch: %v %v", found, err)
	}
	if _, _, err := db.Lookup(ctx, Request{User: "judy"}); !errors.Is(err, ErrMalformedEntry) {
		t.Errorf("judy: %v", err)
	}
	// Iteration: Dovecot's default range (uid >= 500, gid >= 1), and a
	// configured one.
	var all []string
	if err := db.Iterate(ctx, func(u string) error { all = append(all, u); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "mallory", "yann", "vmail", "nobody"}
	if !slices.Equal(all, want) {
		t.Errorf("Iterate = %v, want %v", all, want)
	}
	var ranged []string
	err = iterateUserDB(ctx, db, IDRange{FirstUID: 1000, LastUID: 1003, FirstGID: 1}, func(u string) error { ranged = append(ranged, u); return nil })
	if err != nil || !slices.Equal(ranged, []string{"alice", "bob", "carol", "dave"}) {
		t.Errorf("ranged = %v %v", ranged, err)
	}
	stop := errors.New("stop")
	if err := db.Iterate(ctx, func(string) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("callback error: %v", err)
	}
	// Edits apply without a reload.
	data, _ := os.ReadFile(passwdPath)
	writeFile(t, passwdPath, string(data)+"newbie:x:1500:1500::/home/newbie:/bin/sh\n")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(passwdPath, later, later); err != nil {
		t.Fatal(err)
	}
	if f, found, err := db.Lookup(ctx, Request{User: "newbie"}); !found || err != nil || f.Value("uid") != "1500" {
		t.Errorf("after edit: %v %v %v", f, found, err)
	}
	// Old-style template args apply like override_fields, with a warning.
	legacy, err := NewUserDB("passwd", "blocking=no home=/srv/mail/%u mail=maildir:~/Maildir", "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	f, _, _ = legacy.Lookup(ctx, Request{User: "bob"})
	if f.Value("home") != "/srv/mail/bob" || f.Value("mail") != "maildir:~/Maildir" || f.Value("uid") != "1001" {
		t.Errorf("legacy args: %v", f)
	}
	if !strings.Contains(buf.String(), "Move templates args to override_fields") {
		t.Errorf("no warning: %s", buf.String())
	}
	if _, err := NewUserDB("passwd", "blocking=maybe", "", "", opts); err == nil {
		t.Error("blocking=maybe accepted")
	}
}

// Guide 002: "userdb { driver = passwd  override_fields = uid=vmail
// gid=vmail home=/var/mail/%n/ }" — system users, mail owned by vmail.
func TestPasswdUserDBGuide002Overrides(t *testing.T) {
	files, _, _ := sysFixture(t)
	opts, _ := sysOptions(files)
	db, err := NewUserDB("passwd", "", "", "uid=vmail gid=vmail home=/var/mail/%n/", opts)
	if err != nil {
		t.Fatal(err)
	}
	co := DefaultCheckerOptions()
	co.IDs, co.FailureDelay, co.FirstValidUID = files, 0, 1000
	c := NewChecker(nil, []UserDB{db}, co)
	info, found, err := c.LookupUser(context.Background(), "lmtp", "bob")
	if err != nil || !found {
		t.Fatalf("bob: %v %v", found, err)
	}
	if info.UID != 5000 || info.GID != 5000 || info.Home != "/var/mail/bob/" || info.Fields.Value("system_groups_user") != "bob" {
		t.Errorf("bob = %+v", info)
	}
	// The range filter survives the override_fields wrapper.
	var names []string
	if err := iterateUserDB(context.Background(), db, IDRange{FirstUID: 5000, FirstGID: 1}, func(u string) error {
		names = append(names, u)
		return nil
	}); err != nil || !slices.Equal(names, []string{"vmail", "nobody"}) {
		t.Errorf("iterate through template = %v %v", names, err)
	}
}

// guide004Conf is the authentication part of guide 004's local.conf.
const guide004Conf = `# Disable plaintext authentication
disable_plaintext_auth = yes

# Authenticate using PAM
auth_mechanisms = plain
userdb {
  driver = passwd
}
passdb {
  driver = pam
}

# Use Maildir
mail_location = maildir:~/Maildir
namespace inbox {
  inbox = yes
  #location =
  #prefix =
  separator = /
}
`

// TestGuide004 builds guide 004's passdb and userdb from its
// configuration text with the account files injected and logs in.
func TestGuide004(t *testing.T) {
	files, _, _ := sysFixture(t)
	cfg, err := doveconf.Parse("local.conf", []byte(guide004Conf))
	if err != nil {
		t.Fatal(err)
	}
	opts, buf := sysOptions(files)
	var passdbs []PassDB
	for _, sec := range cfg.SectionsOf("passdb") {
		driver, _ := sec.Get("driver")
		args, _ := sec.Get("args")
		db, err := NewPassDB(driver, args, opts)
		if err != nil {
			t.Fatalf("passdb %s: %v", driver, err)
		}
		passdbs = append(passdbs, db)
	}
	var userdbs []UserDB
	for _, sec := range cfg.SectionsOf("userdb") {
		driver, _ := sec.Get("driver")
		args, _ := sec.Get("args")
		def, _ := sec.Get("default_fields")
		over, _ := sec.Get("override_fields")
		db, err := NewUserDB(driver, args, def, over, opts)
		if err != nil {
			t.Fatalf("userdb %s: %v", driver, err)
		}
		userdbs = append(userdbs, db)
	}
	if len(passdbs) != 1 || len(userdbs) != 1 {
		t.Fatalf("%d passdbs, %d userdbs", len(passdbs), len(userdbs))
	}
	co := DefaultCheckerOptions()
	co.Log, co.IDs, co.FailureDelay, co.FirstValidUID, co.LastValidUID = opts.Log, files, 0, 1000, 60000
	c := NewChecker(passdbs, userdbs, co)
	ctx := context.Background()
	login := func(user, pw string) (string, error) {
		return c.CheckPassword(ctx, sasl.Request{Service: "imap", User: user, Password: pw,
			Remote: &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}})
	}
	if PAMLibrary {
		// Real PAM asks /etc/pam.d/dovecot about real accounts, not the
		// fixture's: TestPAMSystemAccount covers logins in this build.
		t.Log("libpam build: fixture logins skipped")
	} else {
		if u, err := login("alice", "alice pw"); err != nil || u != "alice" {
			t.Errorf("alice: %q %v", u, err)
		}
		if u, err := login("Yann", "pass1"); err != nil || u != "yann" { // %Lu
			t.Errorf("yann (yescrypt): %q %v", u, err)
		}
		for _, bad := range [][2]string{{"alice", "nope"}, {"carol", "carol pw"}, {"dave", "dave pw"}, {"nosuch", "x"}, {"erin", ""}} {
			if _, err := login(bad[0], bad[1]); !errors.Is(err, sasl.ErrAuthFailed) {
				t.Errorf("%s: %v, want auth failure", bad[0], err)
			}
		}
	}
	info, found, err := c.LookupUser(ctx, "imap", "alice")
	if err != nil || !found || info.Home != "/home/alice" || info.UID != 1000 {
		t.Errorf("alice userdb: %+v %v %v", info, found, err)
	}
	if loc := cfg.GetDefault("mail_location"); loc != "maildir:~/Maildir" {
		t.Errorf("mail_location = %q", loc)
	}
	// root is below first_valid_uid: no mail access.
	if _, _, err := c.LookupUser(ctx, "imap", "root"); !errors.Is(err, sasl.ErrTempFail) {
		t.Errorf("root: %v", err)
	}
	var listed []string
	if err := c.IterateUsers(ctx, func(u string) error { listed = append(listed, u); return nil }); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(listed, "root") || slices.Contains(listed, "daemon") || slices.Contains(listed, "nobody") || !slices.Contains(listed, "alice") {
		t.Errorf("doveadm user '*' = %v", listed)
	}
	if strings.Contains(buf.String(), "alice pw") {
		t.Error("a password was logged")
	}
}

// An unreadable or missing shadow file is reported at start-up, and
// logins then fail as temporary failures, never as wrong passwords.
func TestShadowUnreadable(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	writeFile(t, passwd, "alice:x:1000:1000::/home/alice:/bin/sh\n")
	files := NewSystemFiles(passwd, filepath.Join(dir, "group"), filepath.Join(dir, "missing-shadow"))
	opts, buf := sysOptions(files)
	drivers := []string{"shadow", "pam"}
	if PAMLibrary {
		drivers = drivers[:1] // pam reads no files in this build
	}
	for _, driver := range drivers {
		db, err := NewPassDB(driver, "", opts)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "Error: passdb "+driver+": stat "+filepath.Join(dir, "missing-shadow")) {
			t.Errorf("%s: start-up log: %s", driver, buf.String())
		}
		if _, err := db.Verify(context.Background(), Request{User: "alice"}, "pw"); err == nil {
			t.Errorf("%s: no error", driver)
		}
	}
}
