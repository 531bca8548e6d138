package qctl

import (
	"strings"
	"testing"

	"postcote/internal/maillog"
)

// FuzzAnswer: any request line gets exactly one reply line, OK or ERR.
func FuzzAnswer(f *testing.F) {
	for _, s := range []string{"LIST", "HOLD ALL deferred", "DELETE 4AAA hold", "RELEASE \x00", "FLUSH x", "FLUSH 4AAA", "REQUEUE ALL hold"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, line string, privileged bool) {
		s := &Server{q: newFake(), log: maillog.Discard()}
		got := s.answer(line, privileged, 1000)
		if strings.ContainsAny(got, "\r\n") || !(got == "OK" || strings.HasPrefix(got, "OK ") || strings.HasPrefix(got, "ERR ")) {
			t.Fatalf("answer(%q) = %q", line, got)
		}
	})
}
