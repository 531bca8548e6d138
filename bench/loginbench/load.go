package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// account is one user the servers know, with its password in clear.
type account struct{ user, pass string }

// Load is one measured point: Clients concurrent clients log in as Users
// in turn (a new connection per login), until Duration has passed or
// Logins logins have been started (0: no count limit), whichever comes
// first. Timeout bounds every read and write.
type Load struct {
	Addr     string // 127.0.0.1:port
	Users    []account
	Mech     Mechanism
	Clients  int
	Duration time.Duration
	Logins   int
	Timeout  time.Duration
}

// Result is what a Load measured.
type Result struct {
	OK, Failed int
	Elapsed    time.Duration // first dial → last login finished
	P50, P99   time.Duration // dial → tagged OK of the login
	Errors     []string      // the first few distinct errors
	// failedUsers are the accounts whose logins failed (warm-up retries
	// them).
	failedUsers []account
}

// Rate is successful logins per second.
func (r Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// maxErrors is how many distinct errors a Result keeps.
const maxErrors = 5

// checkLoopback refuses any address but a loopback one: the program never
// connects off the machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("address %q is not a loopback IP address; this program only connects to this machine", addr)
	}
	return nil
}

// Run carries out l. Logins still under way when the duration ends are
// finished and counted; ctx ending stops everything at once.
func (l Load) Run(ctx context.Context) (Result, error) {
	switch {
	case len(l.Users) == 0:
		return Result{}, errors.New("no users to log in as")
	case l.Clients <= 0:
		return Result{}, errors.New("clients must be positive")
	case l.Duration <= 0 && l.Logins <= 0:
		return Result{}, errors.New("a load needs a duration or a login count")
	case l.Timeout <= 0:
		return Result{}, errors.New("timeout must be positive")
	}
	if err := checkLoopback(l.Addr); err != nil {
		return Result{}, err
	}
	var (
		next      atomic.Int64 // logins started
		mu        sync.Mutex
		latencies []time.Duration
		res       Result
		seen      = map[string]bool{}
		wg        sync.WaitGroup
	)
	start := time.Now()
	var deadline time.Time
	if l.Duration > 0 {
		deadline = start.Add(l.Duration)
	}
	for c := 0; c < l.Clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				n := next.Add(1) - 1
				if (l.Logins > 0 && n >= int64(l.Logins)) || (!deadline.IsZero() && !time.Now().Before(deadline)) {
					return
				}
				// Users in turn, so that concurrent clients are different
				// users (Dovecot limits connections per user and IP).
				a := l.Users[n%int64(len(l.Users))]
				lat, err := login(ctx, l.Addr, a.user, a.pass, l.Mech, l.Timeout)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						res.Failed++
						res.failedUsers = append(res.failedUsers, a)
						msg := fmt.Sprintf("%s: %v", a.user, err)
						if key := err.Error(); !seen[key] && len(res.Errors) < maxErrors {
							seen[key] = true
							res.Errors = append(res.Errors, msg)
						}
					}
				} else {
					res.OK++
					latencies = append(latencies, lat)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.P50, res.P99 = percentile(latencies, 50), percentile(latencies, 99)
	return res, ctx.Err()
}

// percentile is the nearest-rank p-th percentile of ds (0 when empty).
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (p*len(s) + 99) / 100 // ceil(p/100 · n)
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}
