package imapd

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
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"postcote/internal/mailstore"
)

// state is the connection state of RFC 3501 3.
type state int

const (
	stateNotAuth state = 1 << iota
	stateAuth
	stateSelected
)

const anyState = stateNotAuth | stateAuth | stateSelected

// command is one parsed command line's head.
type command struct {
	tag  string
	name string // upper case
	uid  bool   // "UID" prefix (RFC 3501 6.4.8)
}

// status is a tagged completion: kind OK, NO or BAD, an optional response
// code (RFC 3501 7.1) and human-readable text.
type status struct {
	kind string
	code string
	text string
}

func ok(text string) status            { return status{kind: "OK", text: text} }
func okCode(code, text string) status  { return status{kind: "OK", code: code, text: text} }
func no(code, text string) status      { return status{kind: "NO", code: code, text: text} }
func bad(text string) status           { return status{kind: "BAD", text: text} }
func badCode(code, text string) status { return status{kind: "BAD", code: code, text: text} }

// handler runs one command: it parses the arguments (through the final
// CRLF), acts, writes untagged responses and returns the tagged status.
// A returned error ends the connection unless it is a syntaxError or
// tooBigError.
type handler struct {
	fn     func(s *session, c *command, p *parser) (status, error)
	states state
}

// commands is the command table; each entry is one method.
var commands = map[string]handler{
	"CAPABILITY":   {(*session).cmdCapability, anyState},
	"NOOP":         {(*session).cmdNoop, anyState},
	"LOGOUT":       {(*session).cmdLogout, anyState},
	"ID":           {(*session).cmdID, anyState},
	"STARTTLS":     {(*session).cmdStartTLS, stateNotAuth},
	"LOGIN":        {(*session).cmdLogin, stateNotAuth},
	"AUTHENTICATE": {(*session).cmdAuthenticate, stateNotAuth},
	"ENABLE":       {(*session).cmdEnable, stateAuth | stateSelected},
	"NAMESPACE":    {(*session).cmdNamespace, stateAuth | stateSelected},
	"LIST":         {(*session).cmdList, stateAuth | stateSelected},
	"LSUB":         {(*session).cmdLsub, stateAuth | stateSelected},
	"CREATE":       {(*session).cmdCreate, stateAuth | stateSelected},
	"DELETE":       {(*session).cmdDelete, stateAuth | stateSelected},
	"RENAME":       {(*session).cmdRename, stateAuth | stateSelected},
	"SUBSCRIBE":    {(*session).cmdSubscribe, stateAuth | stateSelected},
	"UNSUBSCRIBE":  {(*session).cmdUnsubscribe, stateAuth | stateSelected},
	"STATUS":       {(*session).cmdStatus, stateAuth | stateSelected},
	"APPEND":       {(*session).cmdAppend, stateAuth | stateSelected},
	"SELECT":       {(*session).cmdSelect, stateAuth | stateSelected},
	"EXAMINE":      {(*session).cmdSelect, stateAuth | stateSelected},
	"IDLE":         {(*session).cmdIdle, stateAuth | stateSelected},
	"CHECK":        {(*session).cmdNoop, stateSelected},
	"CLOSE":        {(*session).cmdClose, stateSelected},
	"UNSELECT":     {(*session).cmdClose, stateSelected},
	"EXPUNGE":      {(*session).cmdExpunge, stateSelected},
	"SEARCH":       {(*session).cmdSearch, stateSelected},
	"FETCH":        {(*session).cmdFetch, stateSelected},
	"STORE":        {(*session).cmdStore, stateSelected},
	"COPY":         {(*session).cmdCopy, stateSelected},
	"MOVE":         {(*session).cmdCopy, stateSelected},
}

// uidCommands may follow "UID".
var uidCommands = map[string]bool{"FETCH": true, "STORE": true, "SEARCH": true, "COPY": true, "MOVE": true, "EXPUNGE": true}

// errShutdown ends a session that already said BYE.
var errShutdown = errors.New("server shutting down")

// session is one client connection.
type session struct {
	srv     *Server
	opts    *Options
	rawConn net.Conn
	conn    net.Conn // rawConn behind deadlines, then TLS
	br      *bufio.Reader
	w       respWriter
	p       parser
	in, out int64

	id          string
	started     time.Time
	implicitTLS bool // TLS before the greeting (imaps)
	tls         bool
	secured     bool
	remoteIP    string
	localIP     string
	state       state
	loggedOut   bool
	byeText     string // BYE sent after the tagged reply that ends the session
	reason      string // why the connection ended, for the log

	// authentication
	authAttempts int
	authMethod   string
	lastUser     string
	user         string
	account      mailstore.Account
	userIPHeld   bool

	sel     *selected
	enabled map[string]bool

	// ctx is the session's context for store and user database calls:
	// it ends with the server's context or the connection.
	ctx context.Context

	interruptOnce sync.Once
	interrupted   chan struct{}
}

func newSession(srv *Server, c net.Conn) *session {
	s := &session{
		srv:         srv,
		opts:        &srv.opts,
		rawConn:     c,
		started:     srv.opts.Now(),
		remoteIP:    hostOf(c.RemoteAddr()),
		localIP:     hostOf(c.LocalAddr()),
		state:       stateNotAuth,
		enabled:     make(map[string]bool),
		interrupted: make(chan struct{}),
		id:          newSessionID(),
	}
	s.setConn(&deadlineConn{Conn: c, timeout: srv.opts.WriteTimeout, now: srv.opts.Now})
	s.secured = s.isTrusted()
	return s
}

func newSessionID() string {
	var b [12]byte
	rand.Read(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// isTrusted applies Dovecot's rule that localhost connections and
// login_trusted_networks count as secured.
func (s *session) isTrusted() bool {
	ip := net.ParseIP(s.remoteIP)
	if ip == nil {
		return false
	}
	if s.opts.LocalIsSecure && s.remoteIP == s.localIP {
		return true
	}
	for _, n := range s.opts.TrustedNetworks {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.br = bufio.NewReaderSize(countReader{r: c, n: &s.in}, 16*1024)
	s.w = respWriter{bufio.NewWriterSize(countWriter{w: c, n: &s.out}, 32*1024)}
	s.p = parser{br: s.br, cont: s.continuation}
}

func (s *session) continuation() error {
	s.w.WriteString("+ OK\r\n")
	return s.w.Flush()
}

// interrupt asks the session to say BYE and end (Shutdown, context end).
func (s *session) interrupt() {
	s.interruptOnce.Do(func() {
		close(s.interrupted)
		s.rawConn.SetReadDeadline(time.Unix(1, 0))
	})
}

func (s *session) isInterrupted() bool {
	select {
	case <-s.interrupted:
		return true
	default:
		return false
	}
}

// serve runs the session until LOGOUT, an error or shutdown.
func (s *session) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.ctx = ctx
	stop := context.AfterFunc(ctx, s.interrupt)
	defer stop()
	defer s.finish()
	defer func() {
		// A bug must cost one session, not the whole server (Dovecot
		// gets that from its process per connection).
		if r := recover(); r != nil {
			s.opts.Logger.Printf(s.logName(), "Panic: %v\n%s", r, debug.Stack())
			s.bye("Internal error occurred. Refer to server log for more information.")
			s.reason = "Internal error"
		}
	}()

	if s.implicitTLS {
		if err := s.handshake(ctx); err != nil {
			s.reason = fmt.Sprintf("TLS handshaking failed: %v", err)
			return
		}
	}
	s.w.WriteString("* OK [CAPABILITY " + s.capabilities() + "] " + s.opts.Greeting + "\r\n")
	if s.w.Flush() != nil {
		s.reason = "Connection closed"
		return
	}
	for !s.loggedOut {
		if !s.readCommand(ctx) {
			return
		}
	}
}

// deadline is the read deadline for the next command: the login timeout
// counts from connect; after login each command restarts the autologout
// timer (RFC 9051 5.4).
func (s *session) deadline() time.Time {
	if s.state == stateNotAuth {
		return s.started.Add(s.opts.LoginTimeout)
	}
	return s.opts.Now().Add(s.opts.IdleTimeout)
}

// readCommand reads and runs one command; false ends the session.
func (s *session) readCommand(ctx context.Context) bool {
	s.rawConn.SetReadDeadline(s.deadline())
	if s.isInterrupted() {
		s.bye("Server shutting down.")
		return false
	}
	s.p.reset(s.opts.MaxLineLength)
	// Empty lines are ignored, as Dovecot does.
	for {
		b, err := s.p.peek()
		if err != nil {
			s.readFailed(err)
			return false
		}
		if b != '\r' && b != '\n' {
			break
		}
		s.p.readByte()
		s.p.reset(s.opts.MaxLineLength)
	}
	tag, err := s.p.tag()
	if err == nil {
		err = s.p.sp()
	}
	if err != nil {
		return s.handleError(ctx, &command{tag: "*"}, err)
	}
	c := &command{tag: tag}
	name, err := s.p.atom()
	if err != nil {
		return s.handleError(ctx, c, err)
	}
	c.name = strings.ToUpper(name)
	if c.name == "UID" {
		err := s.p.sp()
		if err == nil {
			name, err = s.p.atom()
		}
		if err != nil {
			return s.handleError(ctx, c, err)
		}
		c.uid = true
		c.name = strings.ToUpper(name)
		if !uidCommands[c.name] {
			return s.handleError(ctx, c, badSyntax("Unknown command UID %s.", c.name))
		}
	}
	h, found := commands[c.name]
	if !found {
		return s.handleError(ctx, c, badSyntax("Unknown command."))
	}
	if s.state&h.states == 0 {
		if err := s.p.discardLine(); err != nil {
			return s.handleError(ctx, c, err)
		}
		msg := "Command not permitted in this state."
		switch {
		case s.state == stateNotAuth:
			msg = "Please authenticate first."
		case h.states == stateSelected:
			msg = "No mailbox selected."
		}
		s.tagged(c, bad(msg))
		return s.flush()
	}
	st, err := h.fn(s, c, &s.p)
	if err != nil {
		return s.handleError(ctx, c, err)
	}
	if s.loggedOut {
		s.tagged(c, st)
		if s.byeText != "" {
			s.bye(s.byeText)
		}
		s.flush()
		return false
	}
	if st.kind != "BAD" && s.sel != nil {
		// RFC 3501 7.4.1: no EXPUNGE during FETCH, STORE and SEARCH
		// (their UID forms may carry them).
		allowExpunge := c.uid || (c.name != "FETCH" && c.name != "STORE" && c.name != "SEARCH")
		if err := s.sendUpdates(ctx, allowExpunge); err != nil {
			s.opts.Logger.Printf(s.logName(), "Mailbox sync failed: %v", err)
		}
	}
	s.tagged(c, st)
	return s.flush()
}

// handleError answers a failed command; false ends the session.
func (s *session) handleError(ctx context.Context, c *command, err error) bool {
	var se *syntaxError
	var tb *tooBigError
	switch {
	case errors.Is(err, errAlreadyAnswered):
		return s.flush()
	case errors.Is(err, errShutdown):
		return false
	case errors.As(err, &se):
		if derr := s.p.discardLine(); derr != nil {
			return s.handleError(ctx, c, derr)
		}
		msg := "Error in IMAP command"
		if c.name != "" {
			msg += " " + c.name
		}
		s.tagged(c, bad(msg+": "+se.msg))
		return s.flush()
	case errors.As(err, &tb):
		if tb.sync {
			// No "+" went out, so the client sends no data: the
			// command is over (RFC 7888 4, RFC 7889 4).
			s.tagged(c, no("TOOBIG", "Literal too large."))
			return s.flush()
		}
		s.tagged(c, badCode("TOOBIG", "Literal too large."))
		s.bye("Literal too large.")
		s.reason = "Literal too large"
		return false
	case errors.Is(err, errLineTooLong):
		s.w.untagged("BAD [TOOBIG] Command line too long.")
		s.bye("Too long argument.")
		s.reason = "Too long argument"
		return false
	}
	s.readFailed(err)
	return false
}

// readFailed ends the session after a read or write error.
func (s *session) readFailed(err error) {
	var ne net.Error
	switch {
	case s.isInterrupted():
		s.bye("Server shutting down.")
		s.reason = "Server shutting down"
	case errors.As(err, &ne) && ne.Timeout():
		s.bye("Disconnected for inactivity.")
		s.reason = "Disconnected for inactivity"
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed):
		s.reason = "Connection closed"
	default:
		s.reason = fmt.Sprintf("Connection closed (%v)", err)
	}
}

func (s *session) bye(text string) {
	if s.reason == "" {
		s.reason = strings.TrimSuffix(text, ".")
	}
	s.w.untagged("BYE %s", text)
	s.w.Flush()
}

func (s *session) tagged(c *command, st status) {
	s.w.WriteString(c.tag)
	s.w.WriteByte(' ')
	s.w.WriteString(st.kind)
	if st.code != "" {
		s.w.WriteString(" [")
		s.w.WriteString(st.code)
		s.w.WriteByte(']')
	}
	s.w.WriteByte(' ')
	s.w.WriteString(st.text)
	s.w.WriteString("\r\n")
}

func (s *session) flush() bool {
	if err := s.w.Flush(); err != nil {
		s.readFailed(err)
		return false
	}
	return true
}

// finish closes the mailbox and connection and logs the disconnect in
// Dovecot's shape.
func (s *session) finish() {
	if s.sel != nil {
		s.sel.mbox.Close()
		s.sel = nil
	}
	if s.account != nil {
		s.account.Close()
	}
	if s.userIPHeld {
		s.srv.releaseUserIP(s.user, s.remoteIP)
	}
	s.w.Flush()
	s.conn.Close()
	s.rawConn.Close()
	reason := s.reason
	if reason == "" {
		reason = "Connection closed"
	}
	if s.user != "" {
		if s.loggedOut {
			reason = "Logged out"
		}
		s.opts.Logger.Printf(s.logName(), "Disconnected: %s in=%d out=%d", reason, s.in, s.out)
		return
	}
	secs := int(s.opts.Now().Sub(s.started).Seconds())
	if s.authAttempts > 0 {
		s.opts.Logger.Printf("imap-login", "Disconnected (auth failed, %d attempts in %d secs): user=<%s>, method=%s, %s",
			s.authAttempts, secs, s.lastUser, s.authMethod, s.logAddrs())
		return
	}
	s.opts.Logger.Printf("imap-login", "Disconnected (no auth attempts in %d secs): user=<>, %s", secs, s.logAddrs())
}

// logName is Dovecot's "imap(user)<pid><session>" mail process prefix.
func (s *session) logName() string {
	return fmt.Sprintf("imap(%s)<%d><%s>", s.user, os.Getpid(), s.id)
}

func (s *session) logAddrs() string {
	a := fmt.Sprintf("rip=%s, lip=%s", s.remoteIP, s.localIP)
	if s.tls {
		a += ", TLS"
	} else if s.secured {
		a += ", secured"
	}
	return a + ", session=<" + s.id + ">"
}

// handshake runs the TLS handshake within the login timeout.
func (s *session) handshake(ctx context.Context) error {
	if s.opts.TLS == nil {
		return errors.New("no TLS configuration")
	}
	tc := tls.Server(s.conn, s.opts.TLS)
	hctx, cancel := context.WithDeadline(ctx, s.started.Add(s.opts.LoginTimeout))
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return err
	}
	s.setConn(tc)
	s.tls = true
	s.secured = true
	return nil
}

// capabilities lists what this session may use now (RFC 3501 7.2.1).
func (s *session) capabilities() string {
	caps := []string{"IMAP4rev1", "SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+"}
	if s.state == stateNotAuth {
		if s.opts.TLS != nil && !s.tls {
			caps = append(caps, "STARTTLS")
		}
		if !s.plaintextAllowed() {
			caps = append(caps, "LOGINDISABLED")
		}
		caps = append(caps, s.authCapabilities()...)
		return strings.Join(caps, " ")
	}
	caps = append(caps, "NAMESPACE", "UIDPLUS", "MOVE", "UNSELECT", "CHILDREN",
		"SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS")
	if s.srv.opts.MaxLiteralSize > 0 {
		caps = append(caps, fmt.Sprintf("APPENDLIMIT=%d", s.opts.MaxLiteralSize))
	}
	return strings.Join(caps, " ")
}

// plaintextAllowed is Dovecot's disable_plaintext_auth check.
func (s *session) plaintextAllowed() bool {
	return s.opts.AllowPlaintextAuth || s.secured
}

// storeError maps a mail store error onto a tagged NO (RFC 5530 codes).
func (s *session) storeError(err error, what string) status {
	switch {
	case errors.Is(err, mailstore.ErrNoMailbox):
		return no("NONEXISTENT", "Mailbox doesn't exist: "+what)
	case errors.Is(err, mailstore.ErrMailboxExists):
		return no("ALREADYEXISTS", "Mailbox already exists")
	case errors.Is(err, mailstore.ErrBadName):
		return no("CANNOT", "Invalid mailbox name")
	case errors.Is(err, mailstore.ErrReadOnly):
		return no("", "Mailbox is read-only.")
	case errors.Is(err, mailstore.ErrOverQuota):
		return no("OVERQUOTA", "Quota exceeded (mailbox for user is full)")
	case errors.Is(err, mailstore.ErrInbox):
		return no("CANNOT", "INBOX can't be deleted.")
	case errors.Is(err, mailstore.ErrHasChildren):
		return no("INUSE", "Mailbox has children, delete them first")
	case errors.Is(err, mailstore.ErrNoSuchMessage):
		return no("EXPUNGEISSUED", "Some of the requested messages no longer exist.")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return no("UNAVAILABLE", "Operation interrupted.")
	}
	s.opts.Logger.Printf(s.logName(), "Error: %s: %v", what, err)
	return no("SERVERBUG", "Internal error occurred. Refer to server log for more information.")
}
