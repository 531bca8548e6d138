package authd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/sasl"
)

func TestClientAgainstServer(t *testing.T) {
	for _, mechs := range [][]string{{"PLAIN", "LOGIN"}, {"LOGIN"}} {
		t.Run(strings.Join(mechs, "+"), func(t *testing.T) {
			fc := &fakeChecker{release: make(chan struct{})}
			_, path := startServer(t, Options{Checker: fc, Mechanisms: mechs})
			cl, err := NewClient("unix:"+path, ClientOptions{Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := context.Background()
			tests := []struct {
				user, pass string
				want       error
			}{
				{"alice", "secret", nil},
				{"alice", "wrong", sasl.ErrAuthFailed},
				{"nobody", "secret", sasl.ErrAuthFailed},
				{"temp", "secret", sasl.ErrTempFail},
				{"alice", "tab\there\nand\x01", sasl.ErrAuthFailed},
			}
			for _, tt := range tests {
				user, err := cl.CheckPassword(ctx, sasl.Request{Service: "smtp", User: tt.user, Password: tt.pass,
					Remote: &net.TCPAddr{IP: net.ParseIP("192.0.2.9"), Port: 1234}, Secured: true})
				if !errors.Is(err, tt.want) || (tt.want == nil && user != "alice") {
					t.Errorf("%s/%q: user %q err %v, want %v", tt.user, tt.pass, user, err, tt.want)
				}
			}
			last := fc.last()
			if last.Password != "tab\there\nand\x01" || last.Remote.String() != "192.0.2.9:1234" || !last.Secured {
				t.Errorf("request seen by the server: %+v", last)
			}
		})
	}
}

func TestClientConcurrent(t *testing.T) {
	_, path := startServer(t, Options{})
	cl, _ := NewClient(path, ClientOptions{})
	defer cl.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pass := "secret"
			if i%2 == 1 {
				pass = "wrong"
			}
			_, err := cl.CheckPassword(context.Background(), sasl.Request{User: "alice", Password: pass})
			if (i%2 == 0) != (err == nil) {
				errs <- fmt.Errorf("request %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestClientUnreachable(t *testing.T) {
	cl, _ := NewClient(filepath.Join(t.TempDir(), "none"), ClientOptions{Timeout: time.Second})
	if _, err := cl.CheckPassword(context.Background(), sasl.Request{User: "alice", Password: "secret"}); !errors.Is(err, sasl.ErrTempFail) {
		t.Fatalf("got %v, want ErrTempFail", err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	cl2, _ := NewClient("inet:"+addr, ClientOptions{Timeout: time.Second})
	if _, err := cl2.CheckPassword(context.Background(), sasl.Request{User: "alice", Password: "secret"}); !errors.Is(err, sasl.ErrTempFail) {
		t.Fatalf("tcp: got %v, want ErrTempFail", err)
	}
}

// fakeAuthServer accepts one connection at a time and runs fn on it after
// the handshake.
func fakeAuthServer(t *testing.T, fn func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, "VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t1\nCUID\t1\nCOOKIE\tabc\nDONE\n")
			r := bufio.NewReader(c)
			r.ReadString('\n')
			r.ReadString('\n')
			fn(c, r)
			c.Close()
		}
	}()
	return "inet:" + ln.Addr().String()
}

func TestClientServerMisbehaves(t *testing.T) {
	tests := []struct {
		name string
		fn   func(c net.Conn, r *bufio.Reader)
		want error
	}{
		{"silent", func(c net.Conn, r *bufio.Reader) { r.ReadString('\n'); time.Sleep(300 * time.Millisecond) }, sasl.ErrTempFail},
		{"hangs up", func(c net.Conn, r *bufio.Reader) { r.ReadString('\n') }, sasl.ErrTempFail},
		{"garbage", func(c net.Conn, r *bufio.Reader) { r.ReadString('\n'); io.WriteString(c, "OK\tnotanid\n") }, sasl.ErrTempFail},
		{"fail with reason", func(c net.Conn, r *bufio.Reader) {
			l, _ := r.ReadString('\n')
			id := strings.Split(l, "\t")[1]
			io.WriteString(c, "FAIL\t"+id+"\tuser=alice\treason=Password expired\n")
		}, sasl.ErrAuthFailed},
		{"temp", func(c net.Conn, r *bufio.Reader) {
			l, _ := r.ReadString('\n')
			id := strings.Split(l, "\t")[1]
			io.WriteString(c, "FAIL\t"+id+"\ttemp\n")
		}, sasl.ErrTempFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeAuthServer(t, tt.fn)
			cl, _ := NewClient(addr, ClientOptions{Timeout: 200 * time.Millisecond})
			defer cl.Close()
			_, err := cl.CheckPassword(context.Background(), sasl.Request{User: "alice", Password: "secret"})
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// The client reconnects after the server closed its connection (idle
// timeout, restart).
func TestClientReconnects(t *testing.T) {
	_, path := startServer(t, Options{IdleTimeout: 20 * time.Millisecond})
	cl, _ := NewClient(path, ClientOptions{})
	defer cl.Close()
	for i := range 3 {
		if _, err := cl.CheckPassword(context.Background(), sasl.Request{User: "alice", Password: "secret"}); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		// Wait until the server has dropped the idle connection.
		cl.mu.Lock()
		cc := cl.conn
		cl.mu.Unlock()
		for deadline := time.Now().Add(5 * time.Second); cc != nil && cc.error() == nil; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("server never closed the idle connection")
			}
		}
	}
}

func TestParseAddress(t *testing.T) {
	tests := []struct{ spec, network, address string }{
		{"inet:127.0.0.1:12345", "tcp", "127.0.0.1:12345"},
		{"inet:[::1]:12345", "tcp", "[::1]:12345"},
		{"unix:/run/dovecot/auth-client", "unix", "/run/dovecot/auth-client"},
		{"/var/spool/postfix/private/auth", "unix", "/var/spool/postfix/private/auth"},
		{"inet:nohost", "", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		n, a, err := ParseAddress(tt.spec)
		if n != tt.network || a != tt.address || (err != nil) != (tt.network == "") {
			t.Errorf("ParseAddress(%q) = %q %q %v", tt.spec, n, a, err)
		}
	}
}
