package userdb

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These tests use the real account files and, in the "-tags pam" build,
// the real PAM: they run as root only, not with -short, and undo what
// they do (a throwaway user removed with userdel, a service file in
// /etc/pam.d removed) in Cleanup.

// systemTestPrereqs skips unless the test may change system accounts.
func systemTestPrereqs(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("changes system accounts; not with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
}

func randomSuffix(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// throwawayUser creates a system user with password pw set by chpasswd
// (Debian 12 writes a yescrypt hash) and deletes it in Cleanup.
func throwawayUser(t *testing.T, pw string) string {
	t.Helper()
	systemTestPrereqs(t, "useradd", "userdel", "chpasswd", "usermod")
	name := "pctest" + randomSuffix(t)
	run(t, "useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin", name)
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v %s", name, err, out)
		}
	})
	cmd := exec.Command("chpasswd")
	cmd.Stdin = strings.NewReader(name + ":" + pw + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chpasswd: %v %s", err, out)
	}
	return name
}

// pamServiceFile writes /etc/pam.d/NAME with content and removes it in
// Cleanup.
func pamServiceFile(t *testing.T, name, content string) {
	t.Helper()
	path := filepath.Join("/etc/pam.d", name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Skipf("cannot write %s: %v", path, err)
	}
	t.Cleanup(func() { _ = os.Remove(path) })
}

// TestPAMSystemAccount logs a throwaway user in through the pam passdb
// of this build: real PAM with pam_unix (-tags pam), or the shadow check
// that stands in for it. Both must agree on right and wrong passwords,
// a locked account and an expired one.
func TestPAMSystemAccount(t *testing.T) {
	const pw = "Tr0ub4dor&3 with spaces"
	user := throwawayUser(t, pw)
	if sp, ok, err := NewSystemFiles("", "", "").LookupShadow(user); err != nil || !ok || !strings.HasPrefix(sp.Password, "$y$") {
		t.Logf("shadow entry: %+v %v %v (expected a yescrypt hash on Debian 12)", sp, ok, err)
	}
	service := "postcote-test-" + randomSuffix(t)
	pamServiceFile(t, service, "auth required pam_unix.so\naccount required pam_unix.so\n")
	opts := Options{IDs: NewSystemFiles("", "", "")}
	db, err := NewPassDB("pam", service, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	check := func(what, pass string, want PassStatus) {
		t.Helper()
		res, err := db.Verify(ctx, Request{User: user, Service: "imap", RemoteIP: "127.0.0.1"}, pass)
		if err != nil || res.Status != want {
			t.Errorf("%s: %v %q %v, want %v", what, res.Status, res.Reason, err, want)
		}
	}
	check("right password", pw, PassOK)
	check("wrong password", pw+"!", PassMismatch)
	res, err := db.Verify(ctx, Request{User: "pcnosuch" + randomSuffix(t), Service: "imap"}, "x")
	if err != nil || res.Status == PassOK {
		t.Errorf("unknown user: %v %v", res, err)
	}
	run(t, "usermod", "-L", user)
	check("locked", pw, PassMismatch)
	run(t, "usermod", "-U", user)
	check("unlocked", pw, PassOK)
	run(t, "usermod", "-e", "1970-01-02", user)
	check("expired", pw, PassMismatch)
}
