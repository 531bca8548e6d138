package authd

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func FuzzParseLine(f *testing.F) {
	f.Add("AUTH\t1\tPLAIN\tservice=smtp\tresp=AGFsaWNlAHNlY3JldA==")
	f.Add("OK\t1\tuser=a\x01tb\x01")
	f.Add("\t\t=\x01")
	f.Fuzz(func(t *testing.T, s string) {
		if l, err := ParseLine(s); err == nil {
			ParseParams(l.Args)
			if len(l.Args) > 0 {
				parseID(l.Args[0])
			}
		}
		if got := Unescape(Escape(s)); got != s {
			t.Fatalf("Unescape(Escape(%q)) = %q", s, got)
		}
		if e := Escape(s); strings.ContainsAny(e, "\t\n\r\x00") {
			t.Fatalf("Escape(%q) = %q keeps a separator", s, e)
		}
	})
}

// FuzzServer feeds arbitrary client input after a valid handshake: the
// server must answer or hang up, never crash or hang.
func FuzzServer(f *testing.F) {
	_, path := startServer(f, Options{RequestTimeout: 100 * time.Millisecond})
	f.Add("AUTH\t1\tPLAIN\tservice=smtp\tresp=AGFsaWNlAHNlY3JldA==\n")
	f.Add("AUTH\t1\tLOGIN\tservice=smtp\nCONT\t1\tYWxpY2U=\nCONT\t1\tc2VjcmV0\n")
	f.Add("AUTH\t1\tLOGIN\tservice=smtp\nCANCEL\t1\nCONT\t1\t\nCONT\t2\n")
	f.Add("AUTH\t4294967295\tPLAIN\tservice=smtp\tresp=\n")
	f.Fuzz(func(t *testing.T, input string) {
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		go func() {
			io.WriteString(c, "VERSION\t1\t2\nCPID\t1\n"+input)
			c.(*net.UnixConn).CloseWrite()
		}()
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("server did not finish: %v", err)
		}
	})
}
