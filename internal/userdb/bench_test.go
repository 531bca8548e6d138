package userdb

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkCheckPassword measures a whole successful login through the
// Checker and a passwd-file passdb (cached file), per scheme, with the
// default cost doveadm pw uses.
func BenchmarkCheckPassword(b *testing.B) {
	for _, scheme := range []string{"PLAIN", "SSHA", "SHA512-CRYPT", "BLF-CRYPT"} {
		b.Run(scheme, func(b *testing.B) {
			h, err := Generate(scheme, "Secret pw 1!")
			if err != nil {
				b.Fatal(err)
			}
			var lines strings.Builder
			for i := range 1000 {
				fmt.Fprintf(&lines, "user%d@example.jp:%s\n", i, h)
			}
			path := filepath.Join(b.TempDir(), "users")
			writeFile(b, path, lines.String())
			p, err := NewPassDB("passwd-file", path, Options{IDs: testIDs})
			if err != nil {
				b.Fatal(err)
			}
			c := NewChecker([]PassDB{p}, nil, CheckerOptions{UsernameFormat: "%Lu", UsernameChars: DefaultUsernameChars, IDs: testIDs})
			ctx := context.Background()
			req := sreq("user500@example.jp", "Secret pw 1!")
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.CheckPassword(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
