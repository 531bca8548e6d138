package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Load describes one run of the load generator: like Postfix's
// smtp-source, Sessions clients each open an SMTP session, send
// PerSession messages in it (EHLO, then MAIL/RCPT/DATA per message, then
// QUIT) and open the next session, until Messages messages have been
// tried in all.
type Load struct {
	Addr       string        // "127.0.0.1:port"; only loopback addresses are allowed
	Sessions   int           // concurrent sessions
	Messages   int           // messages in all
	PerSession int           // messages per session; 1 when zero, as smtp-source's default
	Size       int           // bytes per message, header and body, CRLF line ends
	From, To   string        // envelope addresses, without angle brackets
	Helo       string        // EHLO name
	RunID      string        // makes Subject and Message-ID unique across runs
	CmdTimeout time.Duration // deadline for each reply; 60 s when zero
}

// Result is what one run measured.
type Result struct {
	Tried    int // messages started (MAIL FROM sent or session attempted)
	Accepted int // messages that got 250 after DATA
	Failed   int // messages that got an error reply or lost their session
	Errors   []string
	TimedOut bool // the run's context ended before every message was tried

	Start      time.Time       // just before the first connection
	LastAccept time.Time       // the last 250 after DATA
	Latencies  []time.Duration // DATA sent → 250 received, per accepted message, sorted
}

// maxErrors bounds how many distinct error texts a Result keeps.
const maxErrors = 5

// AcceptRate is accepted messages per second, from the first connection to
// the last 250 after DATA.
func (r *Result) AcceptRate() float64 {
	d := r.LastAccept.Sub(r.Start)
	if r.Accepted == 0 || d <= 0 {
		return 0
	}
	return float64(r.Accepted) / d.Seconds()
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of the DATA→250
// latencies, by the nearest-rank method.
func (r *Result) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(p/100*float64(n)+0.999999) - 1
	rank = max(0, min(rank, n-1))
	return r.Latencies[rank]
}

// Run sends the load and returns what it measured. It stops when every
// message was tried or ctx ends; an error is returned only when the run
// could not start (a bad Load); failed messages are counted in the Result.
func (l Load) Run(ctx context.Context) (*Result, error) {
	if err := l.check(); err != nil {
		return nil, err
	}
	if l.PerSession <= 0 {
		l.PerSession = 1
	}
	if l.CmdTimeout <= 0 {
		l.CmdTimeout = 60 * time.Second
	}
	if l.Helo == "" {
		l.Helo = "localhost"
	}
	if l.RunID == "" {
		l.RunID = strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	header := l.header()
	hlen := len(fmt.Sprintf(header, l.RunID, 0))
	if hlen+2 > l.Size {
		return nil, fmt.Errorf("message size %d is below the %d bytes of the header and an empty body", l.Size, hlen+2)
	}
	body := filler(l.Size - hlen)

	res := &Result{}
	var (
		mu   sync.Mutex
		next atomic.Int64
		wg   sync.WaitGroup
	)
	claim := func() (int, bool) {
		i := int(next.Add(1) - 1)
		return i, i < l.Messages && ctx.Err() == nil
	}
	record := func(ok bool, lat time.Duration, err error) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if ok {
			res.Accepted++
			res.LastAccept = now
			res.Latencies = append(res.Latencies, lat)
			return
		}
		res.Failed++
		if err != nil && len(res.Errors) < maxErrors {
			msg := err.Error()
			for _, e := range res.Errors {
				if e == msg {
					return
				}
			}
			res.Errors = append(res.Errors, msg)
		}
	}

	res.Start = time.Now()
	for w := 0; w < l.Sessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := claim()
				if !ok {
					return
				}
				l.session(ctx, i, claim, header, body, record)
			}
		}()
	}
	wg.Wait()
	res.Tried = res.Accepted + res.Failed
	res.TimedOut = res.Tried < l.Messages
	sort.Slice(res.Latencies, func(a, b int) bool { return res.Latencies[a] < res.Latencies[b] })
	return res, nil
}

func (l Load) check() error {
	if l.Sessions <= 0 || l.Messages <= 0 {
		return fmt.Errorf("sessions (%d) and messages (%d) must be positive", l.Sessions, l.Messages)
	}
	// Values go into command lines and headers: no controls, spaces or
	// brackets that would end or change them (RFC 5321 4.1.2).
	for _, a := range []string{l.From, l.To} {
		if a == "" || strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '<' || r == '>' }) {
			return fmt.Errorf("envelope address %q: want a bare address like user@example.test", a)
		}
	}
	for _, v := range []string{l.Helo, l.RunID} {
		if strings.ContainsFunc(v, func(r rune) bool {
			return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune(".-_+", r))
		}) {
			return fmt.Errorf("EHLO name or run ID %q: want letters, digits and .-_+ only", v)
		}
	}
	host, _, err := net.SplitHostPort(l.Addr)
	if err != nil {
		return fmt.Errorf("server address %q: %w", l.Addr, err)
	}
	// The benchmark must never send mail off this machine.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("server address %q: only loopback IP addresses are allowed", l.Addr)
	}
	return nil
}

// session runs one SMTP session whose first message is first, and sends
// up to PerSession-1 more messages it claims. Every claimed message is
// recorded exactly once, as accepted or failed.
func (l Load) session(ctx context.Context, first int, claim func() (int, bool), header string, body []byte,
	record func(ok bool, lat time.Duration, err error)) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, l.CmdTimeout)
	conn, err := d.DialContext(dctx, "tcp", l.Addr)
	cancel()
	if err != nil {
		record(false, 0, fmt.Errorf("connect: %w", err))
		return
	}
	defer conn.Close()
	// Ending the run closes the connection, so no read outlives it.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c := &client{conn: conn, br: bufio.NewReaderSize(conn, 4096), bw: bufio.NewWriterSize(conn, 16384), timeout: l.CmdTimeout}
	if err := c.expect(2, "greeting"); err != nil {
		record(false, 0, err)
		return
	}
	if err := c.cmd(2, "EHLO "+l.Helo); err != nil {
		record(false, 0, err)
		return
	}
	i := first
	for n := 0; ; n++ {
		lat, err := l.send(c, i, header, body)
		record(err == nil, lat, err)
		var rerr *replyError
		if err != nil && !errors.As(err, &rerr) {
			return // the session is broken: the next message gets a new one
		}
		if err != nil {
			// RFC 5321 4.1.1.5: RSET clears the transaction after a refusal.
			if c.cmd(2, "RSET") != nil {
				return
			}
		}
		if n+1 >= l.PerSession {
			break
		}
		var ok bool
		if i, ok = claim(); !ok {
			break
		}
	}
	// RFC 5321 4.1.1.10; the reply does not change the result.
	_ = c.cmd(2, "QUIT")
}

// send runs one mail transaction (RFC 5321 3.3) and returns the time from
// DATA to the 250 that accepts the message.
func (l Load) send(c *client, i int, header string, body []byte) (time.Duration, error) {
	if err := c.cmd(2, "MAIL FROM:<"+l.From+">"); err != nil {
		return 0, err
	}
	if err := c.cmd(2, "RCPT TO:<"+l.To+">"); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := c.cmd(3, "DATA"); err != nil {
		return 0, err
	}
	c.deadline()
	fmt.Fprintf(c.bw, header, l.RunID, i)
	writeDotStuffed(c.bw, body)
	// RFC 5321 4.1.1.4: the mail data ends with CRLF.CRLF; body ends in CRLF.
	c.bw.WriteString(".\r\n")
	if err := c.bw.Flush(); err != nil {
		return 0, fmt.Errorf("send message: %w", err)
	}
	if err := c.expect(2, "end of data"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// header returns the message header as a format taking the run ID and
// the message number; numbers are zero-padded so every message of a run
// has the same size, and the two make Subject and Message-ID unique.
func (l Load) header() string {
	date := time.Now().Format(time.RFC1123Z)
	esc := strings.NewReplacer("%", "%%") // '%' is allowed in a local part
	return "From: <" + esc.Replace(l.From) + ">\r\n" +
		"To: <" + esc.Replace(l.To) + ">\r\n" +
		"Subject: smtpbench %[1]s message %08[2]d\r\n" +
		"Message-ID: <%[1]s.%08[2]d@smtpbench.invalid>\r\n" +
		"Date: " + date + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n"
}

// filler returns n bytes of body text in lines of at most 78 characters
// plus CRLF (RFC 5322 2.1.1), ending in CRLF. n must be at least 2.
func filler(n int) []byte {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	b := make([]byte, 0, n)
	for k := 0; n-len(b) > 0; k++ {
		left := n - len(b)
		width := 78
		switch {
		case left <= 80:
			width = left - 2
		case left == 81:
			width = 77 // leave room for a final line of CRLF alone
		}
		for j := 0; j < width; j++ {
			b = append(b, alphabet[(j+k)%len(alphabet)])
		}
		b = append(b, '\r', '\n')
	}
	return b
}

// writeDotStuffed writes body with a dot doubled at the start of each line
// (RFC 5321 4.5.2).
func writeDotStuffed(w *bufio.Writer, body []byte) {
	bol := true
	for _, ch := range body {
		if bol && ch == '.' {
			w.WriteByte('.')
		}
		w.WriteByte(ch)
		bol = ch == '\n'
	}
}

// client is one SMTP connection's reader and writer with a deadline on
// every exchange.
type client struct {
	conn    net.Conn
	br      *bufio.Reader
	bw      *bufio.Writer
	timeout time.Duration
}

// replyError is a well-formed reply other than the one expected: the
// server refused, and the session can go on.
type replyError struct {
	what  string
	reply reply
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: %s", e.what, e.reply) }

func (c *client) deadline() { c.conn.SetDeadline(time.Now().Add(c.timeout)) }

// cmd sends line and expects a reply whose first digit is want.
func (c *client) cmd(want int, line string) error {
	c.deadline()
	c.bw.WriteString(line)
	c.bw.WriteString("\r\n")
	if err := c.bw.Flush(); err != nil {
		return fmt.Errorf("%s: %w", verb(line), err)
	}
	return c.expect(want, verb(line))
}

func (c *client) expect(want int, what string) error {
	c.deadline()
	r, err := readReply(c.br)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if r.Code/100 != want {
		return &replyError{what: what, reply: r}
	}
	return nil
}

func verb(line string) string {
	v, _, _ := strings.Cut(line, " ")
	return v
}
