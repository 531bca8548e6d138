package transport

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzSMTPReply feeds arbitrary server output to the reply parser: it
// must return a reply or an error, never panic, and what it returns must
// be a valid code with printable text.
func FuzzSMTPReply(f *testing.F) {
	for _, s := range []string{"250 ok\r\n", "250-a\r\n250-SIZE 10\r\n250 PIPELINING\r\n", "550 5.1.1 <x>: no\r\n",
		"250-x\r\n251 y\r\n", "2\r\n", "999 x\r\n", "250", "421-4.3.2 a\n421 b\n", strings.Repeat("250-x\r\n", 2000)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		for _, ehlo := range []bool{false, true} {
			rep, ext, err := readReplyExt(bufio.NewReader(strings.NewReader(in)), ehlo)
			if err != nil {
				continue
			}
			if rep.code < 200 || rep.code > 599 {
				t.Fatalf("code %d from %q", rep.code, in)
			}
			if printableText(rep.text) != rep.text {
				t.Fatalf("control characters in %q", rep.text)
			}
			for k, v := range ext {
				if printableText(k+v) != k+v {
					t.Fatalf("control characters in extension %q %q", k, v)
				}
			}
			if rep.dsn != "" && !isEnhanced(rep.dsn, rep.code) {
				t.Fatalf("bad enhanced code %q", rep.dsn)
			}
		}
	})
}

// FuzzDowngradeMIME checks that the 8-bit to quoted-printable conversion
// never panics and leaves no 8-bit byte outside header fields.
func FuzzDowngradeMIME(f *testing.F) {
	f.Add("Content-Type: text/plain\r\n\r\n\xc3\xa9\r\n")
	f.Add("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n\xff\r\n--b--\r\n")
	f.Add("Content-Type: message/rfc822\r\n\r\nContent-Type: multipart/x; boundary=c\r\n\r\n--c\r\n\r\n\x80\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		out := downgradeMIME([]byte(in), "h", "Q")
		if len(out) > 4*len(in)+4096 {
			t.Fatalf("output grew from %d to %d", len(in), len(out))
		}
	})
}
