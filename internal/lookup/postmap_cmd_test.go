package lookup

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// postcoteBin builds cmd/postcote once for the tests that run it as an
// administrator would.
func postcoteBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the postcote binary")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "postcote-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "postcote")
		out, err := exec.Command("go", "build", "-o", binPath, "postcote/cmd/postcote").CombinedOutput()
		if err != nil {
			binErr = errors.New(string(out))
		}
	})
	if binErr != nil {
		t.Fatalf("build postcote: %v", binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// runCmd runs the binary (argv[0] as given, for symlinked names) and
// returns stdout, stderr and the exit code.
func runCmd(t *testing.T, bin string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func TestPostmapCommand(t *testing.T) {
	bin := postcoteBin(t)
	dir := t.TempDir()
	virtual := filepath.Join(dir, "virtual")
	canonical := filepath.Join(dir, "canonical.regexp")
	for src, dst := range map[string]string{"g003/virtual": virtual, "g004/canonical.regexp": canonical} {
		data, err := os.ReadFile(filepath.Join("testdata", src))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(dst, data, 0o644)
	}
	link := filepath.Join(dir, "postmap")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	sqlitePath := sqliteDB(t)
	sqliteCf := filepath.Join(dir, "aliases.cf")
	os.WriteFile(sqliteCf, []byte("dbpath = "+sqlitePath+"\nquery = SELECT destination FROM postfix_aliases WHERE alias='%s' AND active=1 ORDER BY id\n"), 0o600)

	// Guide 003: sudo postmap virtual.
	if _, stderr, code := runCmd(t, bin, "", "postmap", virtual); code != 0 {
		t.Fatalf("postmap virtual: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(virtual + IndexSuffix); err != nil {
		t.Fatalf("no index: %v", err)
	}
	tests := []struct {
		name  string
		bin   string
		stdin string
		args  []string
		out   string
		code  int
	}{
		{"guide 003 hash", bin, "", []string{"postmap", "-q", "postmaster@mail.example.jp", "hash:" + virtual}, "info@mail.example.jp\n", 0},
		{"default type is hash", bin, "", []string{"postmap", "-q", "ROOT@mail.example.jp", virtual}, "info@mail.example.jp\n", 0},
		{"not found exits 1", bin, "", []string{"postmap", "-q", "nobody@mail.example.jp", "hash:" + virtual}, "", 1},
		{"symlink named postmap", link, "", []string{"-q", "admin@mail.example.jp", "hash:" + virtual}, "info@mail.example.jp\n", 0},
		{"guide 004 regexp", bin, "", []string{"postmap", "-q", "root@host.example.com", "regexp:" + canonical}, "root+host@example.com\n", 0},
		{"several results joined by commas", bin, "", []string{"postmap", "-q", "group@lego.dk", "sqlite:" + sqliteCf}, "noah@lego.dk,johan@lego.dk,magnus@lego.dk\n", 0},
		{"first table that answers", bin, "", []string{"postmap", "-q", "group@lego.dk", "hash:" + virtual, "sqlite:" + sqliteCf}, "noah@lego.dk,johan@lego.dk,magnus@lego.dk\n", 0},
		{"keys from stdin", bin, "root@mail.example.jp\nnobody\nadmin@mail.example.jp\n", []string{"postmap", "-q", "-", "hash:" + virtual},
			"root@mail.example.jp\tinfo@mail.example.jp\nadmin@mail.example.jp\tinfo@mail.example.jp\n", 0},
		{"dump", bin, "", []string{"postmap", "-s", "inline:{b=2,a=1}"}, "a\t1\nb\t2\n", 0},
		{"dump of a query table", bin, "", []string{"postmap", "-s", "regexp:" + canonical}, "", 1},
		{"bad table", bin, "", []string{"postmap", "-q", "x", "nosuch:thing"}, "", 1},
		{"usage", bin, "", []string{"postmap"}, "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, code := runCmd(t, tc.bin, tc.stdin, tc.args...)
			if out != tc.out || code != tc.code {
				t.Errorf("got %q exit %d, want %q exit %d (stderr %q)", out, code, tc.out, tc.code, stderr)
			}
		})
	}
}

func TestPostaliasNewaliases(t *testing.T) {
	bin := postcoteBin(t)
	dir := t.TempDir()
	aliases := filepath.Join(dir, "mail-aliases")
	os.WriteFile(aliases, []byte("postmaster: root\nroot: admin@example.com,\n  ops@example.com\narchive: /var/mail/archive\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte("alias_maps = hash:"+aliases+"\nalias_database = hash:"+aliases+"\n"), 0o644)
	if _, stderr, code := runCmd(t, bin, "", "newaliases", "-c", dir); code != 0 {
		t.Fatalf("newaliases: exit %d: %s", code, stderr)
	}
	ix, err := readIndex(aliases + IndexSuffix)
	if err != nil || ix.format != FormatAliases || len(ix.entries) != 3 {
		t.Fatalf("index %+v, %v", ix, err)
	}
	out, _, code := runCmd(t, bin, "", "postalias", "-q", "Root", aliases)
	if code != 0 || out != "admin@example.com,  ops@example.com\n" {
		t.Errorf("postalias -q: %q exit %d", out, code)
	}
	out, _, _ = runCmd(t, bin, "", "postmap", "-q", "archive", "hash:"+aliases)
	if out != "/var/mail/archive\n" {
		t.Errorf("postmap -q on the alias index: %q", out)
	}
}
