package maillog

import (
	"strings"
	"sync"
	"testing"
)

func TestLinesAndBuffer(t *testing.T) {
	var buf Buffer
	l := New(&buf, "mx", false)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.Printf("smtpd", "connect from unknown[127.0.0.1]")
		}()
	}
	wg.Wait()
	l.Warnf("smtpd", "too many errors")
	l.Debugf("auth", "hidden")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 51 {
		t.Fatalf("%d lines, want 51 (debug off): %q", len(lines), buf.String())
	}
	for _, line := range lines[:50] {
		if !strings.HasPrefix(line, "postcote/smtpd[") || !strings.HasSuffix(line, "]: connect from unknown[127.0.0.1]") {
			t.Errorf("line %q not in Postfix's shape", line)
		}
	}
	if !strings.HasSuffix(lines[50], "]: warning: too many errors") {
		t.Errorf("warning line %q", lines[50])
	}
	l.SetDebug(true)
	l.Debugf("auth", "shown")
	if !strings.Contains(buf.String(), "postcote/auth[") || !strings.Contains(buf.String(), "debug: shown") {
		t.Errorf("debug line missing: %q", buf.String())
	}
}
