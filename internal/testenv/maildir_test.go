package testenv

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestMaildirNew(t *testing.T) {
	dir := t.TempDir()
	if got := MaildirNew(t, filepath.Join(dir, "Maildir")); got != nil {
		t.Fatalf("missing Maildir: got %q, want nil", got)
	}
	md := filepath.Join(dir, "Maildir")
	for _, sub := range []string{"new", "cur", "tmp"} {
		if err := os.MkdirAll(filepath.Join(md, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{"new/2.b": "second", "new/1.a": "first", "cur/0.c:2,S": "seen", "tmp/3.d": "partial"}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(md, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := MaildirNew(t, md), []string{"first", "second"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
