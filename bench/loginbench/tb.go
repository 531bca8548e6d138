package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
)

// harness lets this program use internal/testenv, whose helpers take a
// testing.TB, outside of `go test`: it implements the methods testenv
// calls (Helper, Fatal, Fatalf, Errorf, Skipf, Logf, Cleanup, TempDir)
// with testing's meaning. A helper that fails calls Fatal, which ends the
// goroutine it runs on (runtime.Goexit, as testing does), so every
// testenv call goes through do, which runs it on a goroutine of its own
// and returns the failure as an error.
//
// The embedded testing.TB is nil: it only gives the type testing.TB's
// unexported method. testenv calls no other method; if a later testenv
// did, the nil interface would make that call fail loudly at once.
type harness struct {
	testing.TB

	mu       sync.Mutex
	err      error
	cleanups []func()
	logf     func(format string, args ...any)
}

func newHarness(logf func(format string, args ...any)) *harness {
	return &harness{logf: logf}
}

// errSkipped is what do returns when a helper skipped (a server that is
// not installed, when not root).
var errSkipped = errors.New("skipped")

// do runs f as a test body would run and returns its failure.
func (h *harness) do(f func()) error {
	h.mu.Lock()
	h.err = nil
	h.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

func (h *harness) fail(err error, stop bool) {
	h.mu.Lock()
	if h.err == nil || errors.Is(h.err, errSkipped) {
		h.err = err
	} else {
		h.err = errors.Join(h.err, err)
	}
	h.mu.Unlock()
	if stop {
		runtime.Goexit()
	}
}

func (h *harness) Helper() {}

func (h *harness) Fatal(args ...any) { h.fail(errors.New(fmt.Sprint(args...)), true) }

func (h *harness) Fatalf(format string, args ...any) {
	h.fail(fmt.Errorf(format, args...), true)
}

func (h *harness) Errorf(format string, args ...any) {
	h.fail(fmt.Errorf(format, args...), false)
}

func (h *harness) Skipf(format string, args ...any) {
	h.fail(fmt.Errorf("%w: %s", errSkipped, fmt.Sprintf(format, args...)), true)
}

func (h *harness) Logf(format string, args ...any) { h.logf(format, args...) }

// Cleanup registers f to run, last registered first, at close.
func (h *harness) Cleanup(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cleanups = append(h.cleanups, f)
}

// TempDir makes a folder removed at close.
func (h *harness) TempDir() string {
	dir, err := os.MkdirTemp("", "loginbench-")
	if err != nil {
		h.Fatal(err)
	}
	h.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// close runs the cleanups (stopping every server testenv started).
// Errors they report are returned.
func (h *harness) close() error {
	h.mu.Lock()
	cs := h.cleanups
	h.cleanups = nil
	h.mu.Unlock()
	var errs []error
	for i := len(cs) - 1; i >= 0; i-- {
		if err := h.do(cs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
