package authd

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"postcote/internal/sasl"
)

// fakeChecker knows alice/secret; "temp" is a back end that is down and
// "slow" waits until released (or its context ends).
type fakeChecker struct {
	mu      sync.Mutex
	reqs    []sasl.Request
	release chan struct{}
}

func (f *fakeChecker) CheckPassword(ctx context.Context, req sasl.Request) (string, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	switch req.User {
	case "temp":
		return "", fmt.Errorf("%w: ldap down", sasl.ErrTempFail)
	case "slow":
		select {
		case <-f.release:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		return "", sasl.ErrAuthFailed
	case "alice", "ALICE":
		if req.Password == "secret" {
			return "alice", nil
		}
	}
	return "", sasl.ErrAuthFailed
}

func (f *fakeChecker) last() sasl.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

// startServer serves on a unix socket in a temp dir and stops at the end
// of the test.
func startServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	if opts.Checker == nil {
		opts.Checker = &fakeChecker{release: make(chan struct{})}
	}
	if opts.Mechanisms == nil {
		opts.Mechanisms = []string{"plain", "login"}
	}
	srv, err := NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "auth")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, path
}
