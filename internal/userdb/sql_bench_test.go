package userdb

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkSQLLogin measures passdb sql logins (password_query plus the
// password check) against real MariaDB and PostgreSQL servers, with a
// PLAIN and a SHA512-CRYPT (5000 rounds) password, from GOMAXPROCS
// goroutines, and reports logins/s.
//
//	go test ./internal/userdb -run '^$' -bench BenchmarkSQLLogin
func BenchmarkSQLLogin(b *testing.B) {
	backends := []struct {
		name  string
		start func(testing.TB) sqlBackend
		quote func(string) string
	}{
		{"mariadb", startMariaDBBackend, quoteMySQL},
		{"postgres", startPostgresBackend, quoteStd},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			back := be.start(b)
			var stmts []string
			for _, scheme := range []string{"PLAIN", "SHA512-CRYPT"} {
				h, err := Generate(scheme, "bench-pw")
				if err != nil {
					b.Fatal(err)
				}
				stmts = append(stmts, fmt.Sprintf("INSERT INTO users (username, password, home, uid, gid) VALUES (%s, %s, '/h', 1, 1)",
					be.quote("bench-"+scheme), be.quote(h)))
			}
			back.exec(b, stmts...)
			conf := writeSQLConf(b, guideSQLConf, back)
			p, err := NewPassDB("sql", conf, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer p.(*sqlPassDB).Close()
			for _, scheme := range []string{"PLAIN", "SHA512-CRYPT"} {
				b.Run(scheme, func(b *testing.B) {
					req := Request{User: "bench-" + scheme}
					ctx := context.Background()
					b.RunParallel(func(pb *testing.PB) {
						for pb.Next() {
							res, err := p.Verify(ctx, req, "bench-pw")
							if err != nil || res.Status != PassOK {
								b.Errorf("login: %v %v", res.Status, err)
								return
							}
						}
					})
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
				})
			}
		})
	}
}
