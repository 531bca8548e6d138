package lmtpd

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/smtpd"
)

type reply = smtpd.Reply

var errLineTooLong = errors.New("line too long")

// Replies worded as Dovecot's LMTP server words them.
var (
	replyOK          = reply{Code: 250, Enhanced: "2.0.0", Text: "OK"}
	replyUnknown     = reply{Code: 500, Enhanced: "5.5.1", Text: "Unknown command"}
	replyNeedLHLO    = reply{Code: 503, Enhanced: "5.5.1", Text: "Invalid command: LHLO needed first"}
	replyNeedMail    = reply{Code: 503, Enhanced: "5.5.1", Text: "MAIL needed first"}
	replyNestedMail  = reply{Code: 503, Enhanced: "5.5.1", Text: "MAIL already given"}
	replyNoRcpts     = reply{Code: 554, Enhanced: "5.5.1", Text: "No valid recipients"}
	replyLineTooLong = reply{Code: 500, Enhanced: "5.5.2", Text: "Line too long"}
	replyShutdown    = reply{Code: 421, Enhanced: "4.3.2", Text: "Shutting down"}
	replyTimeout     = reply{Code: 421, Enhanced: "4.4.2", Text: "Disconnected client for inactivity"}
)

// session is one LMTP connection.
type session struct {
	srv  *Server
	opts *Options
	id   string // Dovecot-style session id, also the queue id in replies

	mu   sync.Mutex
	c    net.Conn
	idle bool // waiting for a command outside a transaction

	r          *bufio.Reader
	w          *bufio.Writer
	remoteIP   string // "" for a unix socket
	lhlo       string // the name given in LHLO; "" before LHLO
	tls        bool
	state      string // Dovecot's state= in the disconnect line
	tx         *transaction
	transCount int
}

type transaction struct {
	sender string
	utf8   bool
	rcpts  []recipient
	// BDAT (RFC 3030): the chunks so far, and whether they went over
	// the size limit or could not be spooled.
	chunks   *spool
	chunkErr *reply
}

// reset ends the transaction, dropping a spooled BDAT message.
func (s *session) reset() {
	if s.tx != nil && s.tx.chunks != nil {
		s.tx.chunks.close()
	}
	s.tx = nil
}

type recipient struct {
	addr string
	user mailstore.User
}

func newSession(srv *Server, c net.Conn) *session {
	s := &session{srv: srv, opts: &srv.opts, c: c, id: sessionID(), state: "GREETING"}
	s.r = bufio.NewReaderSize(c, 4096)
	s.w = bufio.NewWriter(deadlineWriter{s})
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		s.remoteIP = ta.IP.String()
	}
	return s
}

// sessionID is 16 base64 characters, the shape of Dovecot's session ids.
func sessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawStdEncoding.EncodeToString(b[:])
}

func (s *session) conn() net.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

func (s *session) kickIfIdle() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idle {
		s.c.SetReadDeadline(time.Now())
	}
}

func (s *session) logf(format string, args ...any) {
	s.opts.Logger.Printf("lmtp", "lmtp(%d): "+format, append([]any{os.Getpid()}, args...)...)
}

func (s *session) peer() string {
	if s.remoteIP == "" {
		return "local"
	}
	return s.remoteIP
}

func (s *session) serve(ctx context.Context) {
	defer s.conn().Close()
	defer s.reset()
	s.logf("Connect from %s", s.peer())
	reason := "Logged out"
	defer func() { s.logf("Disconnect from %s: %s (state=%s)", s.peer(), reason, s.state) }()
	s.send(reply{Code: 220, Text: s.opts.Hostname + " Postcote LMTP ready"})
	if s.flush() != nil {
		reason = "Connection closed"
		return
	}
	s.state = "READY"
	for {
		line, err := s.readCommand()
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, errLineTooLong):
				s.send(replyLineTooLong)
				if s.flush() != nil {
					reason = "Connection closed"
					return
				}
				continue
			case s.srv.shutdown.Load():
				s.send(replyShutdown)
				reason = "Server shutting down"
			case errors.As(err, &ne) && ne.Timeout():
				s.send(replyTimeout)
				reason = "Disconnected for inactivity"
			default:
				reason = "Connection closed"
			}
			s.flush()
			return
		}
		quit := s.dispatch(ctx, line)
		// Pipelined commands are answered together (RFC 2920 3.2): flush
		// only when nothing more is buffered.
		if quit || s.r.Buffered() == 0 {
			if s.flush() != nil {
				reason = "Connection closed"
				return
			}
		}
		if quit {
			return
		}
		if s.srv.shutdown.Load() && s.tx == nil {
			s.send(replyShutdown)
			s.flush()
			reason = "Server shutting down"
			return
		}
	}
}

// dispatch runs one command; it returns true when the session ends.
func (s *session) dispatch(ctx context.Context, line string) bool {
	verb, arg := smtpd.ParseCommand(line)
	switch verb {
	case "LHLO":
		s.cmdLHLO(arg)
	case "HELO", "EHLO":
		// RFC 2033 4.1: an LMTP server must not accept HELO or EHLO.
		s.send(replyUnknown)
	case "STARTTLS":
		return s.cmdSTARTTLS(arg)
	case "MAIL":
		s.cmdMAIL(arg)
	case "RCPT":
		s.cmdRCPT(ctx, arg)
	case "DATA":
		return s.cmdDATA(ctx, arg)
	case "BDAT":
		return s.cmdBDAT(ctx, arg)
	case "RSET":
		s.reset()
		s.send(replyOK)
	case "NOOP":
		s.send(replyOK)
	case "VRFY":
		s.send(reply{Code: 252, Enhanced: "2.3.3", Text: "Try RCPT instead"})
	case "QUIT":
		s.send(reply{Code: 221, Enhanced: "2.0.0", Text: "Bye"})
		return true
	default:
		s.send(replyUnknown)
	}
	return false
}

// cmdLHLO answers with the extensions (RFC 2033 4.1, RFC 5321 4.1.1.1).
func (s *session) cmdLHLO(arg string) {
	if arg == "" || strings.ContainsAny(arg, " \t") && !strings.HasPrefix(arg, "[") {
		s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid parameters"})
		return
	}
	s.lhlo = arg
	s.reset()
	ext := []string{s.opts.Hostname, "8BITMIME", "CHUNKING", "ENHANCEDSTATUSCODES", "PIPELINING"}
	if s.opts.TLS != nil && !s.tls {
		ext = append(ext, "STARTTLS")
	}
	if s.opts.MaxMessageSize > 0 {
		ext = append(ext, "SIZE "+strconv.FormatInt(s.opts.MaxMessageSize, 10))
	} else {
		ext = append(ext, "SIZE")
	}
	ext = append(ext, "SMTPUTF8", "VRFY")
	s.send(reply{Code: 250, Text: strings.Join(ext, "\n")})
}

// cmdSTARTTLS upgrades the connection (RFC 3207): the client must send
// LHLO again, and anything it pipelined after STARTTLS is an attack
// (CVE-2011-0411), so it ends the session.
func (s *session) cmdSTARTTLS(arg string) bool {
	switch {
	case s.opts.TLS == nil || s.tls:
		s.send(replyUnknown)
		return false
	case arg != "":
		s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid parameters"})
		return false
	case s.tx != nil:
		s.send(reply{Code: 503, Enhanced: "5.5.1", Text: "STARTTLS not allowed during a transaction"})
		return false
	}
	if s.r.Buffered() > 0 {
		s.send(reply{Code: 501, Enhanced: "5.5.1", Text: "Commands pipelined after STARTTLS"})
		return true
	}
	s.send(reply{Code: 220, Enhanced: "2.0.0", Text: "Begin TLS negotiation now."})
	if s.flush() != nil {
		return true
	}
	tc := tls.Server(s.conn(), s.opts.TLS)
	tc.SetDeadline(time.Now().Add(s.opts.Timeout))
	if err := tc.Handshake(); err != nil {
		s.logf("TLS handshake with %s failed: %v", s.peer(), err)
		return true
	}
	tc.SetDeadline(time.Time{})
	s.mu.Lock()
	s.c = tc
	s.mu.Unlock()
	s.r.Reset(tc)
	s.reset()
	s.tls, s.lhlo = true, ""
	return false
}

func (s *session) cmdMAIL(arg string) {
	switch {
	case s.lhlo == "":
		s.send(replyNeedLHLO)
		return
	case s.tx != nil:
		s.send(replyNestedMail)
		return
	}
	path, params, err := smtpd.ParseMailArg(arg, "FROM")
	if err != nil {
		s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid FROM: " + err.Error()})
		return
	}
	tx := &transaction{sender: path.Address()}
	for _, p := range params {
		switch p.Key {
		case "BODY":
			if v := strings.ToUpper(p.Value); v != "7BIT" && v != "8BITMIME" {
				s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Unsupported BODY parameter"})
				return
			}
		case "SMTPUTF8":
			if p.HasValue {
				s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid SMTPUTF8 parameter"})
				return
			}
			tx.utf8 = true
		case "SIZE":
			n, err := strconv.ParseInt(p.Value, 10, 64)
			if err != nil || n < 0 {
				s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid SIZE parameter"})
				return
			}
			if s.opts.MaxMessageSize > 0 && n > s.opts.MaxMessageSize {
				s.send(reply{Code: 552, Enhanced: "5.3.4", Text: "Message size exceeds administrative limit"})
				return
			}
		default:
			s.send(reply{Code: 555, Enhanced: "5.5.4", Text: "Unsupported parameter " + p.Key})
			return
		}
	}
	if !tx.utf8 && !path.ASCII() {
		s.send(reply{Code: 553, Enhanced: "5.6.7", Text: "Non-ASCII address without SMTPUTF8"})
		return
	}
	s.tx = tx
	s.state = "MAIL"
	s.send(reply{Code: 250, Enhanced: "2.1.0", Text: "OK"})
}

func (s *session) cmdRCPT(ctx context.Context, arg string) {
	if s.tx == nil {
		s.send(replyNeedMail)
		return
	}
	path, params, err := smtpd.ParseMailArg(arg, "TO")
	if err != nil || path.Null {
		s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid TO: bad address syntax"})
		return
	}
	if len(params) > 0 {
		s.send(reply{Code: 555, Enhanced: "5.5.4", Text: "Unsupported parameter " + params[0].Key})
		return
	}
	if !s.tx.utf8 && !path.ASCII() {
		s.send(reply{Code: 553, Enhanced: "5.6.7", Text: "Non-ASCII address without SMTPUTF8"})
		return
	}
	if s.tx.chunks != nil {
		s.send(reply{Code: 503, Enhanced: "5.5.1", Text: "RCPT not allowed after BDAT"})
		return
	}
	if len(s.tx.rcpts) >= s.opts.MaxRecipients {
		s.send(reply{Code: 452, Enhanced: "4.5.3", Text: "Too many recipients"})
		return
	}
	addr := path.Address()
	u, found, err := s.srv.delivery.Lookup(ctx, addr)
	switch {
	case err != nil:
		s.logf("rcpt <%s>: user lookup failed: %v", addr, err)
		s.send(reply{Code: 451, Enhanced: "4.3.0", Text: fmt.Sprintf("<%s> Temporary internal error", addr)})
		return
	case !found:
		// Dovecot's words, which Postfix then logs in its bounce.
		s.send(reply{Code: 550, Enhanced: "5.1.1", Text: fmt.Sprintf("<%s> User doesn't exist: %s", addr, addr)})
		return
	}
	s.tx.rcpts = append(s.tx.rcpts, recipient{addr: addr, user: u})
	s.state = "RCPT"
	s.send(reply{Code: 250, Enhanced: "2.1.5", Text: "OK"})
}

// send queues a reply; flush writes the queued replies.
func (s *session) send(r reply) { s.w.WriteString(r.String()) }

func (s *session) flush() error { return s.w.Flush() }

// deadlineWriter puts a write deadline on every write to the connection.
type deadlineWriter struct{ s *session }

func (w deadlineWriter) Write(p []byte) (int, error) {
	c := w.s.conn()
	c.SetWriteDeadline(time.Now().Add(w.s.opts.Timeout))
	return c.Write(p)
}

func (s *session) readCommand() (string, error) {
	s.mu.Lock()
	s.idle = s.tx == nil
	if s.idle && s.srv.shutdown.Load() {
		s.mu.Unlock()
		return "", os.ErrDeadlineExceeded
	}
	s.c.SetReadDeadline(time.Now().Add(s.opts.Timeout))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.idle = false
		s.mu.Unlock()
	}()
	return readLine(s.r, s.opts.MaxLineLength)
}

// readLine reads one line of at most max bytes (CRLF or LF excluded). A
// longer line is read to its end and reported as errLineTooLong, so the
// session stays in step.
func readLine(r *bufio.Reader, max int) (string, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
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
