package userdb

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseShadowLine: any line parses or fails cleanly; what parses
// keeps the line's name and password verbatim and only dates of -1 or
// more, and the expiry checks never panic.
func FuzzParseShadowLine(f *testing.F) {
	for _, s := range []string{
		"", ":", "root:*:19000:0:99999:7:::", "u:$y$j9T$salt$hash:19000:0:99999:7::19500:", "u:!x:0::::::",
		"u::", "u:x", "u:x:abc:0:99999:7:::", "u:x:-2:0:0:0:0:0:", "u:x:1:2:3:4:5:6:7:8", "u:x:99999999999999999999:::::: ",
		"u:x:19000:0:90:7:30::", "u:x:+5::::::",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		e, err := ParseShadowLine(line)
		if err != nil {
			if e != (ShadowEntry{}) {
				t.Fatal("entry and error")
			}
			return
		}
		if e.Name == "" || strings.Contains(e.Name, ":") || !strings.HasPrefix(line, e.Name+":"+e.Password) {
			t.Fatalf("name %q password %q from %q", e.Name, e.Password, line)
		}
		for _, n := range []int64{e.LastChange, e.MinDays, e.MaxDays, e.WarnDays, e.InactiveDays, e.Expire} {
			if n < -1 {
				t.Fatalf("field %d from %q", n, line)
			}
		}
		now := time.Unix(1764000000, 0)
		_ = e.AccountExpired(now)
		_ = e.PasswordAgeProblem(now)
	})
}

// FuzzParsePasswdTable: any passwd(5) file parses without panic; every
// entry found has numeric ids and a name that is its key.
func FuzzParsePasswdTable(f *testing.F) {
	for _, s := range []string{
		"root:x:0:0:root:/root:/bin/bash\n", "a:x:1:1\nb:x:2\n", "#c\n+nis\n-x\n\n", "a:x:1:1:g:h:s:extra\n",
		"a:x:4294967295:1:::\n", "a:x:1:1:::\r\nb:x:2:2:::", strings.Repeat("x", 70000) + "\nz:x:3:3:::\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		tab, err := parsePasswdTable(strings.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if len(tab.order) != len(tab.byName) {
			t.Fatalf("%d ordered, %d by name", len(tab.order), len(tab.byName))
		}
		for name, e := range tab.byName {
			if e.Name != name || name == "" || e.UID < 0 || e.GID < 0 || e.UID >= 0xffffffff {
				t.Fatalf("entry %+v under %q", e, name)
			}
		}
	})
}
