package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"postcote/internal/testenv"
)

// TestCheckReportsFileAndLine: unknown keys and bad values in either
// dialect come back as file:line findings with exit status 1.
func TestCheckReportsFileAndLine(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.cf", "myhostname = mail.example.com\nbogus_param = 1\nmessage_size_limit = lots\n")
	write("dovecot.conf", "ssl = no\nprotocols = imap\nbogus_setting = yes\n")
	out, err := exec.Command(testenv.Binary(t), "check", "-c", dir).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("check on a bad configuration: %v, want exit status 1\n%s", err, out)
	}
	for _, want := range []string{
		filepath.Join(dir, "main.cf") + ":2: warning: unknown parameter bogus_param",
		filepath.Join(dir, "main.cf") + ":3: error: message_size_limit",
		filepath.Join(dir, "dovecot.conf") + ":3: error: unknown setting bogus_setting",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	// serve refuses the errors with the same positions.
	out, err = exec.Command(testenv.Binary(t), "serve", "-log-stderr", "-c", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "main.cf:3") {
		t.Errorf("serve on a bad configuration: %v\n%s", err, out)
	}
}
