package transport

import (
	"bufio"
	"strings"
	"testing"
)

// FuzzLMTPReply parses arbitrary server replies: no panic, and a reply
// that parses has a valid code and printable text.
func FuzzLMTPReply(f *testing.F) {
	f.Add("250 2.0.0 <a@b> Saved\r\n")
	f.Add("250-mx\r\n250-PIPELINING\r\n250 STARTTLS\r\n")
	f.Add("550-5.1.1 first\r\n550 second\r\n")
	f.Add("451 \x00\x1b[31m\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		c := &lmtpConn{r: bufio.NewReader(strings.NewReader(in))}
		rep, err := c.readReply()
		if err == nil {
			if rep.code < 200 || rep.code > 599 {
				t.Fatalf("code %d accepted", rep.code)
			}
			if strings.ContainsAny(rep.text, "\r\n\x00") {
				t.Fatalf("unprintable text %q", rep.text)
			}
		}
		c2 := &lmtpConn{r: bufio.NewReader(strings.NewReader(in))}
		c2.readReplyLines()
	})
}

// FuzzLMTPNexthop parses arbitrary next hops without panicking.
func FuzzLMTPNexthop(f *testing.F) {
	for _, s := range []string{"unix:private/dovecot-lmtp", "inet:dovecot.company.com", "inet:[::1]:24", "[127.0.0.1]:2424", "inet:[x"} {
		f.Add(s)
	}
	l := &LMTP{Hostname: "h", QueueDir: "/q"}
	f.Fuzz(func(t *testing.T, in string) {
		d, err := l.parseNexthop(in)
		if err == nil && d.network != "unix" && d.network != "tcp" {
			t.Fatalf("network %q", d.network)
		}
	})
}
