package authd

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"postcote/internal/sasl"
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

// FuzzClient plays arbitrary server output (handshake and replies) to the
// client: it must end with an answer or an error, never crash or hang.
func FuzzClient(f *testing.F) {
	path := filepath.Join(f.TempDir(), "auth")
	ln, err := net.Listen("unix", path)
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	var script atomic.Pointer[string] // what the server says on every connection
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			out := *script.Load()
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(2 * time.Second))
				io.WriteString(c, out)
				// Then EOF: the script is all the server says.
				c.(*net.UnixConn).CloseWrite()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	hs := "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\tab\nDONE\n"
	f.Add(hs + "OK\t1\tuser=alice\n")
	f.Add(hs + "FAIL\t1\ttemp\treason=x\x01t\n")
	f.Add(hs + "CONT\t1\tVXNlcm5hbWU6\nCONT\t1\t\nOK\t1\n")
	f.Add("VERSION\t1\t2\nMECH\tLOGIN\nDONE\nCONT\t1\tVXNlcm5hbWU6\nCONT\t1\tUGFzc3dvcmQ6\nOK\t1\tuser=a\n")
	f.Add("VERSION\t2\t0\n")
	f.Fuzz(func(t *testing.T, server string) {
		script.Store(&server)
		cl, err := NewClient(path, ClientOptions{Timeout: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		done := make(chan struct{})
		go func() {
			defer close(done)
			user, err := cl.CheckPassword(context.Background(), sasl.Request{User: "alice", Password: "secret"})
			if err == nil && user == "" {
				t.Error("success without a user name")
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("client hangs")
		}
	})
}
