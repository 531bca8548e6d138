package pickup

import (
	"net/mail"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzPrepare: any message and header values give a well-formed result:
// CRLF only, the header ends once, no Bcc, never a panic.
func FuzzPrepare(f *testing.F) {
	f.Add("To: a@b\nBcc: c@d\n\nbody\n", "Name", true)
	f.Add("From x\n\tcont\n:\n\r\n", "", false)
	f.Add("To: \"unterminated <a@b\n\n", "\"", true)
	f.Add("To: root, <a>, \"q,\\\" x\" (c (d)) <r>\nCc: x (y\n\n", "", true)
	f.Fuzz(func(t *testing.T, msg, name string, extract bool) {
		sub := &Submission{FullName: name, Extract: extract, Recipients: []string{"u"}}
		if sub.Validate() != nil {
			return
		}
		env, content, err := Prepare(sub, []byte(msg), 0, "root", "4ABC", testNow, testSite)
		if err != nil {
			t.Fatal(err)
		}
		c := string(content)
		if strings.Contains(strings.ReplaceAll(c, "\r\n", ""), "\n") {
			t.Fatalf("bad line ends: %q", c)
		}
		if !strings.Contains(c, "\r\n\r\n") {
			t.Fatalf("no end of header: %q", c)
		}
		for _, r := range env.Recipients {
			if strings.ContainsAny(r.Address, "\r\n") {
				t.Fatalf("recipient with line break: %q", r.Address)
			}
		}
	})
}

// FuzzFromHeader: whatever the full name, the From: value cleanup adds
// is one line that reads back (RFC 5322) as the sender, in both formats.
func FuzzFromHeader(f *testing.F) {
	f.Add("Jane Doe", false)
	f.Add(`a"b\c(d`, true)
	f.Add("Jürgen (x", false)
	f.Add("%!:;", true)
	f.Fuzz(func(t *testing.T, name string, obsolete bool) {
		if (&Submission{FullName: name}).Validate() != nil {
			return
		}
		format := FromStandard
		if obsolete {
			format = FromObsolete
		}
		got := fromHeader(name, "user@example.com", format)
		if strings.ContainsAny(got, "\r\n") {
			t.Fatalf("line break in %q", got)
		}
		if !utf8.ValidString(name) {
			return // net/mail refuses what is not UTF-8; the line is still one line
		}
		a, err := mail.ParseAddress(got)
		if err != nil || a.Address != "user@example.com" {
			t.Fatalf("From: %s reads back as %v, %v", got, a, err)
		}
	})
}
