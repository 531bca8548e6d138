package doveconf

import (
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F, patterns ...string) {
	for _, pattern := range patterns {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
}

// FuzzParseDovecot parses arbitrary dovecot.conf text (includes and
// <file values resolve inside an empty temporary root), then checks it
// and prints it: no panic, no hang.
func FuzzParseDovecot(f *testing.F) {
	addSeeds(f, "testdata/*/etc/dovecot/*.conf", "testdata/*/etc/dovecot/conf.d/*", "testdata/*/etc/dovecot/variants/*")
	f.Add([]byte("a = $a $a $a\nservice x {\n  inet_listener {\n port = 1 \\\n2\n}\n}\n!include_try *.conf\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		c, err := Parse("/etc/dovecot/dovecot.conf", data, WithRoot(root), WithEnv(func(string) (string, bool) { return "", false }))
		if err != nil {
			return
		}
		c.Check()
		_ = c.WriteNonDefault(discard{})
		for _, p := range []string{"imap", "lmtp"} {
			c.EffectiveFor(p).GetDefault("mail_plugins")
		}
	})
}

// FuzzParseExt parses arbitrary LDAP and SQL *.conf.ext text.
func FuzzParseExt(f *testing.F) {
	addSeeds(f, "testdata/*/etc/dovecot/*.conf.ext")
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = ParseLDAP("l.ext", data)
		_, _ = ParseSQL("s.ext", data)
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
