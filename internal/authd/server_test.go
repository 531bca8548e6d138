package authd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTranscripts plays each testdata/*.txt dialogue against a live
// server. "C: " lines are sent, "S: " lines are expected (a trailing "*"
// matches any rest of line, "<EOF>" the server hanging up); "\t" stands
// for TAB.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			t.Parallel()
			_, path := startServer(t, Options{})
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			r := bufio.NewReader(c)
			for n, raw := range strings.Split(string(data), "\n") {
				if raw == "" || strings.HasPrefix(raw, "#") {
					continue
				}
				text := strings.ReplaceAll(raw[3:], `\t`, "\t")
				switch raw[:3] {
				case "C: ":
					if _, err := io.WriteString(c, text+"\n"); err != nil {
						t.Fatalf("line %d: write: %v", n+1, err)
					}
				case "S: ":
					got, err := r.ReadString('\n')
					if text == "<EOF>" {
						if err == nil {
							t.Fatalf("line %d: want the server to hang up, got %q", n+1, got)
						}
						continue
					}
					if err != nil {
						t.Fatalf("line %d: want %q, read error %v", n+1, text, err)
					}
					got = strings.TrimSuffix(got, "\n")
					if prefix, ok := strings.CutSuffix(text, "*"); ok {
						if !strings.HasPrefix(got, prefix) || got == prefix {
							t.Fatalf("line %d: want %q…, got %q", n+1, prefix, got)
						}
					} else if got != text {
						t.Fatalf("line %d: want %q, got %q", n+1, text, got)
					}
				default:
					t.Fatalf("line %d: bad transcript line %q", n+1, raw)
				}
			}
		})
	}
}

// dialHandshake connects and completes the handshake.
func dialHandshake(t *testing.T, path string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "VERSION\t1\t2\nCPID\t1\n")
	r := bufio.NewReader(c)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if l == "DONE\n" {
			return c, r
		}
	}
}

func TestRequestFieldsReachChecker(t *testing.T) {
	fc := &fakeChecker{release: make(chan struct{})}
	_, path := startServer(t, Options{Checker: fc})
	c, r := dialHandshake(t, path)
	io.WriteString(c, "AUTH\t1\tPLAIN\tservice=submission\tlip=192.0.2.1\tlport=587\trip=2001:db8::9\trport=5555\tsecured\tresp=AGFsaWNlAHNlY3JldA==\n")
	if l, _ := r.ReadString('\n'); l != "OK\t1\tuser=alice\n" {
		t.Fatalf("got %q", l)
	}
	req := fc.last()
	if req.Service != "submission" || !req.Secured || req.Remote.String() != "[2001:db8::9]:5555" || req.Local.String() != "192.0.2.1:587" {
		t.Fatalf("request = %+v", req)
	}
}

// A request held back (the failure delay, a slow back end) does not delay
// the other requests on the same connection.
func TestConcurrentRequests(t *testing.T) {
	fc := &fakeChecker{release: make(chan struct{})}
	_, path := startServer(t, Options{Checker: fc})
	c, r := dialHandshake(t, path)
	io.WriteString(c, "AUTH\t1\tPLAIN\tservice=smtp\tresp=AHNsb3cAeA==\n") // slow
	io.WriteString(c, "AUTH\t2\tPLAIN\tservice=smtp\tresp=AGFsaWNlAHNlY3JldA==\n")
	if l, _ := r.ReadString('\n'); l != "OK\t2\tuser=alice\n" {
		t.Fatalf("want request 2 answered first, got %q", l)
	}
	close(fc.release)
	if l, _ := r.ReadString('\n'); l != "FAIL\t1\n" {
		t.Fatalf("got %q", l)
	}
}

func TestMaxRequests(t *testing.T) {
	fc := &fakeChecker{release: make(chan struct{})}
	_, path := startServer(t, Options{Checker: fc, MaxRequests: 1})
	c, r := dialHandshake(t, path)
	io.WriteString(c, "AUTH\t1\tPLAIN\tservice=smtp\tresp=AHNsb3cAeA==\n")
	io.WriteString(c, "AUTH\t2\tPLAIN\tservice=smtp\tresp=AGFsaWNlAHNlY3JldA==\n")
	if l, _ := r.ReadString('\n'); !strings.HasPrefix(l, "FAIL\t2\tcode=temp_fail\ttemp") {
		t.Fatalf("got %q", l)
	}
	close(fc.release)
	if l, _ := r.ReadString('\n'); l != "FAIL\t1\n" {
		t.Fatalf("got %q", l)
	}
}

func TestLineTooLong(t *testing.T) {
	_, path := startServer(t, Options{})
	c, r := dialHandshake(t, path)
	go io.WriteString(c, "AUTH\t1\tPLAIN\tservice=smtp\tresp="+strings.Repeat("A", MaxLineLength)+"\n")
	if l, err := r.ReadString('\n'); err == nil {
		t.Fatalf("want hang-up, got %q", l)
	}
}

func TestTimeouts(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		send string
		want string // "" = hang-up
	}{
		{"handshake", Options{HandshakeTimeout: 50 * time.Millisecond}, "", ""},
		{"idle", Options{IdleTimeout: 50 * time.Millisecond}, "VERSION\t1\t2\nCPID\t1\n", ""},
		{"request", Options{RequestTimeout: 50 * time.Millisecond}, "VERSION\t1\t2\nCPID\t1\nAUTH\t1\tLOGIN\tservice=smtp\n",
			"CONT\t1\tVXNlcm5hbWU6\nFAIL\t1\treason=Authentication request timed out\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, path := startServer(t, tt.opts)
			c, err := net.Dial("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(c, tt.send)
			r := bufio.NewReader(c)
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == "DONE\n" {
					break
				}
			}
			var got strings.Builder
			for {
				l, err := r.ReadString('\n')
				got.WriteString(l)
				if err != nil {
					break
				}
				if tt.want != "" && got.String() == tt.want {
					return
				}
			}
			if got.String() != tt.want {
				t.Fatalf("got %q, want %q", got.String(), tt.want)
			}
		})
	}
}

// Shutdown lets a request in progress answer, then closes.
func TestShutdownWaitsForRequests(t *testing.T) {
	fc := &fakeChecker{release: make(chan struct{})}
	srv, err := NewServer(Options{Checker: fc})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "auth"))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(context.Background(), ln) }()
	c, r := dialHandshake(t, ln.Addr().String())
	io.WriteString(c, "AUTH\t1\tPLAIN\tservice=smtp\tresp=AHNsb3cAeA==\n")
	waitRequests(t, fc, 1)
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(context.Background()) }()
	close(fc.release)
	if l, _ := r.ReadString('\n'); l != "FAIL\t1\n" {
		t.Fatalf("got %q", l)
	}
	if err := <-shut; err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	// A forced shutdown cancels what still runs.
	fc2 := &fakeChecker{release: make(chan struct{})}
	srv2, _ := NewServer(Options{Checker: fc2})
	ln2, _ := net.Listen("unix", filepath.Join(t.TempDir(), "auth2"))
	go srv2.Serve(context.Background(), ln2)
	c2, _ := dialHandshake(t, ln2.Addr().String())
	io.WriteString(c2, "AUTH\t1\tPLAIN\tservice=smtp\tresp=AHNsb3cAeA==\n")
	waitRequests(t, fc2, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv2.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("forced shutdown: %v", err)
	}
}

func TestNewServerMechanisms(t *testing.T) {
	fc := &fakeChecker{}
	if _, err := NewServer(Options{Checker: fc, Mechanisms: []string{"plain", "digest-md5"}}); err == nil {
		t.Fatal("unimplemented mechanism accepted")
	}
	if _, err := NewServer(Options{}); err == nil {
		t.Fatal("server without checker accepted")
	}
	s, err := NewServer(Options{Checker: fc})
	if err != nil || strings.Join(s.Mechanisms(), " ") != "PLAIN" {
		t.Fatalf("default mechanisms %v, %v", s.Mechanisms(), err)
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ raw, esc string }{
		{"plain", "plain"},
		{"a\tb", "a\x01tb"},
		{"a\nb\rc", "a\x01nb\x01rc"},
		{"\x00\x01", "\x010\x011"},
	}
	for _, tt := range tests {
		if got := Escape(tt.raw); got != tt.esc {
			t.Errorf("Escape(%q) = %q, want %q", tt.raw, got, tt.esc)
		}
		if got := Unescape(tt.esc); got != tt.raw {
			t.Errorf("Unescape(%q) = %q, want %q", tt.esc, got, tt.raw)
		}
	}
	if got := Unescape("a\x01lb\x01xc\x01"); got != "a\nbxc" {
		t.Errorf("Unescape old LF / unknown escape = %q", got)
	}
	l, err := ParseLine("OK\t1\tuser=a\x01tb")
	if err != nil || l.Command != "OK" || ParseParams(l.Args[1:]).values["user"] != "a\tb" {
		t.Fatalf("ParseLine = %+v, %v", l, err)
	}
}

// waitRequests polls until the checker has seen n requests.
func waitRequests(t *testing.T, fc *fakeChecker, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		fc.mu.Lock()
		got := len(fc.reqs)
		fc.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d requests reached the checker, want %d", got, n)
		}
	}
}
