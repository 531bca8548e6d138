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
	checkVerify(t, db, []verifyCase{
		{"alice", "alice pw", PassOK, "", false},
		{"alice", "Alice pw", PassMismatch, "mismatch", false},
		{"bob", "bob pw", PassOK, "", false},
		{"heidi", "heidi pw", PassOK, "", false}, // hash in passwd, no shadow line
		{"yann", "pass1", PassOK, "", false},
		{"carol", "carol pw", PassMismatch, "locked", false},
		{"root", "x", PassMismatch, "disabled", false},
		{"erin", "", PassMismatch, "no password", false}, // pam_unix nullok would let this in
		{"dave", "dave pw", PassMismatch, "account expired", false},
		{"dave", "wrong", PassMismatch, "password mismatch", false}, // authenticate before account
		{"frank", "frank pw", PassMismatch, "password change required", false},
		{"grace", "grace pw", PassMismatch, "password expired", false},
		{"ivan", "x", PassMismatch, "no shadow entry", false},
		{"nosuch", "x", PassUnknownUser, "", false},
		{"mallory", "mallory pw", 0, "", true}, // passwd says "x" and the shadow line is malformed
	})
	if !strings.Contains(buf.String(), "pam(frank,192.0.2.1): password change required") {
		t.Errorf("failure_show_msg: %s", buf.String())
	}
	if _, err := db.Verify(context.Background(), Request{User: "judy"}, "x"); !errors.Is(err, ErrMalformedEntry) {
		t.Errorf("judy: %v", err)
	}
}
