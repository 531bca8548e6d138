package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"postcote/internal/queue"
)

// Send delivers one message (its envelope, size and content) to the
// recipients rcpts of env over LMTP to nexthop, and returns one result
// per recipient. Deliver calls it with the queued message.
func (l *LMTP) Send(ctx context.Context, env *queue.Envelope, size int64, body io.Reader, rcpts []int, nexthop string) []queue.Result {
	dest, err := l.parseNexthop(nexthop)
	if err != nil {
		// A configuration error: the mail waits until it is fixed.
		return each(rcpts, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.5",
			Reply: "lmtp transport: " + err.Error(), Relay: "none", Transport: "lmtp"})
	}
	start := time.Now()
	c, err := l.connect(ctx, dest)
	connDelay := time.Since(start)
	if err != nil {
		r := errResult(err, "4.4.1")
		r.Relay, r.Transport, r.ConnDelay = dest.relay(), "lmtp", connDelay
		return each(rcpts, r)
	}
	defer c.c.Close()
	stop := context.AfterFunc(ctx, func() { c.c.SetDeadline(time.Now()) })
	defer stop()
	results := c.transaction(env, size, body, rcpts)
	for i := range results {
		results[i].ConnDelay = connDelay
		results[i].Transport = "lmtp"
		if results[i].Relay == "" {
			results[i].Relay = c.dest.relay()
		}
	}
	return results
}

// relay is the relay= of the log line.
func (d lmtpDest) relay() string {
	if d.name == "" {
		return d.host
	}
	return d.name
}

// errResult turns a failure before the transaction into a result: a 5xx
// reply bounces, anything else defers.
func errResult(err error, dsn string) queue.Result {
	var re *replyError
	if !errors.As(err, &re) {
		return queue.Result{Status: queue.StatusDeferred, DSN: dsn, Reply: err.Error()}
	}
	r := queue.Result{Status: queue.StatusDeferred, DSN: dsn, Reply: re.text}
	if re.dsn != "" {
		r.DSN = re.dsn
	}
	if re.rep.code != 0 {
		r.RemoteReply = re.rep.String()
		if !re.temp {
			r.DSN = re.rep.status()
			if re.rep.code >= 500 {
				r.Status = queue.StatusBounced
			}
		}
	}
	return r
}

// connect dials, reads the greeting, says LHLO and does STARTTLS. The
// error texts are Postfix's: "connect to HOST[ADDR]:PORT: Connection
// refused", "host X refused to talk to me: 554 …".
func (l *LMTP) connect(ctx context.Context, dest lmtpDest) (*lmtpConn, error) {
	dial := l.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: orDuration(l.ConnectTimeout, 30*time.Second)}
		dial = d.DialContext
	}
	nc, err := dial(ctx, dest.network, dest.address)
	if err != nil {
		what := dest.address
		if dest.network == "tcp" {
			host, port, _ := net.SplitHostPort(dest.address)
			what = host + "[" + host + "]:" + port
		}
		return nil, fmt.Errorf("connect to %s: %s", what, sysErrText(err))
	}
	if dest.network == "tcp" {
		ra := nc.RemoteAddr().(*net.TCPAddr)
		host, _, _ := net.SplitHostPort(dest.address)
		dest.name = fmt.Sprintf("%s[%s]:%d", host, ra.IP, ra.Port)
		dest.host = fmt.Sprintf("%s[%s]", host, ra.IP)
	}
	c := &lmtpConn{l: l, c: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc), dest: dest}
	ok := false
	defer func() {
		if !ok {
			nc.Close()
		}
	}()
	c.deadline(orDuration(l.CommandTimeout, 300*time.Second))
	rep, err := c.readReply()
	if err != nil {
		return nil, c.lost(err, "receiving the initial server greeting")
	}
	if rep.code != 220 {
		return nil, &replyError{rep: rep, text: fmt.Sprintf("host %s refused to talk to me: %s", dest.host, rep)}
	}
	if err := c.lhlo(); err != nil {
		return nil, err
	}
	level := strings.ToLower(l.TLSLevel)
	_, offered := c.ext["STARTTLS"]
	switch level {
	case "", "none":
	case "may":
		if offered {
			if err := c.startTLS(false); err != nil {
				return nil, err
			}
		}
	case "encrypt", "verify", "secure":
		if !offered {
			return nil, &replyError{temp: true, dsn: "4.7.4", text: fmt.Sprintf("TLS is required, but was not offered by host %s", dest.host)}
		}
		if err := c.startTLS(level != "encrypt"); err != nil {
			return nil, err
		}
	default:
		// dane, fingerprint…: never fall back to clear text for a level
		// this client cannot honour.
		return nil, &replyError{temp: true, dsn: "4.7.5", text: fmt.Sprintf("lmtp_tls_security_level = %s is not supported by this postcote", level)}
	}
	ok = true
	return c, nil
}

// replyError is a failure before the transaction, with the reply that
// caused it when there is one.
type replyError struct {
	rep  lmtpReply
	temp bool
	dsn  string
	text string
}

func (e *replyError) Error() string { return e.text }

func (c *lmtpConn) lhlo() error {
	c.deadline(orDuration(c.l.CommandTimeout, 300*time.Second))
	name := c.l.Hostname
	if name == "" {
		name = "localhost"
	}
	if err := c.cmd("LHLO " + name); err != nil {
		return c.lost(err, "sending LHLO")
	}
	rep, err := c.readReplyLines()
	if err != nil {
		return c.lost(err, "receiving the LHLO reply")
	}
	if rep.code != 250 {
		return &replyError{rep: rep, text: fmt.Sprintf("host %s said: %s (in reply to LHLO command)", c.dest.host, rep)}
	}
	return nil
}

// readReplyLines reads the LHLO reply and records its extensions
// (RFC 5321 4.1.1.1: the lines after the first name one each).
func (c *lmtpConn) readReplyLines() (lmtpReply, error) {
	c.ext = map[string]string{}
	var first lmtpReply
	for n := 0; ; n++ {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return first, err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 || n > 1000 || len(line) > 2048 {
			return first, fmt.Errorf("malformed reply %q", printableText(line))
		}
		if n == 0 {
			fmt.Sscanf(line[:3], "%d", &first.code)
			first.text = printableText(strings.TrimSpace(line[3:]))
		} else if first.code == 250 && len(line) > 4 {
			kw, arg, _ := strings.Cut(line[4:], " ")
			c.ext[strings.ToUpper(kw)] = arg
		}
		if len(line) == 3 || line[3] == ' ' {
			break
		}
		if line[3] != '-' {
			return first, fmt.Errorf("malformed reply %q", printableText(line))
		}
	}
	if first.code < 200 || first.code > 599 {
		return first, errors.New("malformed LHLO reply")
	}
	return first, nil
}

// startTLS upgrades the connection (RFC 3207) and says LHLO again. With
// verify the server's certificate must chain to the trusted roots
// (LMTP.TLS.RootCAs, else the system's) and name the next-hop host, as
// Postfix's verify and secure levels require; else it is not checked
// (may, encrypt).
func (c *lmtpConn) startTLS(verify bool) error {
	if err := c.cmd("STARTTLS"); err != nil {
		return c.lost(err, "sending STARTTLS")
	}
	rep, err := c.readReply()
	if err != nil {
		return c.lost(err, "receiving the STARTTLS reply")
	}
	if rep.code != 220 {
		if strings.ToLower(c.l.TLSLevel) != "may" {
			return &replyError{rep: rep, temp: true, dsn: "4.7.5", text: fmt.Sprintf("host %s said: %s (in reply to STARTTLS command)", c.dest.host, rep)}
		}
		return c.lhlo() // "may": carry on in clear text
	}
	cfg := &tls.Config{}
	if c.l.TLS != nil {
		cfg = c.l.TLS.Clone()
	}
	if cfg.ServerName == "" {
		if c.dest.network == "tcp" {
			cfg.ServerName, _, _ = net.SplitHostPort(c.dest.address)
		} else {
			cfg.ServerName = c.l.Hostname
		}
	}
	cfg.InsecureSkipVerify = !verify
	tc := tls.Client(c.c, cfg)
	if err := tc.Handshake(); err != nil {
		var verr *tls.CertificateVerificationError
		if verify && errors.As(err, &verr) {
			// Postfix defers rather than send in clear or to the wrong peer.
			return &replyError{temp: true, dsn: "4.7.5", text: fmt.Sprintf("Server certificate not verified: %s: %v", c.dest.host, verr.Err)}
		}
		return &replyError{temp: true, dsn: "4.7.5", text: fmt.Sprintf("TLS handshake with %s failed: %v", c.dest.host, err)}
	}
	c.c = tc
	c.r.Reset(tc)
	c.w.Reset(tc)
	return c.lhlo()
}

func (c *lmtpConn) cmd(line string) error {
	c.w.WriteString(line + "\r\n")
	return c.w.Flush()
}

// lost is Postfix's "lost connection with HOST while DOING".
func (c *lmtpConn) lost(err error, doing string) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &replyError{temp: true, dsn: "4.4.2", text: fmt.Sprintf("conversation with %s timed out while %s", c.dest.host, doing)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return &replyError{temp: true, dsn: "4.4.2", text: fmt.Sprintf("lost connection with %s while %s", c.dest.host, doing)}
	}
	return &replyError{temp: true, dsn: "4.4.2", text: fmt.Sprintf("lost connection with %s while %s: %v", c.dest.host, doing, err)}
}

// sysErrText is the strerror text Postfix logs: "Connection refused".
func sysErrText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		return strings.ToUpper(s[:1]) + s[1:]
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "Connection timed out"
	}
	return err.Error()
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
