package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"postcote/internal/queue"
)

// LMTP is Postfix's lmtp(8) client: it delivers over LMTP (RFC 2033) to
// the next hop "unix:PATH" (a relative path is under queue_directory, as
// in guide 003's lmtp:unix:private/dovecot-lmtp) or "inet:host[:port]"
// (port 24 by default; "[host]" is the same host, LMTP does no MX
// lookup). It speaks LHLO, STARTTLS when offered (lmtp_tls_security_level),
// PIPELINING when offered, and maps the one reply per recipient after
// DATA (RFC 2033 4.2) to a result per recipient.
type LMTP struct {
	Hostname string // the LHLO name: myhostname
	QueueDir string // queue_directory, for relative unix socket paths
	// TLSLevel is lmtp_tls_security_level: "none" or "" (never STARTTLS),
	// "may" (STARTTLS when offered, else clear text), "encrypt" (STARTTLS
	// required, certificate not checked), "verify" and "secure" (STARTTLS
	// required and the certificate must chain to TLS.RootCAs, or the
	// system's roots, and name the next-hop host). Other levels (dane,
	// fingerprint) defer rather than fall back to clear text.
	TLSLevel string
	// TLS is the client configuration for STARTTLS (RootCAs from
	// lmtp_tls_CAfile); nil means defaults.
	TLS *tls.Config
	// Timeouts: lmtp_connect_timeout, lmtp_*_timeout. Zero means
	// Postfix's defaults (0 = the OS's for connect, which here is 30 s;
	// 300 s for commands, 600 s for the end of DATA).
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	DataTimeout    time.Duration
	// Dial opens connections; nil means net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
}

// Deliver implements Agent.
func (l *LMTP) Deliver(ctx context.Context, msg *queue.Message, rcpts []int, nexthop string) []queue.Result {
	start := time.Now()
	body, err := msg.Open()
	if err != nil {
		return each(rcpts, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0",
			Reply: "cannot read queued message: " + err.Error(), Relay: "none", Transport: "lmtp"})
	}
	defer body.Close()
	res := l.Send(ctx, &msg.Envelope, msg.Size, body, rcpts, nexthop)
	for i := range res {
		res[i].Delay = time.Since(start) - res[i].ConnDelay
	}
	return res
}

// lmtpDest is a parsed next hop.
type lmtpDest struct {
	network, address string
	name             string // for log texts: "127.0.0.1[127.0.0.1]:24", "private/dovecot-lmtp"
	host             string // "host NAME said:" part
}

// parseLMTPNexthop reads "unix:PATH", "inet:host[:port]", "[host]:port" or
// "host" (Postfix's lmtp(8) destination syntax).
func (l *LMTP) parseNexthop(nexthop string) (lmtpDest, error) {
	nexthop = strings.TrimSpace(nexthop)
	if p, ok := strings.CutPrefix(nexthop, "unix:"); ok {
		if p == "" {
			return lmtpDest{}, errors.New("empty unix socket path")
		}
		full := p
		if !filepath.IsAbs(p) {
			full = filepath.Join(l.QueueDir, p)
		}
		// Postfix names a unix-domain peer after its own host name and
		// the socket: relay=mail.example.com[private/dovecot-lmtp].
		name := l.Hostname + "[" + p + "]"
		return lmtpDest{network: "unix", address: full, name: name, host: name}, nil
	}
	hp := strings.TrimPrefix(nexthop, "inet:")
	host, port := hp, "24"
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return lmtpDest{}, fmt.Errorf("bad next hop %q: missing ]", nexthop)
		}
		host = hp[1:end]
		rest := hp[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return lmtpDest{}, fmt.Errorf("bad next hop %q", nexthop)
			}
			port = rest[1:]
		}
	} else if i := strings.LastIndexByte(hp, ':'); i >= 0 && strings.Count(hp, ":") == 1 {
		host, port = hp[:i], hp[i+1:]
	}
	if host == "" {
		return lmtpDest{}, fmt.Errorf("bad next hop %q: no host", nexthop)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		if _, err := net.LookupPort("tcp", port); err != nil {
			return lmtpDest{}, fmt.Errorf("bad next hop %q: bad port %q", nexthop, port)
		}
	}
	return lmtpDest{network: "tcp", address: net.JoinHostPort(host, port), host: host}, nil
}

// lmtpConn is one LMTP connection.
type lmtpConn struct {
	l    *LMTP
	c    net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	dest lmtpDest
	ext  map[string]string
}

// lmtpReply is one (possibly multi-line) server reply.
type lmtpReply struct {
	code int
	text string // the lines joined with " ", codes removed
	dsn  string // the enhanced status code of the first line, if any
}

func (r lmtpReply) String() string { return fmt.Sprintf("%d %s", r.code, r.text) }

// status is the reply's enhanced code, or the class default (RFC 3463).
func (r lmtpReply) status() string {
	if r.dsn != "" {
		return r.dsn
	}
	return fmt.Sprintf("%d.0.0", r.code/100)
}

func (c *lmtpConn) deadline(d time.Duration) { c.c.SetDeadline(time.Now().Add(d)) }

func (c *lmtpConn) readReply() (lmtpReply, error) {
	var rep lmtpReply
	var texts []string
	for n := 0; ; n++ {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return rep, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) > 2048 || n > 1000 {
			return rep, errors.New("reply too long")
		}
		if len(line) < 3 {
			return rep, fmt.Errorf("malformed reply %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || code < 200 || code > 599 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
			return rep, fmt.Errorf("malformed reply %q", printableText(line))
		}
		if n > 0 && code != rep.code {
			return rep, fmt.Errorf("malformed multi-line reply %q", printableText(line))
		}
		rep.code = code
		text := ""
		if len(line) > 4 {
			text = line[4:]
		}
		if n == 0 {
			if f := strings.Fields(text); len(f) > 0 && isEnhanced(f[0], code) {
				rep.dsn = f[0]
			}
		}
		texts = append(texts, printableText(text))
		if len(line) == 3 || line[3] == ' ' {
			break
		}
	}
	rep.text = strings.Join(texts, " ")
	return rep, nil
}

// isEnhanced checks an RFC 3463 status code whose class matches code.
func isEnhanced(s string, code int) bool {
	p := strings.Split(s, ".")
	if len(p) != 3 || len(p[0]) != 1 || p[0][0] != byte('0'+code/100) {
		return false
	}
	for _, x := range p[1:] {
		if n, err := strconv.Atoi(x); err != nil || n < 0 || n > 999 || len(x) > 3 {
			return false
		}
	}
	return true
}

// printableText replaces control characters, so a hostile server cannot
// inject lines into logs or bounces.
func printableText(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}
