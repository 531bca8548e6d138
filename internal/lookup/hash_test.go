package lookup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// copyGuide copies a guide's file from testdata into a fresh folder.
func copyGuide(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func lookupOne(t *testing.T, tb Table, key string) []string {
	t.Helper()
	v, err := tb.Lookup(context.Background(), key)
	if err != nil {
		t.Fatalf("Lookup(%q): %v", key, err)
	}
	return v
}

func TestHashGuide003(t *testing.T) {
	src := copyGuide(t, "g003/virtual")
	n, err := BuildIndex(src, FormatMap, true, func(m string) { t.Errorf("warning: %s", m) })
	if err != nil || n != 4 {
		t.Fatalf("BuildIndex = %d, %v; want 4 entries", n, err)
	}
	for _, typ := range []string{"hash", "texthash", "proxy:hash"} {
		tb, err := Open(typ+":"+src, Options{Logf: func(f string, a ...any) { t.Errorf("unexpected log: "+f, a...) }})
		if err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			key  string
			want []string
		}{
			{"postmaster@mail.example.jp", []string{"info@mail.example.jp"}},
			{"PostMaster@Mail.Example.JP", []string{"info@mail.example.jp"}}, // folded
			{"root@mail.example.jp", []string{"info@mail.example.jp"}},
			{"nobody@mail.example.jp", nil},
			{"", nil},
		}
		for _, tc := range tests {
			if got := lookupOne(t, tb, tc.key); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s: Lookup(%q) = %q, want %q", typ, tc.key, got, tc.want)
			}
		}
		tb.Close()
	}
}

func TestHashNoFold(t *testing.T) {
	src := filepath.Join(t.TempDir(), "m")
	os.WriteFile(src, []byte("Mixed@Case.example value\n"), 0o644)
	tb, err := Open("hash:"+src, Options{NoFold: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupOne(t, tb, "Mixed@Case.example"); len(got) != 1 {
		t.Errorf("exact key not found without folding: %q", got)
	}
	if got := lookupOne(t, tb, "mixed@case.example"); got != nil {
		t.Errorf("folded key found with NoFold: %q", got)
	}
}

// TestHashStale: an index older than its source is rebuilt from the
// source (with a warning naming postmap), and a table already open
// picks up edits.
func TestHashStale(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "virtual")
	os.WriteFile(src, []byte("a@example.com old\n"), 0o644)
	if _, err := BuildIndex(src, FormatMap, true, nil); err != nil {
		t.Fatal(err)
	}
	// Edit without postmap: new size and mtime.
	os.WriteFile(src, []byte("a@example.com new-value\nb@example.com b\n"), 0o644)
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(src, future, future)
	var logs []string
	tb, err := Open("hash:"+src, Options{Logf: func(f string, a ...any) { logs = append(logs, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupOne(t, tb, "a@example.com"); !reflect.DeepEqual(got, []string{"new-value"}) {
		t.Errorf("stale index served: %q", got)
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "postmap") {
		t.Errorf("logs = %q, want one warning naming postmap", logs)
	}
	ix, err := readIndex(src + IndexSuffix)
	if err != nil || ix.entries["b@example.com"] != "b" {
		t.Fatalf("index not rewritten: %v %v", ix, err)
	}

	// Edit while open: seen after the recheck interval.
	ft := tb.(*fileTable)
	ft.settle = 0
	os.WriteFile(src, []byte("a@example.com third\n"), 0o644)
	later := time.Now().Add(-time.Minute) // settled
	os.Chtimes(src, later, later)
	ft.mu.Lock()
	ft.lastCheck = time.Time{}
	ft.mu.Unlock()
	if got := lookupOne(t, tb, "a@example.com"); !reflect.DeepEqual(got, []string{"third"}) {
		t.Errorf("edit not picked up: %q", got)
	}
}

func TestHashIndexWithoutSource(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m")
	os.WriteFile(src, []byte("k v\n"), 0o600)
	if _, err := BuildIndex(src, FormatMap, true, nil); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(src + IndexSuffix); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("index mode = %v, %v; want the source's 0600", fi.Mode().Perm(), err)
	}
	os.Remove(src)
	tb, err := Open("hash:"+src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupOne(t, tb, "k"); !reflect.DeepEqual(got, []string{"v"}) {
		t.Errorf("got %q", got)
	}
	os.Remove(src + IndexSuffix)
	if _, err := Open("hash:"+src, Options{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("neither source nor index: err = %v", err)
	}
}

func TestHashCorruptIndexRebuilt(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "m")
	os.WriteFile(src, []byte("k v\n"), 0o644)
	os.WriteFile(src+IndexSuffix, []byte("PCDB garbage garbage garbage garbage"), 0o644)
	var logs []string
	tb, err := Open("hash:"+src, Options{Logf: func(f string, a ...any) { logs = append(logs, f) }})
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupOne(t, tb, "k"); !reflect.DeepEqual(got, []string{"v"}) {
		t.Errorf("got %q", got)
	}
	if len(logs) != 1 {
		t.Errorf("logs = %q", logs)
	}
	if _, err := readIndex(src + IndexSuffix); err != nil {
		t.Errorf("index not rebuilt: %v", err)
	}
}

func TestIndexRoundTripAndCorruption(t *testing.T) {
	entries := []Entry{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "c d", Value: ""}}
	data := encodeIndex(FormatAliases, true, sourceStamp{Size: 9, MTime: 12345}, entries)
	ix, err := decodeIndex(data)
	if err != nil {
		t.Fatal(err)
	}
	if ix.format != FormatAliases || !ix.folded || ix.source != (sourceStamp{9, 12345}) || len(ix.entries) != 3 || ix.entries["a"] != "1" {
		t.Errorf("decoded %+v", ix)
	}
	// Every single-byte change and every truncation is detected.
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x40
		if _, err := decodeIndex(bad); !errors.Is(err, ErrCorruptIndex) {
			t.Fatalf("flip at %d: err = %v", i, err)
		}
		if _, err := decodeIndex(data[:i]); !errors.Is(err, ErrCorruptIndex) {
			t.Fatalf("truncated to %d: err = %v", i, err)
		}
	}
}

func TestAliasesHash(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "aliases")
	os.WriteFile(src, []byte("postmaster: root\nroot: admin@example.com,\n  ops@example.com\n"), 0o644)
	// No index yet: the name says aliases(5) syntax.
	tb, err := Open("hash:"+src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupOne(t, tb, "ROOT"); !reflect.DeepEqual(got, []string{"admin@example.com,  ops@example.com"}) {
		t.Errorf("got %q", got)
	}
	// Another name, built by postalias: the index records the format.
	other := filepath.Join(dir, "mail.aliases.txt")
	os.WriteFile(other, []byte("team: a, b\n"), 0o644)
	if _, err := BuildIndex(other, FormatAliases, true, nil); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(other, []byte("team: a, b, c\n"), 0o644)
	future := time.Now().Add(2 * time.Second)
	os.Chtimes(other, future, future)
	tb2, err := Open("hash:"+other, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupOne(t, tb2, "team"); !reflect.DeepEqual(got, []string{"a, b, c"}) {
		t.Errorf("rebuilt with the wrong syntax: %q", got)
	}
}

// TestHashConcurrentReload: lookups from many goroutines while the
// source changes always see one whole version of the table.
func TestHashConcurrentReload(t *testing.T) {
	src := filepath.Join(t.TempDir(), "m")
	os.WriteFile(src, []byte("k v0\n"), 0o644)
	tb, err := Open("hash:"+src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ft := tb.(*fileTable)
	done := make(chan struct{})
	errs := make(chan error, 4)
	for g := 0; g < 4; g++ {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				v, err := tb.Lookup(context.Background(), "k")
				if err != nil || len(v) != 1 || !strings.HasPrefix(v[0], "v") {
					errs <- fmt.Errorf("got %q, %v", v, err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		os.WriteFile(src, []byte(fmt.Sprintf("k v%d\n", i)), 0o644)
		tm := time.Now().Add(-time.Hour + time.Duration(i)*time.Second)
		os.Chtimes(src, tm, tm)
		ft.mu.Lock()
		ft.lastCheck = time.Time{}
		ft.mu.Unlock()
	}
	close(done)
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Every change was within settleTime: the first version stays.
	ft.mu.Lock()
	ft.lastCheck = time.Time{}
	ft.mu.Unlock()
	if got := lookupOne(t, tb, "k"); !reflect.DeepEqual(got, []string{"v0"}) {
		t.Errorf("unsettled source served: %q", got)
	}
	ft.settle = 0
	ft.mu.Lock()
	ft.lastCheck = time.Time{}
	ft.mu.Unlock()
	if got := lookupOne(t, tb, "k"); !reflect.DeepEqual(got, []string{"v20"}) {
		t.Errorf("last version not loaded: %q", got)
	}

	// Atomic replacements (write a copy, rename it over the source)
	// are reloaded at once, while lookups run.
	done = make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			for {
				select {
				case <-done:
					errs <- nil
					return
				default:
				}
				v, err := tb.Lookup(context.Background(), "k")
				if err != nil || len(v) != 1 || !strings.HasPrefix(v[0], "w") && v[0] != "v20" {
					errs <- fmt.Errorf("got %q, %v", v, err)
					return
				}
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		tmp := src + ".new"
		os.WriteFile(tmp, []byte(fmt.Sprintf("k w%d\n", i)), 0o644)
		os.Rename(tmp, src)
		ft.mu.Lock()
		ft.lastCheck = time.Time{}
		ft.mu.Unlock()
		lookupOne(t, tb, "k")
	}
	close(done)
	for g := 0; g < 4; g++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := lookupOne(t, tb, "k"); !reflect.DeepEqual(got, []string{"w20"}) {
		t.Errorf("last replacement not loaded: %q", got)
	}
}
