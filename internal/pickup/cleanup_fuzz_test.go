package pickup

import (
	"strings"
	"testing"
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
