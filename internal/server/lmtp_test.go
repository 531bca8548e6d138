package server

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLookupID(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0::/root:/bin/sh\npostfix:x:105:108::/var/spool/postfix:/usr/sbin/nologin\nbad:x:zz:1::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		want    int
		wantErr bool
	}{
		{"postfix", 105, false},
		{"root", 0, false},
		{"1234", 1234, false},
		{"nosuch", -1, true},
		{"bad", -1, true},
	}
	for _, tc := range tests {
		got, err := lookupID(passwd, tc.name)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("lookupID(%q) = %d, %v; want %d, error %v", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
	if _, err := lookupID(filepath.Join(dir, "missing"), "postfix"); err == nil {
		t.Error("missing file: no error")
	}
}
