package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// fakeMX is a scripted SMTP server on 127.0.0.1 for the client tests.
type fakeMX struct {
	t         *testing.T
	ln        net.Listener
	greeting  string   // default "220 fake ESMTP"
	ext       []string // EHLO keywords after the name line
	noEHLO    bool     // answer EHLO with 502 (HELO only)
	tls       *tls.Config
	badTLS    bool                     // answer STARTTLS with 220, then garbage
	rcptReply func(addr string) string // default "250 2.1.5 Ok"
	dataReply string                   // default "250 2.0.0 Ok: queued as ABC"
	// dropAfterRSET closes the connection right after answering RSET,
	// as a server whose idle timer ran out would.
	dropAfterRSET bool
	// mail421 answers MAIL on a session's second transaction with 421.
	mail421 bool

	mu      sync.Mutex
	conns   int
	cmds    []string // every command line, in order
	msgs    []string // received contents, dot-unstuffed
	tlsUsed []bool   // per message: was it sent over TLS
	pipe    []bool   // per MAIL: were more commands already buffered
	wg      sync.WaitGroup
}

func startFakeMX(t *testing.T, f *fakeMX) *fakeMX {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.t, f.ln = t, ln
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns++
			f.mu.Unlock()
			f.wg.Add(1)
			go func() { defer f.wg.Done(); f.serve(c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeMX) addr() string { return f.ln.Addr().String() }

func (f *fakeMX) record(cmd string) {
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	f.mu.Unlock()
}

func (f *fakeMX) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

func (f *fakeMX) messages() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.msgs...)
}

// connections is how many connections the server accepted.
func (f *fakeMX) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

func (f *fakeMX) sawMail() bool {
	for _, c := range f.commands() {
		if strings.HasPrefix(c, "MAIL") {
			return true
		}
	}
	return false
}

func (f *fakeMX) serve(nc net.Conn) {
	defer func() { nc.Close() }()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	r, w := bufio.NewReader(nc), bufio.NewWriter(nc)
	say := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
	g := f.greeting
	if g == "" {
		g = "220 fake ESMTP"
	}
	say(g)
	if !strings.HasPrefix(g, "220") {
		// Wait for QUIT or EOF.
		for {
			line, err := r.ReadString('\n')
			if err != nil || strings.HasPrefix(strings.ToUpper(line), "QUIT") {
				say("221 bye")
				return
			}
			say("503 bad sequence")
		}
	}
	inTLS := false
	accepted := 0
	mails := 0
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		f.record(line)
		verb := strings.ToUpper(strings.SplitN(line, " ", 2)[0])
		switch verb {
		case "EHLO":
			if f.noEHLO {
				say("502 5.5.2 no EHLO")
				continue
			}
			lines := []string{"fake.example"}
			lines = append(lines, f.ext...)
			if f.tls != nil && !inTLS || f.badTLS {
				lines = append(lines, "STARTTLS")
			}
			for i, l := range lines {
				sep := "-"
				if i == len(lines)-1 {
					sep = " "
				}
				w.WriteString("250" + sep + l + "\r\n")
			}
			w.Flush()
		case "HELO":
			say("250 fake.example")
		case "STARTTLS":
			say("220 2.0.0 go ahead")
			if f.badTLS {
				nc.Write([]byte("this is not TLS\r\n\r\n"))
				return
			}
			tc := tls.Server(nc, f.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			nc, inTLS = tc, true
			r, w = bufio.NewReader(tc), bufio.NewWriter(tc)
		case "MAIL":
			f.mu.Lock()
			f.pipe = append(f.pipe, r.Buffered() > 0)
			f.mu.Unlock()
			accepted = 0
			mails++
			if f.mail421 && mails > 1 {
				say("421 4.4.2 fake.example Error: timeout exceeded")
				return
			}
			say("250 2.1.0 Ok")
		case "RCPT":
			rep := "250 2.1.5 Ok"
			if f.rcptReply != nil {
				addr := line[strings.IndexByte(line, '<')+1 : strings.IndexByte(line, '>')]
				rep = f.rcptReply(addr)
			}
			if strings.HasPrefix(rep, "2") {
				accepted++
			}
			say(rep)
		case "DATA":
			if accepted == 0 {
				say("554 5.5.1 Error: no valid recipients")
				continue
			}
			say("354 End data with <CR><LF>.<CR><LF>")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(strings.TrimPrefix(l, "."))
			}
			f.mu.Lock()
			f.msgs = append(f.msgs, msg.String())
			f.tlsUsed = append(f.tlsUsed, inTLS)
			f.mu.Unlock()
			rep := f.dataReply
			if rep == "" {
				rep = "250 2.0.0 Ok: queued as ABC"
			}
			say(rep)
		case "RSET", "NOOP":
			say("250 2.0.0 Ok")
			if verb == "RSET" && f.dropAfterRSET {
				return
			}
		case "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 Error: command not recognized")
		}
	}
}

// testNet maps the addresses the client dials (IP:port from the fake DNS)
// to in-test listeners; anything else is refused, so nothing leaves the
// machine.
type testNet struct {
	mu    sync.Mutex
	to    map[string]string // "127.0.0.2:25" → listener address
	dials []string
}

func (n *testNet) dial(ctx context.Context, network, address string) (net.Conn, error) {
	n.mu.Lock()
	n.dials = append(n.dials, address)
	real, ok := n.to[address]
	n.mu.Unlock()
	if !ok {
		return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, real)
}

func (n *testNet) dialed() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.dials...)
}

func ips(s ...string) []net.IPAddr {
	var out []net.IPAddr
	for _, x := range s {
		out = append(out, net.IPAddr{IP: net.ParseIP(x)})
	}
	return out
}

// testCA makes a CA and a server configuration presenting a certificate
// signed by it for names; it returns the CA certificate in PEM too.
func testCA(t *testing.T, names ...string) (caPEM []byte, server *tls.Config) {
	t.Helper()
	ca := testenv.NewTestCA(t, "postcote test CA")
	return ca.CertPEM, ca.ServerTLS(t, names...)
}

func opener(s string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(s)), nil }
}

type tlsConfig = tls.Config

const versionTLS12 = tls.VersionTLS12
