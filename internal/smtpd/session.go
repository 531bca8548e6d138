package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"postcote/internal/queue"
)

var errLineTooLong = errors.New("line too long")

// session is one SMTP connection: a state machine driven by one handler
// per command.
type session struct {
	srv  *Server
	opts *Options

	mu   sync.Mutex // guards conn (swapped by STARTTLS) and idle, for kick
	conn net.Conn
	idle bool // waiting for a command outside a mail transaction

	r *bufio.Reader
	w *bufio.Writer

	armedAt  time.Time     // when the read deadline was last set
	armedFor time.Duration // for how long

	clientAddr netip.Addr
	clientName string
	tlsState   *tls.ConnectionState

	// The name lookup (dns.go): the PTR name and how each step ended.
	reverseName   string
	nameStatus    peerStatus
	reverseStatus peerStatus
	dnsCache      dnsCache // DNS list answers, kept for the session

	helo      string
	esmtp     bool
	authUser  string
	authMech  string
	pipelined bool  // commands arrived ahead of time without PIPELINING
	denied    Reply // smtpd_delay_reject = no: the connect-time client reject

	tx *transaction

	anvilKey string // set while the session counts in the anvil

	errors  int
	lastCmd string // for "lost connection after X"
	counts  []cmdCount
	closing bool // the last reply ends the session
}

// transaction is one mail transaction, from MAIL to the end of DATA/BDAT.
type transaction struct {
	sender   Path
	env      queue.Envelope
	declared int64 // SIZE= from MAIL
	bdat     *bdatState
	mixed    bool // DATA was refused because BDAT began, or vice versa
}

type cmdCount struct {
	name      string
	ok, total int
}

// cmdOrder is the order Postfix prints command counts in its disconnect
// line.
var cmdOrder = []string{"helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy", "quit", "unknown"}

type handler func(s *session, ctx context.Context, arg string) Reply

// handlers is the command table (RFC 5321 4.1.1, plus the extensions).
var handlers = map[string]handler{
	"HELO":     (*session).cmdHELO,
	"EHLO":     (*session).cmdEHLO,
	"MAIL":     (*session).cmdMAIL,
	"RCPT":     (*session).cmdRCPT,
	"DATA":     (*session).cmdDATA,
	"BDAT":     (*session).cmdBDAT,
	"RSET":     (*session).cmdRSET,
	"NOOP":     (*session).cmdNOOP,
	"QUIT":     (*session).cmdQUIT,
	"VRFY":     (*session).cmdVRFY,
	"STARTTLS": (*session).cmdSTARTTLS,
	"AUTH":     (*session).cmdAUTH,
}

// nonSMTP are Postfix's smtpd_forbidden_commands: a web client or proxy
// talking to the SMTP port.
var nonSMTP = map[string]bool{"CONNECT": true, "GET": true, "POST": true}

func newSession(srv *Server, c net.Conn) *session {
	s := &session{srv: srv, opts: &srv.opts, conn: c, clientName: "unknown", reverseName: "unknown", nameStatus: peerPerm, reverseStatus: peerPerm}
	s.r = bufio.NewReader(c)
	s.w = bufio.NewWriter(deadlineWriter{s})
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		s.clientAddr = ap.Addr().Unmap()
	}
	return s
}

func (s *session) namaddr() string { return s.clientName + "[" + s.clientAddr.String() + "]" }

func (s *session) logf(format string, args ...any) {
	s.opts.Logger.Printf(s.srv.program, format, args...)
}

func (s *session) warnf(format string, args ...any) {
	s.opts.Logger.Warnf(s.srv.program, format, args...)
}

// serve runs the session to its end.
func (s *session) serve(ctx context.Context) {
	defer s.close()
	s.lookupPeer(ctx)
	s.logf("connect from %s", s.namaddr())
	defer s.releaseClient()
	if r := s.admitClient(); r.Code != 0 {
		s.send(r)
		s.flush()
		return
	}
	if s.opts.NoDelayReject {
		st := s.checkState(nil)
		d, err := s.srv.policy.evaluate(ctx, st, stageClient)
		if err != nil {
			s.warnf("%s: %v", s.namaddr(), err)
		}
		if d.verdict == deny {
			s.denied = d.reply
			s.logf("NOQUEUE: reject: CONNECT from %s: %s; proto=SMTP", s.namaddr(), d.reply.Line())
		}
	}
	s.send(Reply{220, "", s.opts.Banner})
	for !s.closing {
		if s.srv.force.Load() || (s.srv.shutdown.Load() && s.tx == nil) {
			s.send(replyShutdown)
			break
		}
		if s.errors >= s.opts.HardErrorLimit {
			s.logf("too many errors after %s from %s", s.lastCmdName(), s.namaddr())
			s.send(Reply{421, "4.7.0", s.opts.Hostname + " Error: too many errors"})
			break
		}
		// RFC 2920 3.1: flush only when the client has nothing pending.
		if s.r.Buffered() == 0 && s.flush() != nil {
			s.logf("lost connection after %s from %s", s.lastCmdName(), s.namaddr())
			break
		}
		line, err := s.readCommand()
		if err == errLineTooLong {
			s.count("unknown", false)
			s.reply(replyLineTooLong)
			continue
		}
		if err != nil {
			s.readFailed(err)
			break
		}
		if n := s.r.Buffered(); n > 0 && !s.esmtp && !s.pipelined {
			// RFC 2920 3.1: only a client that saw PIPELINING in the EHLO
			// reply may send ahead.
			s.pipelined = true
			ahead, _ := s.r.Peek(min(n, 100))
			verb, _ := parseCommand(line)
			s.logf("improper command pipelining after %s from %s: %s", verb, s.namaddr(), printable(crlfEscaper.Replace(string(ahead))))
		}
		s.dispatch(ctx, line)
	}
	s.flush()
}

// dispatch runs one command line and sends its reply.
func (s *session) dispatch(ctx context.Context, line string) {
	verb, arg := parseCommand(line)
	h, ok := handlers[verb]
	switch {
	case nonSMTP[verb]:
		s.warnf("non-SMTP command from %s: %.100s", s.namaddr(), printable(line))
		s.count("unknown", false)
		s.closing = true
		s.send(Reply{521, "5.7.0", "Error: I can break rules, too. Goodbye."})
		return
	case verb == "":
		s.count("unknown", false)
		s.reply(replyBadSyntax)
		return
	case !ok:
		s.count("unknown", false)
		s.lastCmd = "UNKNOWN"
		s.reply(replyUnknownCmd)
		return
	}
	s.lastCmd = verb
	var r Reply
	if s.denied.Code != 0 && verb != "QUIT" && verb != "RSET" && verb != "NOOP" {
		// smtpd_delay_reject = no and the client was rejected at connect.
		r = Reply{503, "5.7.0", "Error: access denied for " + s.namaddr()}
	} else {
		r = h(s, ctx, arg)
	}
	switch r.Code {
	case 0: // the handler ended the session itself (connection lost)
		s.count(strings.ToLower(verb), false)
		return
	case replySent.Code: // the handler already sent a positive reply
		s.count(strings.ToLower(verb), true)
		return
	}
	s.count(strings.ToLower(verb), r.Code < 400)
	s.reply(r)
}

// reply sends a command's final reply, counting errors and slowing down
// clients beyond smtpd_soft_error_limit (Postfix's smtpd_chat_reply).
func (s *session) reply(r Reply) {
	if r.isError() && r.Code != 421 {
		s.errors++
	}
	if s.errors >= s.opts.SoftErrorLimit && s.opts.ErrorSleepTime > 0 {
		s.flush()
		t := time.NewTimer(s.opts.ErrorSleepTime)
		select {
		case <-t.C:
		case <-s.srv.forced:
			t.Stop()
		}
	}
	s.send(r)
}

// send buffers a reply; serve flushes it when the input is drained.
func (s *session) send(r Reply) {
	s.w.WriteString(r.String())
	if r.Code == 421 || r.Code == 221 || r.Code == 521 {
		s.closing = true
	}
}

func (s *session) flush() error {
	if s.w.Buffered() == 0 {
		return nil
	}
	if err := s.w.Flush(); err != nil {
		s.closing = true
		return fmt.Errorf("write reply: %w", err)
	}
	return nil
}

// deadlineWriter arms the write deadline (smtpd_timeout) before every
// write to the client, including the ones bufio makes by itself when a
// long pipelined group fills its buffer.
type deadlineWriter struct{ s *session }

func (w deadlineWriter) Write(p []byte) (int, error) {
	c := w.s.currentConn()
	c.SetWriteDeadline(time.Now().Add(w.s.opts.Timeouts.Command))
	return c.Write(p)
}

func (s *session) currentConn() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conn
}

// setReadDeadline arms the deadline for the next read; during a forced
// shutdown it expires at once so the session unblocks.
//
// Re-arming costs a system call's worth of work per line, so within
// DATA a deadline armed less than 1/16 of the timeout ago is kept: every
// read still waits at least 15/16 of smtpd_timeout.
func (s *session) setReadDeadline(d time.Duration) {
	now := time.Now()
	if d == s.armedFor && now.Sub(s.armedAt) < d/16 && !s.srv.force.Load() {
		return
	}
	c := s.currentConn()
	c.SetReadDeadline(now.Add(d))
	s.armedAt, s.armedFor = now, d
	if s.srv.force.Load() {
		c.SetReadDeadline(time.Unix(1, 0))
	}
}

// kick wakes a session blocked on a read when the server shuts down:
// always when forced, otherwise only if it is idle between transactions.
func (s *session) kick() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle || s.srv.force.Load() {
		s.conn.SetReadDeadline(time.Unix(1, 0))
	}
}

// readCommand reads one command line (RFC 5321 4.1.1: CRLF-terminated;
// like Postfix we also take a bare LF). A line longer than
// line_length_limit is read to its end, thrown away, and reported as
// errLineTooLong.
func (s *session) readCommand() (string, error) {
	s.mu.Lock()
	s.idle = s.tx == nil
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.idle = false
		s.mu.Unlock()
	}()
	s.setReadDeadline(s.opts.Timeouts.Command)
	if s.srv.shutdown.Load() && s.tx == nil {
		return "", os.ErrDeadlineExceeded
	}
	return s.readLine(s.opts.MaxLineLength)
}

func (s *session) readLine(max int) (string, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := s.r.ReadSlice('\n')
		if len(buf)+len(chunk) > max+2 {
			tooLong = true
		} else {
			buf = append(buf, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			if err == io.EOF && (len(buf) > 0 || tooLong) {
				err = io.ErrUnexpectedEOF
			}
			return "", err
		}
		break
	}
	if tooLong {
		return "", errLineTooLong
	}
	buf = buf[:len(buf)-1]
	if n := len(buf); n > 0 && buf[n-1] == '\r' {
		buf = buf[:n-1]
	}
	return string(buf), nil
}

// readFailed logs why a read ended the session and says goodbye where
// Postfix does.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		if s.srv.shutdown.Load() {
			s.send(replyShutdown)
			return
		}
		s.logf("timeout after %s from %s", s.lastCmdName(), s.namaddr())
		s.send(Reply{421, "4.4.2", s.opts.Hostname + " Error: timeout exceeded"})
	default:
		s.logf("lost connection after %s from %s", s.lastCmdName(), s.namaddr())
		s.closing = true
	}
}

func (s *session) lastCmdName() string {
	if s.lastCmd == "" {
		return "CONNECT"
	}
	return s.lastCmd
}

func (s *session) count(name string, ok bool) {
	for i := range s.counts {
		if s.counts[i].name == name {
			s.counts[i].total++
			if ok {
				s.counts[i].ok++
			}
			return
		}
	}
	c := cmdCount{name: name, total: 1}
	if ok {
		c.ok = 1
	}
	s.counts = append(s.counts, c)
}

// close ends the session: abort any transaction, log Postfix's disconnect
// line with command counts ("ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4").
func (s *session) close() {
	s.abortTx()
	s.currentConn().Close()
	var b strings.Builder
	ok, total := 0, 0
	for _, name := range cmdOrder {
		for _, c := range s.counts {
			if c.name != name {
				continue
			}
			ok += c.ok
			total += c.total
			if c.ok == c.total {
				fmt.Fprintf(&b, " %s=%d", name, c.total)
			} else {
				fmt.Fprintf(&b, " %s=%d/%d", name, c.ok, c.total)
			}
		}
	}
	if ok == total {
		fmt.Fprintf(&b, " commands=%d", total)
	} else {
		fmt.Fprintf(&b, " commands=%d/%d", ok, total)
	}
	s.logf("disconnect from %s%s", s.namaddr(), b.String())
}

// printable replaces control characters with '?', as Postfix's
// printable() does before client text reaches logs and headers.
func printable(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return '?'
		}
		return r
	}, v)
}

var crlfEscaper = strings.NewReplacer("\r", `\r`, "\n", `\n`)

func utf8Printable(v string) bool { return printable(v) == v }

// checkState gathers what the restrictions look at.
func (s *session) checkState(rcpt *Path) *checkState {
	st := &checkState{
		clientName: s.clientName, clientAddr: s.clientAddr, helo: s.helo,
		rcpt: rcpt, authUser: s.authUser, tls: s.tlsState != nil,
		esmtp: s.esmtp, pipelined: s.pipelined,
		reverseName: s.reverseName, nameStatus: s.nameStatus, reverseStatus: s.reverseStatus,
		atRCPT: rcpt != nil, cache: &s.dnsCache, warn: s.warnf,
	}
	if s.tx != nil {
		st.sender = &s.tx.sender
		st.rcptCount = len(s.tx.env.Recipients)
	}
	return st
}

// rejectLog logs a refused command as Postfix does:
// "NOQUEUE: reject: RCPT from name[ip]: 554 5.7.1 …; from=<s> to=<r> proto=ESMTP helo=<h>".
func (s *session) rejectLog(cmd string, r Reply, rcpt *Path) {
	id := "NOQUEUE"
	var extra strings.Builder
	if s.tx != nil {
		if s.tx.env.ID != "" {
			id = string(s.tx.env.ID)
		}
		fmt.Fprintf(&extra, " from=<%s>", s.tx.sender.Display())
	}
	if rcpt != nil {
		fmt.Fprintf(&extra, " to=<%s>", rcpt.Display())
	}
	proto := "SMTP"
	if s.esmtp {
		proto = "ESMTP"
	}
	fmt.Fprintf(&extra, " proto=%s helo=<%s>", proto, s.helo)
	s.logf("%s: reject: %s from %s: %s;%s", id, cmd, s.namaddr(), r.Line(), extra.String())
}

// startTLS switches the session onto a TLS connection whose handshake is
// done.
func (s *session) startTLS(tc *tls.Conn) {
	s.mu.Lock()
	s.conn = tc
	s.mu.Unlock()
	s.r = bufio.NewReader(tc)
	s.w = bufio.NewWriter(deadlineWriter{s})
	cs := tc.ConnectionState()
	s.tlsState = &cs
	if s.opts.TLSLogLevel >= 1 {
		s.logf("Anonymous TLS connection established from %s: %s", s.namaddr(), tlsSummary(&cs))
	}
}

// abortTx ends the current transaction (RSET, EHLO, STARTTLS, end of
// session); a half-received BDAT message is discarded, never queued.
func (s *session) abortTx() {
	if s.tx != nil && s.tx.bdat != nil {
		s.tx.bdat.abort(errTransactionAborted)
	}
	s.tx = nil
}
