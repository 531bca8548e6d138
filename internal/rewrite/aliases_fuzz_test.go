package rewrite

import (
	"context"
	"strings"
	"testing"
)

// FuzzParseIncludeFile checks the :include: parser and alias expansion
// on arbitrary file contents: no failure other than a refused
// destination, and no empty or untrimmed destination.
func FuzzParseIncludeFile(f *testing.F) {
	f.Add("# staff\nann, bob\n\ncarl,\n  dave\n|/bin/cmd\n/var/file\n:include:/x\n")
	f.Fuzz(func(t *testing.T, data string) {
		for _, d := range ParseIncludeFile(data) {
			if d == "" || strings.TrimSpace(d) != d {
				t.Fatalf("bad destination %q", d)
			}
		}
		read := func(string) ([]byte, error) { return []byte(data), nil }
		// The include file includes itself: the depth limit must end it.
		_, _ = ExpandAliases(context.Background(), memTable{"list": {":include:/x"}}, "list",
			AliasOptions{ReadFile: read, MaxDepth: 5, AllowCommands: true, IncludeCommands: true, IncludeFiles: true})
	})
}
