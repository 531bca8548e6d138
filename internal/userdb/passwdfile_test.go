package userdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/maillog"
)

// mapIDs resolves names from fixed maps.
type mapIDs struct{ users, groups map[string]int }

func (m mapIDs) LookupUID(n string) (int, bool) { v, ok := m.users[n]; return v, ok }
func (m mapIDs) LookupGID(n string) (int, bool) { v, ok := m.groups[n]; return v, ok }

var testIDs = mapIDs{users: map[string]int{"vmail": 5000, "root": 0}, groups: map[string]int{"vmail": 5000, "mail": 8}}

func testOptions(t *testing.T) (Options, *maillog.Buffer) {
	buf := &maillog.Buffer{}
	return Options{Log: maillog.New(buf, "test", false), IDs: testIDs}, buf
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestParsePasswdLine(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		userdb  bool
		want    *Entry
		wantErr string
	}{
		{"blank", "", true, nil, ""},
		{"comment", "# a comment:x", true, nil, ""},
		{"no user", ":pass:1:1", true, nil, ""},
		{"user only", "alice", true, &Entry{User: "alice", UID: -1, GID: -1, NoUserdb: true}, ""},
		{"user and password", "alice:{PLAIN}pw", true, &Entry{User: "alice", Password: "{PLAIN}pw", HasPass: true, UID: -1, GID: -1, NoUserdb: true}, ""},
		{"empty password", "alice:", true, &Entry{User: "alice", HasPass: true, UID: -1, GID: -1, NoUserdb: true}, ""},
		{"uid only", "alice:pw:1000", true, &Entry{User: "alice", Password: "pw", HasPass: true, UID: 1000, GID: -1, NoUserdb: true}, ""},
		{"empty uid gid", "alice:pw::", true, &Entry{User: "alice", Password: "pw", HasPass: true, UID: -1, GID: -1}, ""},
		{"uid gid", "alice:pw:1000:1001", true, &Entry{User: "alice", Password: "pw", HasPass: true, UID: 1000, GID: 1001}, ""},
		{"names", "alice:pw:vmail:mail", true, &Entry{User: "alice", Password: "pw", HasPass: true, UID: 5000, GID: 8}, ""},
		{"passdb ignores uid", "alice:pw:bogus:bogus::/home/a", false, &Entry{User: "alice", Password: "pw", HasPass: true, UID: -1, GID: -1}, ""},
		{"full", "alice:pw:1000:1000:Alice A:/home/alice:/bin/sh:userdb_mail=maildir:~/Maildir userdb_quota_rule=*:storage=1G allow_nets=127.0.0.1",
			true, &Entry{User: "alice", Password: "pw", HasPass: true, UID: 1000, GID: 1000, Home: "/home/alice",
				Extra: []string{"userdb_mail=maildir:~/Maildir", "userdb_quota_rule=*:storage=1G", "allow_nets=127.0.0.1"}}, ""},
		{"guide 003 short", "info@example.jp:{CRYPT}$2y$05$abc::::::", true,
			&Entry{User: "info@example.jp", Password: "{CRYPT}$2y$05$abc", HasPass: true, UID: -1, GID: -1}, ""},
		{"guide 003 explicit", "info@example.jp:{CRYPT}$2y$05$abc:vmail:vmail::/home/vmail/%d/%n::userdb_mail=sdbox:~/dbox", true,
			&Entry{User: "info@example.jp", Password: "{CRYPT}$2y$05$abc", HasPass: true, UID: 5000, GID: 5000,
				Home: "/home/vmail/%d/%n", Extra: []string{"userdb_mail=sdbox:~/dbox"}}, ""},
		{"old format mail", "bob:pw:1000:1000::/home/bob:::maildir:~/Mail", true,
			&Entry{User: "bob", Password: "pw", HasPass: true, UID: 1000, GID: 1000, Home: "/home/bob", Extra: []string{"userdb_mail=maildir:~/Mail"}}, ""},
		{"pam crypt", "bob:abcdefghijklm[13]", true, &Entry{User: "bob", Password: "{CRYPT}abcdefghijklm", HasPass: true, UID: -1, GID: -1, NoUserdb: true}, ""},
		{"pam md5", "bob:0cc175b9c0f1b6a831c399e269772661[34]", true, &Entry{User: "bob", Password: "{PLAIN-MD5}0cc175b9c0f1b6a831c399e269772661", HasPass: true, UID: -1, GID: -1, NoUserdb: true}, ""},
		{"nopassword", "bob::::::: nopassword", true, &Entry{User: "bob", HasPass: true, UID: -1, GID: -1, Extra: []string{"nopassword"}}, ""},
		{"crlf", "bob:pw\r", true, &Entry{User: "bob", Password: "pw", HasPass: true, UID: -1, GID: -1, NoUserdb: true}, ""},
		{"root uid", "bob:pw:0:100", true, nil, "invalid UID '0'"},
		{"unknown uid name", "bob:pw:nobody-here:100", true, nil, "invalid UID 'nobody-here'"},
		{"bad gid", "bob:pw:1000:-5", true, nil, "invalid GID '-5'"},
		{"gid 0", "bob:pw:1000:0", true, nil, "invalid GID '0'"},
		{"huge uid", "bob:pw:99999999999:1", true, nil, "invalid UID"},
		{"bad digest-md5", "bob:abc[56]", true, nil, "invalid password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePasswdLine(tt.line, tt.userdb, testIDs)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParsePasswdFileArgs(t *testing.T) {
	tests := []struct {
		args                 string
		allowScheme          bool
		scheme, format, path string
		wantErr              bool
	}{
		{"scheme=CRYPT username_format=%u /etc/dovecot/users", true, "CRYPT", "%u", "/etc/dovecot/users", false},
		{"username_format=%n /etc/dovecot/%d/passwd", false, "", "%n", "/etc/dovecot/%d/passwd", false},
		{"/etc/dovecot/users", true, "", "%u", "/etc/dovecot/users", false},
		{"/path with space/users", true, "", "%u", "/path with space/users", false},
		{"scheme=SHA512-CRYPT /x", true, "SHA512-CRYPT", "%u", "/x", false},
		{"scheme=CRYPT /x", false, "", "", "", true},
		{"scheme=NOPE /x", true, "", "", "", true},
		{"bogus=1 /x", true, "", "", "", true},
		{"scheme=CRYPT", true, "", "", "", true},
		{"", true, "", "", "", true},
	}
	for _, tt := range tests {
		s, f, p, err := parsePasswdFileArgs("passdb", tt.args, tt.allowScheme)
		if (err != nil) != tt.wantErr || s != tt.scheme || f != tt.format || p != tt.path {
			t.Errorf("parse(%q) = %q %q %q %v", tt.args, s, f, p, err)
		}
	}
}

const usersFile = `# users of example.jp
info@example.jp:{PLAIN}info-pw::::::
sales@example.jp:{SHA512-CRYPT}$6$wDHYOPf/cNF4myd4$9UZK6gsChcTJ2FD8hio.PtuZtJlUOfWL9ywTvaYsC1ZcVw5oKpKtJ6qpzNH2/ujfmRUkXd99GBwzddco7mxvf.:vmail:vmail::/home/vmail/example.jp/sales::userdb_mail=maildir:~/Maildir userdb_quota_rule=*:storage=1G

bad@example.jp:{PLAIN}x:0:0::/root
crypt@example.jp:$2y$05$cFavhDQAf/nLMrGgrOehfOuoRLfKeH823iYRXycmbzt6VJIo0fdg2:1001:1001::/home/crypt
info@example.jp:{PLAIN}duplicate
open@example.jp::::::: nopassword userdb_mail=maildir:%h/mail-%n
closed@example.jp:{PLAIN}pw:::::: nologin reason=Moved
renamed@example.jp:{PLAIN}pw:::::: user=canonical@example.jp
passonly@example.jp:{PLAIN}pw
`

func TestPasswdFilePassDB(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	writeFile(t, path, usersFile)
	opts, logBuf := testOptions(t)
	db, err := NewPassDB("passwd-file", "scheme=CRYPT username_format=%u "+path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		user, pw string
		want     PassStatus
	}{
		{"info@example.jp", "info-pw", PassOK},
		{"info@example.jp", "wrong", PassMismatch},
		{"sales@example.jp", "Secret pw 1!", PassOK},
		{"sales@example.jp", "Secret pw 1", PassMismatch},
		{"crypt@example.jp", "Secret pw 1!", PassOK}, // bare bcrypt in scheme=CRYPT
		{"bad@example.jp", "x", PassOK},              // uid checks are the userdb's business
		{"open@example.jp", "anything", PassOK},
		{"nobody@example.jp", "x", PassUnknownUser},
		{"INFO@example.jp", "info-pw", PassUnknownUser}, // case matters here; the Checker lower-cases
	}
	for _, tt := range tests {
		res, err := db.Verify(ctx, Request{User: tt.user, Service: "imap"}, tt.pw)
		if err != nil || res.Status != tt.want {
			t.Errorf("Verify(%s, %q) = %v, %v; want %v", tt.user, tt.pw, res.Status, err, tt.want)
		}
	}
	res, _ := db.Verify(ctx, Request{User: "sales@example.jp"}, "Secret pw 1!")
	if res.UserdbFields.Value("mail") != "maildir:~/Maildir" || res.UserdbFields.Value("quota_rule") != "*:storage=1G" {
		t.Errorf("userdb fields = %v", res.UserdbFields)
	}
	res, _ = db.Verify(ctx, Request{User: "renamed@example.jp"}, "pw")
	if res.Fields.Value("user") != "canonical@example.jp" {
		t.Errorf("passdb fields = %v", res.Fields)
	}
	log := logBuf.String()
	if !strings.Contains(log, path+":7: user info@example.jp exists more than once (first at line 2)") {
		t.Errorf("duplicate not reported with file:line:\n%s", log)
	}
	if strings.Contains(log, "info-pw") || strings.Contains(log, "Secret pw") || strings.Contains(log, "wrong") {
		t.Errorf("log mentions a password:\n%s", log)
	}
}

func TestPasswdFileUserDB(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	writeFile(t, path, usersFile)
	opts, logBuf := testOptions(t)
	db, err := NewUserDB("passwd-file", "username_format=%u "+path,
		"uid=vmail gid=vmail home=/home/vmail/%d/%n mail=sdbox:~/dbox", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		user  string
		found bool
		want  string
	}{
		{"info@example.jp", true, "uid=vmail gid=vmail home=/home/vmail/example.jp/info mail=sdbox:~/dbox"},
		{"sales@example.jp", true, "uid=5000 gid=5000 home=/home/vmail/example.jp/sales mail=maildir:~/Maildir quota_rule=*:storage=1G"},
		{"crypt@example.jp", true, "uid=1001 gid=1001 home=/home/crypt mail=sdbox:~/dbox"},
		{"open@example.jp", true, "uid=vmail gid=vmail home=/home/vmail/example.jp/open mail=maildir:/home/vmail/example.jp/open/mail-open"},
		{"bad@example.jp", false, ""},
		{"nobody@example.jp", false, ""},
		{"passonly@example.jp", false, ""},
	}
	for _, tt := range tests {
		f, found, err := db.Lookup(ctx, Request{User: tt.user, Service: "lmtp"})
		if err != nil || found != tt.found || f.String() != tt.want {
			t.Errorf("Lookup(%s) = %q, %v, %v; want %q, %v", tt.user, f.String(), found, err, tt.want, tt.found)
		}
	}
	if !strings.Contains(logBuf.String(), path+":11: user passonly@example.jp is missing userdb info") {
		t.Errorf("passdb-only line not reported:\n%s", logBuf.String())
	}
	if !strings.Contains(logBuf.String(), path+":5: user bad@example.jp has invalid UID '0'") {
		t.Errorf("bad line not reported with file:line:\n%s", logBuf.String())
	}
	var all []string
	if err := db.Iterate(ctx, func(u string) error { all = append(all, u); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []string{"info@example.jp", "sales@example.jp", "crypt@example.jp", "open@example.jp", "closed@example.jp", "renamed@example.jp"}
	if !reflect.DeepEqual(all, want) {
		t.Errorf("Iterate = %v, want %v", all, want)
	}

	// override_fields win over the file.
	db2, err := NewUserDB("passwd-file", path, "", "home=/home/virtual/%u", opts)
	if err != nil {
		t.Fatal(err)
	}
	f, _, _ := db2.Lookup(ctx, Request{User: "sales@example.jp"})
	if f.Value("home") != "/home/virtual/sales@example.jp" || f.Value("mail") != "maildir:~/Maildir" {
		t.Errorf("override: %v", f)
	}
}

// TestPasswdFileReload: edits apply on the next lookup without a reload,
// including a same-size rewrite and a rename over the file; a deleted
// file is a back-end error for a fixed path.
func TestPasswdFileReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	writeFile(t, path, "alice:{PLAIN}one\n")
	opts, _ := testOptions(t)
	db, err := NewPassDB("passwd-file", path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(step, user, pw string, want PassStatus) {
		t.Helper()
		res, err := db.Verify(ctx, Request{User: user}, pw)
		if err != nil || res.Status != want {
			t.Fatalf("%s: Verify(%s,%s) = %v, %v; want %v", step, user, pw, res.Status, err, want)
		}
	}
	check("initial", "alice", "one", PassOK)

	// Same size, different content: the mtime must tell. Set it
	// explicitly so the test does not depend on timestamp granularity.
	writeFile(t, path, "alice:{PLAIN}two\n")
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	check("rewrite", "alice", "two", PassOK)
	check("rewrite", "alice", "one", PassMismatch)

	// Rename over: new inode.
	tmp := filepath.Join(dir, "users.tmp")
	writeFile(t, tmp, "alice:{PLAIN}two\nbob:{PLAIN}three\n")
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	check("rename", "bob", "three", PassOK)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Verify(ctx, Request{User: "alice"}, "two"); err == nil {
		t.Fatal("missing file: no error")
	}
	writeFile(t, path, "alice:{PLAIN}four\n")
	check("recreated", "alice", "four", PassOK)
}

// TestPasswdFilePathVariables: per-domain files; a missing one is an
// unknown user; a name cannot walk out of the directory.
func TestPasswdFilePathVariables(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "auth", "example.jp", "passwd"), "info:{PLAIN}jp\n")
	writeFile(t, filepath.Join(dir, "auth", "example.com", "passwd"), "info:{PLAIN}com\n")
	writeFile(t, filepath.Join(dir, "passwd"), "info:{PLAIN}outside\n")
	opts, _ := testOptions(t)
	db, err := NewPassDB("passwd-file", "username_format=%n "+filepath.Join(dir, "auth", "%d", "passwd"), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		user, pw string
		want     PassStatus
	}{
		{"info@example.jp", "jp", PassOK},
		{"info@example.com", "com", PassOK},
		{"info@example.com", "jp", PassMismatch},
		{"info@example.org", "jp", PassUnknownUser},
		{"info@..", "outside", PassUnknownUser},
		{"info@../..", "outside", PassUnknownUser},
		{"info@x/../..", "outside", PassUnknownUser},
		{"info", "outside", PassUnknownUser},
	}
	for _, tt := range tests {
		res, err := db.Verify(ctx, Request{User: tt.user}, tt.pw)
		if err != nil || res.Status != tt.want {
			t.Errorf("Verify(%s) = %v, %v; want %v", tt.user, res.Status, err, tt.want)
		}
	}
	udb, err := NewUserDB("passwd-file", filepath.Join(dir, "auth", "%d", "passwd"), "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := udb.Iterate(ctx, func(string) error { return nil }); !errors.Is(err, ErrIterateUnsupported) {
		t.Errorf("Iterate with variables: %v", err)
	}
}

func TestPasswdFileLongAndBadLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	content := "a:{PLAIN}a\n" + "long:" + strings.Repeat("x", maxPasswdLine+10) + "\n" + "b:{PLAIN}b\x00:1\n" + "c:{PLAIN}c"
	writeFile(t, path, content)
	opts, logBuf := testOptions(t)
	db, err := NewPassDB("passwd-file", path, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"a", "c"} {
		res, err := db.Verify(context.Background(), Request{User: u}, u)
		if err != nil || res.Status != PassOK {
			t.Errorf("%s: %v %v", u, res.Status, err)
		}
	}
	res, _ := db.Verify(context.Background(), Request{User: "long"}, "x")
	if res.Status != PassUnknownUser {
		t.Errorf("long line user: %v", res.Status)
	}
	if !strings.Contains(logBuf.String(), path+":2: line longer than") {
		t.Errorf("long line not reported:\n%s", logBuf.String())
	}
}

func TestNewDBErrors(t *testing.T) {
	opts, _ := testOptions(t)
	for _, d := range []string{"checkpassword", "bsdauth"} {
		if _, err := NewPassDB(d, "", opts); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), d) {
			t.Errorf("passdb %s: %v", d, err)
		}
	}
	for _, d := range []string{"nss", "prefetch"} {
		if _, err := NewUserDB(d, "", "", "", opts); !errors.Is(err, ErrNotSupported) {
			t.Errorf("userdb %s: %v", d, err)
		}
	}
	if _, err := NewPassDB("frobnicate", "", opts); err == nil || !strings.Contains(err.Error(), `"frobnicate"`) {
		t.Errorf("unknown driver: %v", err)
	}
	if _, err := NewUserDB("frobnicate", "", "", "", opts); err == nil || !strings.Contains(err.Error(), `"frobnicate"`) {
		t.Errorf("unknown driver: %v", err)
	}
	if _, err := NewPassDB("static", "uid=1", opts); err == nil {
		t.Error("static passdb without password accepted")
	}
	if _, err := NewUserDB("static", "allow_all_users=maybe", "", "", opts); err == nil {
		t.Error("bad allow_all_users accepted")
	}
	for _, bad := range [][3]string{
		{"passwd-file", "username_format=%q /x", ""},
		{"passwd-file", "/etc/%{nosuch}/passwd", ""},
		{"passwd-file", "/x", "home=/home/%z"},
		{"static", "uid=1 home=/home/%{bogus}", ""},
	} {
		if _, err := NewUserDB(bad[0], bad[1], bad[2], "", opts); err == nil || !strings.Contains(err.Error(), "unknown variable") {
			t.Errorf("%v: %v", bad, err)
		}
	}
	if _, err := NewPassDB("static", "password=%{x}", opts); err == nil {
		t.Error("bad static password template accepted")
	}
	if _, err := NewPassDB("passwd-file", "scheme=NOPE /x", opts); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("bad scheme: %v", err)
	}
}

func TestStatic(t *testing.T) {
	opts, _ := testOptions(t)
	ctx := context.Background()
	p, err := NewPassDB("static", "password=s3cret allow_nets=127.0.0.0/8", opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Verify(ctx, Request{User: "anyone"}, "s3cret")
	if err != nil || res.Status != PassOK || res.Fields.Value("allow_nets") != "127.0.0.0/8" {
		t.Errorf("static: %+v %v", res, err)
	}
	if res, _ := p.Verify(ctx, Request{User: "anyone"}, "nope"); res.Status != PassMismatch {
		t.Errorf("static wrong pw: %v", res.Status)
	}
	p2, _ := NewPassDB("static", "password={SHA256}5+DVl9laTuMDNVwNUnWIHv+tdJ2VpwUyUV1uxp0vqpA=", opts)
	if res, _ := p2.Verify(ctx, Request{User: "x"}, "Secret pw 1!"); res.Status != PassOK {
		t.Errorf("static hashed: %v", res.Status)
	}
	p3, _ := NewPassDB("static", "nopassword", opts)
	if res, _ := p3.Verify(ctx, Request{User: "x"}, "whatever"); res.Status != PassOK {
		t.Errorf("static nopassword: %v", res.Status)
	}
	u, err := NewUserDB("static", "uid=vmail gid=vmail home=/home/%u", "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	f, found, err := u.Lookup(ctx, Request{User: "a@b"})
	if err != nil || !found || f.String() != "uid=vmail gid=vmail home=/home/a@b" {
		t.Errorf("static userdb: %q %v %v", f.String(), found, err)
	}
}

// TestPasswdFileConcurrentReload: lookups racing with rewrites of the
// file see either the old or the new contents, never a torn state.
func TestPasswdFileConcurrentReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "users")
	writeFile(t, path, "alice:{PLAIN}pw\n")
	opts, _ := testOptions(t)
	db, err := NewPassDB("passwd-file", path, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				res, err := db.Verify(context.Background(), Request{User: "alice"}, "pw")
				if err != nil || res.Status != PassOK {
					errs <- fmt.Errorf("status %v err %v", res.Status, err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		tmp := filepath.Join(dir, fmt.Sprintf("users.%d", i))
		writeFile(t, tmp, fmt.Sprintf("alice:{PLAIN}pw\nuser%d:{PLAIN}x\n", i))
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
