package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"postcote/internal/queue"
)

// smtpJob is one message on its way to one address.
type smtpJob struct {
	s       *SMTP
	env     *queue.Envelope
	size    int64
	content *content
	host    string // the next-hop domain or host, for secure's name check
	target  smtpTarget
	policy  *tlsPolicy
	reached bool // a TCP connection was made
}

// smtpConn is one SMTP session (RFC 5321).
type smtpConn struct {
	job   *smtpJob
	c     net.Conn
	r     *bufio.Reader
	w     *bufio.Writer
	ext   map[string]string // EHLO keywords (upper case) and their arguments
	esmtp bool
	tls   bool
	// broken: the connection failed or was closed; it is not reused.
	broken bool
	// mailCode is the reply code to the last MAIL FROM, 0 before one.
	mailCode int
}

// connect dials the target, reads the greeting, says EHLO (HELO when
// EHLO is refused) and does STARTTLS as the TLS policy says. With level
// "may", a failed handshake is retried once in clear text on a new
// connection, as Postfix does.
func (j *smtpJob) connect(ctx context.Context) (*smtpConn, error) {
	c, err := j.session(ctx, j.policy.level != "none")
	var te *tlsError
	if err != nil && errors.As(err, &te) && j.policy.level == "may" {
		j.s.logf("%s: TLS handshake failed, trying again in clear text: %v", j.target.host(), te.err)
		return j.session(ctx, false)
	}
	if te != nil {
		return nil, &replyError{temp: true, dsn: "4.7.5", text: te.Error()}
	}
	return c, err
}

// tlsError is a failed TLS handshake.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return e.err.Error() }

func (j *smtpJob) session(ctx context.Context, useTLS bool) (*smtpConn, error) {
	s := j.s
	dial := s.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: orDuration(s.ConnectTimeout, 30*time.Second)}
		dial = d.DialContext
	}
	dctx, cancel := context.WithTimeout(ctx, orDuration(s.ConnectTimeout, 30*time.Second))
	nc, err := dial(dctx, "tcp", net.JoinHostPort(j.target.ip.String(), j.target.port))
	cancel()
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %s", j.target.relay(), sysErrText(err))
	}
	j.reached = true
	c := &smtpConn{job: j, c: nc, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	ok := false
	defer func() {
		if !ok {
			nc.Close()
		}
	}()
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Now()) })
	defer stop()
	helo := orDuration(s.HeloTimeout, 300*time.Second)
	c.deadline(helo)
	rep, err := readSMTPReply(c.r)
	if err != nil {
		return nil, c.lost(err, "receiving the initial server greeting")
	}
	if rep.code != 220 {
		// smtp_skip_5xx_greeting = yes: a 5xx greeting only skips this
		// server; the mail is deferred if no other server takes it.
		return nil, &replyError{rep: rep, temp: true, dsn: "4" + rep.status()[1:],
			text: fmt.Sprintf("host %s refused to talk to me: %s", j.target.host(), rep)}
	}
	if err := c.hello(); err != nil {
		return nil, err
	}
	level := j.policy.level
	_, offered := c.ext["STARTTLS"]
	switch {
	case level == "none" || !useTLS:
	case !offered && level != "may":
		return nil, &replyError{temp: true, dsn: "4.7.4",
			text: fmt.Sprintf("TLS is required, but was not offered by host %s", j.target.host())}
	case offered:
		if err := c.startTLS(); err != nil {
			return nil, err
		}
	}
	ok = true
	return c, nil
}

func (c *smtpConn) deadline(d time.Duration) { c.c.SetDeadline(time.Now().Add(d)) }

func (c *smtpConn) close() {
	c.broken = true
	c.c.Close()
}

func (c *smtpConn) cmd(line string) error {
	c.w.WriteString(line + "\r\n")
	return c.w.Flush()
}

// hello says EHLO, or HELO when the server refuses EHLO (RFC 5321 3.2).
func (c *smtpConn) hello() error {
	c.deadline(orDuration(c.job.s.HeloTimeout, 300*time.Second))
	name := c.job.s.HeloName
	if name == "" {
		name = "localhost"
	}
	if err := c.cmd("EHLO " + name); err != nil {
		return c.lost(err, "sending EHLO")
	}
	rep, ext, err := readEHLOReply(c.r)
	if err != nil {
		return c.lost(err, "receiving the EHLO reply")
	}
	if rep.code == 250 {
		c.ext, c.esmtp = ext, true
		return nil
	}
	if err := c.cmd("HELO " + name); err != nil {
		return c.lost(err, "sending HELO")
	}
	rep, err = readSMTPReply(c.r)
	if err != nil {
		return c.lost(err, "receiving the HELO reply")
	}
	if rep.code != 250 {
		return &replyError{rep: rep, temp: rep.code < 500, text: fmt.Sprintf("host %s refused to talk to me: %s (in reply to HELO command)", c.job.target.host(), rep)}
	}
	c.ext = map[string]string{}
	return nil
}

// startTLS upgrades the session (RFC 3207), checks the certificate as the
// policy says, and says EHLO again (RFC 3207 4.2: forget what was learnt).
func (c *smtpConn) startTLS() error {
	j := c.job
	if err := c.cmd("STARTTLS"); err != nil {
		return c.lost(err, "sending STARTTLS")
	}
	rep, err := readSMTPReply(c.r)
	if err != nil {
		return c.lost(err, "receiving the STARTTLS reply")
	}
	if rep.code != 220 {
		if j.policy.level == "may" {
			return nil // carry on in clear text, as Postfix does
		}
		return &replyError{rep: rep, temp: true, dsn: "4.7.5",
			text: fmt.Sprintf("host %s said: %s (in reply to STARTTLS command)", j.target.host(), rep)}
	}
	tc := tls.Client(c.c, j.policy.config(j.target.name, j.host))
	if err := tc.Handshake(); err != nil {
		return &tlsError{err: fmt.Errorf("Cannot start TLS: handshake failure with %s: %v", j.target.host(), err)}
	}
	st := tc.ConnectionState()
	trust, err := j.policy.check(st, j.target.name, j.host)
	if err != nil {
		// Never go on in clear text or over an unverified channel.
		tc.Close()
		return &replyError{temp: true, dsn: "4.7.5",
			text: fmt.Sprintf("Server certificate not verified: %s: %v", j.target.host(), err)}
	}
	if j.policy.logLevel >= 1 {
		j.s.logf("%s TLS connection established to %s: %s with cipher %s (%s bits)", trust, j.target.relay(),
			tlsVersionName(st.Version), tls.CipherSuiteName(st.CipherSuite), cipherBits(st.CipherSuite))
	}
	c.c, c.tls = tc, true
	c.r.Reset(tc)
	c.w.Reset(tc)
	return c.hello()
}

// lost is Postfix's "lost connection with HOST while DOING".
func (c *smtpConn) lost(err error, doing string) error {
	c.broken = true
	host := c.job.target.host()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &replyError{temp: true, dsn: "4.4.2", text: fmt.Sprintf("conversation with %s timed out while %s", host, doing)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &replyError{temp: true, dsn: "4.4.2", text: fmt.Sprintf("lost connection with %s while %s", host, doing)}
	}
	return &replyError{temp: true, dsn: "4.4.2", text: fmt.Sprintf("lost connection with %s while %s: %s", host, doing, sysErrText(err))}
}

func (s *SMTP) logf(format string, args ...any) {
	if s.Logf != nil {
		s.Logf(format, args...)
	}
}

// readSMTPReply reads one reply, single or multi-line (RFC 5321 4.2):
// every line "CODE-text" but the last "CODE text", the same code on all.
// Control characters in the text are replaced, lines are bounded.
func readSMTPReply(r *bufio.Reader) (lmtpReply, error) {
	rep, _, err := readReplyExt(r, false)
	return rep, err
}

// readEHLOReply reads the EHLO reply and, when it is 250, its keywords
// (RFC 5321 4.1.1.1: the lines after the first, "KEYWORD params").
func readEHLOReply(r *bufio.Reader) (lmtpReply, map[string]string, error) {
	return readReplyExt(r, true)
}

const (
	maxReplyLine  = 2048
	maxReplyLines = 1000
)

func readReplyExt(r *bufio.Reader, ehlo bool) (lmtpReply, map[string]string, error) {
	var rep lmtpReply
	var texts []string
	ext := map[string]string{}
	for n := 0; ; n++ {
		line, err := readLimitedLine(r, maxReplyLine)
		if err != nil {
			return rep, nil, err
		}
		if n >= maxReplyLines {
			return rep, nil, errors.New("reply has too many lines")
		}
		if len(line) < 3 {
			return rep, nil, fmt.Errorf("malformed reply %q", printableText(line))
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil || line[0] < '2' || line[0] > '5' || code < 200 || code > 599 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') {
			return rep, nil, fmt.Errorf("malformed reply %q", printableText(line))
		}
		if n > 0 && code != rep.code {
			return rep, nil, fmt.Errorf("malformed multi-line reply %q", printableText(line))
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
		} else if ehlo {
			kw, arg, _ := strings.Cut(strings.TrimSpace(text), " ")
			if kw != "" {
				ext[strings.ToUpper(printableText(kw))] = printableText(strings.TrimSpace(arg))
			}
		}
		texts = append(texts, printableText(text))
		if len(line) == 3 || line[3] == ' ' {
			break
		}
	}
	rep.text = strings.Join(texts, " ")
	return rep, ext, nil
}

// readLimitedLine reads one line without its CRLF, failing on a line
// longer than max instead of buffering it.
func readLimitedLine(r *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		frag, err := r.ReadSlice('\n')
		b = append(b, frag...)
		if len(b) > max+2 {
			return "", errors.New("reply line too long")
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && len(b) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
}

// cipherBits is the "(256/256 bits)" part of Postfix's TLS log line.
func cipherBits(id uint16) string {
	name := tls.CipherSuiteName(id)
	switch {
	case strings.Contains(name, "AES_128"):
		return "128/128"
	case strings.Contains(name, "AES_256"), strings.Contains(name, "CHACHA20"):
		return "256/256"
	case strings.Contains(name, "3DES"):
		return "112/168"
	}
	return "0/0"
}
