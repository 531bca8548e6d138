package lookup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// BenchmarkLookup measures lookups per second for hash, regexp, LDAP
// and MySQL tables, each without and with a result cache (1 minute TTL,
// 1000 keys). Keys cycle through 100 present addresses, so the cached
// runs mostly hit. LDAP and MySQL start real servers (skipped with
// -short). Run: go test ./internal/lookup -run '^$' -bench Lookup
func BenchmarkLookup(b *testing.B) {
	keys := make([]string, 100)
	dir := b.TempDir()
	hashSrc := filepath.Join(dir, "virtual")
	f, err := os.Create(hashSrc)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(f, "user%d@example.com target%d@example.net\n", i, i)
	}
	f.Close()
	for i := range keys {
		keys[i] = fmt.Sprintf("user%d@example.com", i*97%10000)
	}
	regexpSrc := filepath.Join(dir, "canonical.regexp")
	os.WriteFile(regexpSrc, []byte(
		"/^postmaster@/ admin@example.net\n"+
			"if /@example\\.org$/\n/^(.*)@/ $1@other.example\nendif\n"+
			"/^([^@]*)@([a-zA-Z0-9]*)\\.(example\\.com)/ ${1}+${2}@${3}\n"+
			"/^(user[0-9]+)@example\\.com$/ $1@example.net\n"), 0o644)

	tables := []struct {
		name string
		open func(b *testing.B) Table
	}{
		{"hash", func(b *testing.B) Table { return mustOpen(b, "hash:"+hashSrc) }},
		{"regexp", func(b *testing.B) Table { return mustOpen(b, "regexp:"+regexpSrc) }},
		{"ldap", func(b *testing.B) Table {
			if testing.Short() {
				b.Skip("starts slapd")
			}
			s := guide001Slapd(b)
			b.Cleanup(s.Stop)
			p := guideMap(b, "g001/virtual_alias_maps", "ldap://ldap.example.com", s.URI, "/etc/ldap/tls/CA.pem", s.CAFile)
			return mustOpen(b, "ldap:"+p)
		}},
		{"mysql", func(b *testing.B) Table {
			if testing.Short() {
				b.Skip("starts MariaDB")
			}
			m := testenv.StartMariaDB(b)
			m.CreateDatabase("postfix", "postfix_user", "Passw0rd")
			schema, err := os.ReadFile(filepath.Join("testdata", "g000", "schema.sql"))
			if err != nil {
				b.Fatal(err)
			}
			m.Exec(string(schema))
			p := guideMap(b, "g000/virtual_alias_maps", "hosts = 127.0.0.1", fmt.Sprintf("hosts = inet:127.0.0.1:%d", m.Port))
			return mustOpen(b, "mysql:"+p)
		}},
	}
	for _, tt := range tables {
		b.Run(tt.name, func(b *testing.B) {
			tb := tt.open(b)
			defer tb.Close()
			keyset := keys
			switch tt.name {
			case "ldap":
				keyset = []string{"info@example.org", "shared@example.org", "nobody@example.org", "mail001@example.org"}
			case "mysql":
				keyset = []string{"group@lego.dk", "johan.bak@lego.dk", "nobody@lego.dk", "noah.klausen@lego.dk"}
			case "regexp":
				keyset = []string{"root@host.example.com", "postmaster@x", "bob@example.org", "user5@example.com", "none@none"}
			}
			for _, cached := range []bool{false, true} {
				name := "nocache"
				t := tb
				if cached {
					name = "cache"
					t = NewCache(tb, time.Minute, 1000)
				}
				b.Run(name, func(b *testing.B) {
					ctx := context.Background()
					b.ResetTimer()
					start := time.Now()
					for i := 0; i < b.N; i++ {
						if _, err := t.Lookup(ctx, keyset[i%len(keyset)]); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "lookups/s")
				})
			}
		})
	}
}

func mustOpen(b *testing.B, spec string) Table {
	b.Helper()
	t, err := Open(spec, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return t
}
