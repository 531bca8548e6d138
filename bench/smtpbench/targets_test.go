package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// The tests below start the real servers the benchmark compares: a few
// seconds each, so they are skipped with -short, and skipped where the
// Debian packages are missing or the test does not run as root.

func skipUnlessPostfix(t *testing.T, deliver bool) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Postfix: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("a private Postfix instance needs root")
	}
	if _, err := os.Stat(postfixBinary); err != nil {
		t.Skip("postfix not installed (apt-get install postfix)")
	}
	if _, err := os.Stat(dovecotBinary); deliver && err != nil {
		t.Skip("dovecot not installed (apt-get install dovecot-core dovecot-lmtpd)")
	}
}

// checkTarget runs a small load through a started target and checks the
// measure, then stops it and checks its folder is gone.
func checkTarget(t *testing.T, tg *target, wantDelivery bool) {
	t.Helper()
	stopped := false
	defer func() {
		if !stopped {
			tg.stop(context.Background())
		}
	}()
	l := testLoad("")
	l.Messages, l.Sessions = 20, 4
	m, err := runOnce(context.Background(), tg, l, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if m.accepted != 20 || m.failed != 0 || m.acceptRate <= 0 || m.note != "" {
		t.Fatalf("%s: %+v, want 20 accepted", tg.label, m)
	}
	if wantDelivery != (m.deliverRate > 0) {
		t.Errorf("%s: delivered rate %v, want one: %v", tg.label, m.deliverRate, wantDelivery)
	}
	if wantDelivery {
		if n, err := countMaildir(tg.maildir); err != nil || n != 20 {
			t.Errorf("%s: %d messages in %s (%v), want 20", tg.label, n, tg.maildir, err)
		}
	}
	dir := tg.maildir
	stopped = true
	if err := tg.stop(context.Background()); err != nil {
		t.Errorf("stop %s: %v", tg.label, err)
	}
	if dir != "" {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s left %s behind (%v)", tg.label, dir, err)
		}
	}
}

func TestPostfixTargets(t *testing.T) {
	tests := []struct {
		name    string
		deliver bool
		label   string
	}{
		{"discard", false, "Postfix (discard)"},
		{"lmtp to dovecot", true, "Postfix→Dovecot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			skipUnlessPostfix(t, tt.deliver)
			tg, err := startPostfix(context.Background(), benchRecipient, tt.deliver, false)
			if err != nil {
				t.Fatal(err)
			}
			if tg.label != tt.label || !strings.Contains(tg.setup, "Postfix 3.") {
				t.Errorf("label %q setup %q", tg.label, tg.setup)
			}
			checkTarget(t, tg, tt.deliver)
		})
	}
}

func TestPostcoteTarget(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts postcote: skipped with -short")
	}
	bin := testenv.Binary(t)
	for _, discard := range []bool{false, true} {
		tg, err := startPostcote(context.Background(), bin, benchRecipient, discard, false)
		if err != nil {
			t.Fatal(err)
		}
		checkTarget(t, tg, !discard)
	}
}

func TestPostcoteTargetMissingBinary(t *testing.T) {
	_, err := startPostcote(context.Background(), "/nonexistent/postcote", benchRecipient, false, false)
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("error %v, want one that says how to build it", err)
	}
}
