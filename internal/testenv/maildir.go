package testenv

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// MaildirNew returns the contents of the messages in maildir's new/
// folder (delivered, not yet seen by a reader), in file-name order; nil
// when new/ does not exist yet (nothing was ever delivered).
func MaildirNew(t testing.TB, maildir string) []string {
	t.Helper()
	dir := filepath.Join(maildir, "new")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatalf("maildir: %v", err)
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatalf("maildir: %v", err)
		}
		out = append(out, string(b))
	}
	return out
}
