package imapd

import (
	"testing"
)

// FuzzMessage runs the MIME structure parser and everything built on it
// (ENVELOPE, BODYSTRUCTURE, sections, SEARCH decoding) on arbitrary
// messages.
func FuzzMessage(f *testing.F) {
	for _, tc := range structureCases {
		f.Add([]byte(tc.msg))
	}
	f.Add([]byte("Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: message/rfc822\r\n\r\n--a--"))
	f.Add([]byte("Subject: =?utf-8?q?=ff?=\r\nTo: a:b:c;;,<@x:y>(((\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		root := parseMessage(data)
		envelope(data, root)
		bodyStructure(data, root, true)
		bodyStructure(data, root, false)
		for _, path := range [][]int{nil, {1}, {2}, {1, 1}, {2, 1, 1}} {
			for _, spec := range []string{"", "HEADER", "TEXT", "MIME", "HEADER.FIELDS"} {
				if spec == "MIME" && len(path) == 0 {
					continue
				}
				b, ok := sectionBytes(data, root, section{path: path, specifier: spec, fields: []string{"subject"}})
				if ok && spec == "" && len(path) == 0 && string(b) != string(data) {
					t.Fatalf("BODY[] is not the message")
				}
			}
		}
		bodyContains(data, root, "x")
		headerContains(data, root, "subject", "x")
	})
}

// FuzzAddressList checks the address parser never fails to produce a
// list whose non-group entries have a mailbox and a host.
func FuzzAddressList(f *testing.F) {
	for _, s := range []string{`"a b" <c@d>`, `g: a@b, c@d;`, `x (y)`, `<@a,@b:c@d>`, `a.b@c.d, , ;`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, a := range parseAddressList(s) {
			if !a.group && (a.mailbox == "" || a.host == "") {
				t.Fatalf("address %+v from %q", a, s)
			}
		}
	})
}
