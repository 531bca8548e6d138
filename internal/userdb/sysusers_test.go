package userdb

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSystemIDs(t *testing.T) {
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	group := filepath.Join(dir, "group")
	writeFile(t, passwd, "root:x:0:0:root:/root:/bin/bash\n# comment\nvmail:x:5000:5000::/home/vmail:/usr/sbin/nologin\nbroken:x:notanumber:1\nvmail:x:6000:6000::/dup:/bin/sh\n")
	writeFile(t, group, "root:x:0:\nmail:x:8:\nvmail:x:5001:\n")
	ids := NewSystemIDs(passwd, group)
	tests := []struct {
		lookup func(string) (int, bool)
		name   string
		id     int
		ok     bool
	}{
		{ids.LookupUID, "root", 0, true},
		{ids.LookupUID, "vmail", 5000, true}, // first entry wins
		{ids.LookupUID, "broken", 0, false},
		{ids.LookupUID, "nobody", 0, false},
		{ids.LookupGID, "vmail", 5001, true},
		{ids.LookupGID, "mail", 8, true},
	}
	for _, tt := range tests {
		id, ok := tt.lookup(tt.name)
		if id != tt.id || ok != tt.ok {
			t.Errorf("lookup(%s) = %d, %v", tt.name, id, ok)
		}
	}
	// Edits are picked up.
	writeFile(t, group, "vmail:x:7000:\n")
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(group, later, later); err != nil {
		t.Fatal(err)
	}
	if id, ok := ids.LookupGID("vmail"); id != 7000 || !ok {
		t.Errorf("after edit: %d %v", id, ok)
	}
	// parseID: numbers, names, invalid values.
	for in, want := range map[string]int{"1000": 1000, "vmail": 5000, "": -1, "4294967295": -1, "12x": -1, "nobody": -1, "-1": -1} {
		if got := parseID(in, ids.LookupUID); got != want {
			t.Errorf("parseID(%q) = %d, want %d", in, got, want)
		}
	}
	if NewSystemIDs("", "").passwd.path != "/etc/passwd" {
		t.Error("default passwd path")
	}
}
