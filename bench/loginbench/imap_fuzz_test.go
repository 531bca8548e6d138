package main

import (
	"strings"
	"testing"
)

// FuzzParseResponse: any line gives a response or an error, never a
// panic, and a tagged response always has a status.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready",
		"a OK Logged in", "a NO [AUTHENTICATIONFAILED] Authentication failed.",
		"+ ", "+", "* BYE Logging out", "* 3 EXISTS", "", " ", "a", "a(b OK", "* PREAUTH x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, err := parseResponse(line)
		if err != nil {
			return
		}
		if r.tag == "" {
			t.Fatalf("%q: empty tag", line)
		}
		if r.tag != "*" && r.tag != "+" && r.status == "" {
			t.Fatalf("%q: tagged response without status", line)
		}
		hasCapability(r.text, "SASL-IR")
		if q, err := quote(line); err == nil && (!strings.HasPrefix(q, `"`) || !strings.HasSuffix(q, `"`)) {
			t.Fatalf("quote(%q) = %q", line, q)
		}
	})
}
