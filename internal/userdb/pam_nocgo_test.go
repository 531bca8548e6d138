//go:build !pam || !cgo

package userdb

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestPAMWithoutLibrary checks the default build's pam passdb against
// the fixture accounts: pam_unix's authentication and account rules.
func TestPAMWithoutLibrary(t *testing.T) {
	files, _, shadow := sysFixture(t)
	opts, buf := sysOptions(files)
	db, err := NewPassDB("pam", "session=yes failure_show_msg=yes dovecot", opts)
	if err != nil {
		t.Fatal(err)
	}
	want := "passdb pam: this build has no PAM library; checking " + shadow + " as pam_unix does (build with -tags pam for PAM)"
	if !strings.Contains(buf.String(), want) {
		t.Errorf("start-up log %q lacks %q", buf.String(), want)
	}
	db.(*unixPassDB).now = func() time.Time { return sysNow }
	tests := []struct {
		user, pw string
		want     PassStatus
		reason   string
	}{
		{"alice", "alice pw", PassOK, ""},
		{"alice", "Alice pw", PassMismatch, "mismatch"},
		{"bob", "bob pw", PassOK, ""},
		{"heidi", "heidi pw", PassOK, ""}, // hash in passwd, no shadow line
		{"yann", "pass1", PassOK, ""},
		{"carol", "carol pw", PassMismatch, "locked"},
		{"root", "x", PassMismatch, "disabled"},
		{"erin", "", PassMismatch, "no password"}, // pam_unix nullok would let this in
		{"dave", "dave pw", PassMismatch, "account expired"},
		{"dave", "wrong", PassMismatch, "password mismatch"}, // authenticate before account
		{"frank", "frank pw", PassMismatch, "password change required"},
		{"grace", "grace pw", PassMismatch, "password expired"},
		{"ivan", "x", PassMismatch, "no shadow entry"},
		{"nosuch", "x", PassUnknownUser, ""},
		{"mallory", "mallory pw", PassOK, ""}, // malformed shadow line, like getspnam: no aging checks
	}
	for _, tt := range tests {
		res, err := db.Verify(context.Background(), Request{User: tt.user, Service: "imap", RemoteIP: "192.0.2.1"}, tt.pw)
		if tt.user == "mallory" {
			// The passwd field is "x", so the hash is needed: an error.
			if err == nil {
				t.Errorf("mallory: no error")
			}
			continue
		}
		if err != nil || res.Status != tt.want || !strings.Contains(res.Reason, tt.reason) {
			t.Errorf("%s/%q: %v %q %v, want %v %q", tt.user, tt.pw, res.Status, res.Reason, err, tt.want, tt.reason)
		}
	}
	if !strings.Contains(buf.String(), "pam(frank,192.0.2.1): password change required") {
		t.Errorf("failure_show_msg: %s", buf.String())
	}
	if _, err := db.Verify(context.Background(), Request{User: "judy"}, "x"); !errors.Is(err, ErrMalformedEntry) {
		t.Errorf("judy: %v", err)
	}
}
