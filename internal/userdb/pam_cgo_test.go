//go:build pam && cgo

package userdb

import (
	"context"
	"strings"
	"testing"
)

// TestLibPAMPermitDeny runs conversations against service files using
// pam_permit and pam_deny (root only; the files are removed in Cleanup),
// and checks the service name expansion.
func TestLibPAMPermitDeny(t *testing.T) {
	systemTestPrereqs(t)
	base := "postcote-test-" + randomSuffix(t)
	pamServiceFile(t, base+"-imap", "auth required pam_permit.so\naccount required pam_permit.so\nsession required pam_permit.so\n")
	pamServiceFile(t, base+"-deny", "auth required pam_deny.so\naccount required pam_permit.so\n")
	pamServiceFile(t, base+"-acct", "auth required pam_permit.so\naccount required pam_deny.so\n")
	opts := Options{}
	ctx := context.Background()
	tests := []struct {
		args, service string
		want          PassStatus
		reason        string
	}{
		{"session=yes setcred=yes " + base + "-%s", "imap", PassOK, ""},
		{base + "-deny", "imap", PassMismatch, "pam_authenticate() failed"},
		{base + "-acct", "imap", PassMismatch, "pam_acct_mgmt() failed"},
	}
	for _, tt := range tests {
		db, err := NewPassDB("pam", tt.args, opts)
		if err != nil {
			t.Fatal(err)
		}
		res, err := db.Verify(ctx, Request{User: "anyone", Service: tt.service, RemoteIP: "192.0.2.1"}, "pw")
		if err != nil || res.Status != tt.want || !strings.Contains(res.Reason, tt.reason) {
			t.Errorf("%s: %v %q %v", tt.args, res.Status, res.Reason, err)
		}
		if tt.want == PassOK && res.Fields.Value("user") != "anyone" {
			t.Errorf("PAM_USER = %q", res.Fields.Value("user"))
		}
	}
	db, _ := NewPassDB("pam", base+"-imap", opts)
	if res, err := db.Verify(ctx, Request{User: "a\x00b"}, "pw"); err != nil || res.Status != PassMismatch {
		t.Errorf("NUL in name: %v %v", res, err)
	}
	// A cancelled context does not wait for a worker forever.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.Verify(cctx, Request{User: "anyone"}, "pw"); err == nil {
		t.Error("cancelled context: no error")
	}
}
