package userdb

import (
	"context"
	"testing"
	"time"
)

// BenchmarkLDAPLogin measures whole logins through the Checker against
// the real slapd of guide 000 (slapd verifies an {SSHA} userPassword):
//
//   - auth_bind: guide 000 as written, one bind as uid=%n,... per login;
//   - search+bind: pass_filter searched as the admin, then a bind as the
//     DN found (two round trips);
//   - pass_attrs: the {SSHA} hash read and verified by postcote.
//
// Each reports logins/s with GOMAXPROCS parallel clients sharing one
// passdb (and so one connection pool).
//
//	go test ./internal/userdb -run '^$' -bench BenchmarkLDAPLogin
func BenchmarkLDAPLogin(b *testing.B) {
	_, conf := guide000(b)
	for _, tc := range []struct{ name, conf string }{
		{"auth_bind", conf},
		{"search+bind", setConf(conf, "auth_bind_userdn", "")},
		{"pass_attrs", setConf(conf, "auth_bind", "no")},
	} {
		b.Run(tc.name, func(b *testing.B) {
			env := newLDAPEnvDebug(b, tc.conf, false) // no auth_debug
			ctx := context.Background()
			req := sreq("han@company.com", hanPassword)
			if _, err := env.checker.CheckPassword(ctx, req); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := env.checker.CheckPassword(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "logins/s")
		})
	}
}
