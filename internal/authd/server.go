package authd

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"postcote/internal/netx"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/sasl"
)

// Options configure a Server. Zero durations and counts take the defaults
// named on each field.
type Options struct {
	// Checker verifies passwords (internal/userdb's Checker, which also
	// applies the growing failure delay).
	Checker sasl.PasswordChecker
	// Mechanisms is auth_mechanisms: the SASL mechanisms offered, case
	// insensitive. Empty means PLAIN. Names internal/sasl does not
	// implement are an error, so a configuration never silently offers
	// less than it says; so are SCRAM-SHA-1/-256 when Checker is not a
	// sasl.CredentialsLookup.
	Mechanisms []string
	Log        *maillog.Logger // nil discards

	HandshakeTimeout time.Duration // client's VERSION and CPID; 30 s
	// IdleTimeout closes a connection that sends nothing for this long;
	// 10 min. Postfix reconnects on its next AUTH.
	IdleTimeout time.Duration
	// RequestTimeout bounds the wait for a client's CONT after a
	// challenge; the request then fails. 1 min.
	RequestTimeout time.Duration
	WriteTimeout   time.Duration // one reply line; 30 s
	// MaxRequests bounds the requests in progress on one connection;
	// 256. Requests past it fail with a temporary failure.
	MaxRequests int
	// MaxConnections bounds the connections served at once; 1000. Past
	// it new connections are closed at once.
	MaxConnections int
	PID            int // SPID; os.Getpid() when 0
}

func (o *Options) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.HandshakeTimeout, 30*time.Second)
	def(&o.IdleTimeout, 10*time.Minute)
	def(&o.RequestTimeout, time.Minute)
	def(&o.WriteTimeout, 30*time.Second)
	if o.MaxRequests <= 0 {
		o.MaxRequests = 256
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 1000
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Log == nil {
		o.Log = maillog.Discard()
	}
}

// Server answers Dovecot auth-client connections.
type Server struct {
	opts   Options
	mechs  []string // upper case, in configuration order
	cookie string   // per process, as Dovecot's (the master checks it)

	cuid     atomic.Uint32
	shutdown atomic.Bool
	mu       sync.Mutex
	lns      map[net.Listener]struct{}
	conns    map[*serverConn]struct{}
	wg       sync.WaitGroup
}

// NewServer checks the options and returns a server ready to Serve.
func NewServer(opts Options) (*Server, error) {
	if opts.Checker == nil {
		return nil, errors.New("authd: no password checker")
	}
	opts.fill()
	s := &Server{opts: opts, lns: map[net.Listener]struct{}{}, conns: map[*serverConn]struct{}{}}
	names := opts.Mechanisms
	if len(names) == 0 {
		names = []string{"PLAIN"}
	}
	seen := map[string]bool{}
	for _, m := range names {
		m = strings.ToUpper(m)
		if seen[m] {
			continue
		}
		if sasl.NewServer(m, opts.Checker, sasl.Request{}) == nil {
			// Unknown, or SCRAM with a checker that cannot give
			// stored credentials.
			return nil, fmt.Errorf("authd: auth_mechanisms: %s is not implemented (available: %s)", m, strings.Join(sasl.Mechanisms, ", "))
		}
		seen[m] = true
		s.mechs = append(s.mechs, m)
	}
	var c [16]byte
	if _, err := rand.Read(c[:]); err != nil {
		return nil, fmt.Errorf("authd: cookie: %w", err)
	}
	s.cookie = hex.EncodeToString(c[:])
	return s, nil
}

// Mechanisms returns the mechanisms the server offers.
func (s *Server) Mechanisms() []string { return append([]string(nil), s.mechs...) }

// Serve accepts connections on ln until ctx is done or Shutdown is called;
// it then returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.lns, ln)
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	var backoff netx.AcceptBackoff
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.shutdown.Load() || ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.opts.Log.Warnf("auth", "accept: %v", err)
			if !backoff.Wait(ctx) {
				return nil
			}
			continue
		}
		backoff.Reset()
		s.mu.Lock()
		if s.shutdown.Load() || len(s.conns) >= s.opts.MaxConnections {
			s.mu.Unlock()
			if !s.shutdown.Load() {
				s.opts.Log.Warnf("auth", "too many auth client connections (%d); refusing one", s.opts.MaxConnections)
			}
			nc.Close()
			continue
		}
		c := s.newConn(nc)
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve(ctx)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting, lets requests in progress finish and closes
// every connection. When ctx ends first, requests still running are
// cancelled (their clients see the connection close) and ctx's error is
// returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	for ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.stopReading()
	}
	s.mu.Unlock()
	return netx.Drain(ctx, &s.wg, func() {
		s.mu.Lock()
		for c := range s.conns {
			c.abort()
		}
		s.mu.Unlock()
	})
}

// serverConn is one auth client connection.
type serverConn struct {
	s      *Server
	nc     net.Conn
	r      *bufio.Reader
	cuid   uint32
	wmu    sync.Mutex
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	reqs     map[uint32]*pending
	stopping bool
	reqWG    sync.WaitGroup
}

// pending is a request in progress; cont carries the client's CONT data
// while the mechanism waits for it.
type pending struct {
	cont    chan []byte
	waiting bool // a challenge was sent and no CONT came yet
}

func (s *Server) newConn(nc net.Conn) *serverConn {
	c := &serverConn{s: s, nc: nc, r: bufio.NewReaderSize(nc, MaxLineLength), cuid: s.cuid.Add(1), reqs: map[uint32]*pending{}}
	// Requests outlive a cancelled Serve context only until abort.
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

func (c *serverConn) stopReading() {
	c.mu.Lock()
	c.stopping = true
	c.mu.Unlock()
	c.nc.SetReadDeadline(time.Now())
}

func (c *serverConn) abort() {
	c.stopReading()
	c.cancel()
	c.nc.Close()
}

func (c *serverConn) logf(format string, args ...any) {
	c.s.opts.Log.Warnf("auth", "client %d (%s): %s", c.cuid, c.nc.RemoteAddr(), fmt.Sprintf(format, args...))
}

// readLine reads one LF-terminated line of at most MaxLineLength bytes.
func readLine(r *bufio.Reader) (string, error) {
	b, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", fmt.Errorf("%w: line longer than %d bytes", ErrProtocol, MaxLineLength)
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(b) > 0 {
			return "", io.ErrUnexpectedEOF
		}
		return "", err
	}
	return string(b[:len(b)-1]), nil
}

func (c *serverConn) write(line string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
	_, err := io.WriteString(c.nc, line)
	return err
}

func (c *serverConn) serve(parent context.Context) {
	stop := context.AfterFunc(parent, c.abort)
	defer stop()
	defer c.nc.Close()
	defer c.cancel()
	err := c.loop()
	// Requests in progress still answer before the connection closes
	// (Shutdown's deadline cancels them).
	c.mu.Lock()
	c.stopping = true
	for _, p := range c.reqs {
		close(p.cont)
	}
	c.mu.Unlock()
	c.reqWG.Wait()
	// A client that hangs up (a port probe, Postfix's smtpd exiting) is
	// no news; anything else is logged.
	quiet := errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
	if err != nil && !quiet && !c.s.shutdown.Load() {
		c.logf("%v; disconnecting", err)
	}
}

// handshake sends the server's part and reads the client's VERSION and
// CPID. The client may pipeline its requests after CPID.
func (c *serverConn) handshake() error {
	var b strings.Builder
	b.WriteString(FormatLine("VERSION", strconv.Itoa(MajorVersion), strconv.Itoa(MinorVersion)))
	for _, m := range c.s.mechs {
		// Dovecot's flags: "plaintext" for PLAIN and LOGIN
		// (MECH_SEC_PLAINTEXT), "mutual-auth" for SCRAM; Postfix's
		// smtpd_sasl_security_options filter on them.
		b.WriteString(FormatLine("MECH", append([]string{m}, sasl.Flags(m)...)...))
	}
	b.WriteString(FormatLine("SPID", strconv.Itoa(c.s.opts.PID)))
	b.WriteString(FormatLine("CUID", strconv.FormatUint(uint64(c.cuid), 10)))
	b.WriteString(FormatLine("COOKIE", c.s.cookie))
	b.WriteString("DONE\n")
	if err := c.write(b.String()); err != nil {
		return err
	}
	c.nc.SetReadDeadline(time.Now().Add(c.s.opts.HandshakeTimeout))
	s, err := readLine(c.r)
	if err != nil {
		return err
	}
	l, err := ParseLine(s)
	if err != nil {
		return err
	}
	if _, _, err := parseVersion(l); err != nil {
		return err
	}
	s, err = readLine(c.r)
	if err != nil {
		return err
	}
	if l, err = ParseLine(s); err != nil {
		return err
	}
	if l.Command != "CPID" || len(l.Args) < 1 {
		return fmt.Errorf("%w: expected CPID after VERSION, got %q", ErrProtocol, l.Command)
	}
	if _, err := strconv.ParseUint(l.Args[0], 10, 32); err != nil {
		return fmt.Errorf("%w: bad CPID %q", ErrProtocol, l.Args[0])
	}
	return nil
}

func (c *serverConn) loop() error {
	if err := c.handshake(); err != nil {
		return fmt.Errorf("handshake: %w", err)
	}
	for {
		c.mu.Lock()
		stopping := c.stopping
		c.mu.Unlock()
		if stopping {
			return nil
		}
		c.nc.SetReadDeadline(time.Now().Add(c.s.opts.IdleTimeout))
		s, err := readLine(c.r)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.mu.Lock()
				stopping, busy := c.stopping, len(c.reqs) > 0
				c.mu.Unlock()
				if stopping {
					return nil
				}
				if busy {
					continue // the requests have their own timeouts
				}
				return fmt.Errorf("idle for %v", c.s.opts.IdleTimeout)
			}
			return err
		}
		l, err := ParseLine(s)
		if err != nil {
			return err
		}
		switch l.Command {
		case "AUTH":
			err = c.cmdAuth(l.Args)
		case "CONT":
			err = c.cmdCont(l.Args)
		case "CANCEL":
			err = c.cmdCancel(l.Args)
		default:
			err = fmt.Errorf("%w: unknown command %q", ErrProtocol, l.Command)
		}
		if err != nil {
			return err
		}
	}
}

// cmdAuth starts a request: AUTH id mech [params].
func (c *serverConn) cmdAuth(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("%w: AUTH needs an id and a mechanism", ErrProtocol)
	}
	id, err := parseID(args[0])
	if err != nil {
		return err
	}
	mech := strings.ToUpper(args[1])
	params := ParseParams(args[2:])
	service, _ := params.Get("service")
	if service == "" {
		// Dovecot treats a missing service as a client bug and
		// disconnects.
		return fmt.Errorf("%w: AUTH %d without service", ErrProtocol, id)
	}
	var initial []byte
	if v, ok := params.Get("resp"); ok {
		// "resp=" with an empty value is an empty initial response.
		if initial, err = base64.StdEncoding.DecodeString(v); err != nil {
			return c.write(FormatLine("FAIL", strconv.FormatUint(uint64(id), 10), "reason=Invalid base64 data"))
		}
		if initial == nil {
			initial = []byte{}
		}
	}
	offered := false
	for _, m := range c.s.mechs {
		offered = offered || m == mech
	}
	c.mu.Lock()
	if _, dup := c.reqs[id]; dup {
		c.mu.Unlock()
		return fmt.Errorf("%w: duplicate request id %d", ErrProtocol, id)
	}
	if !offered || len(c.reqs) >= c.s.opts.MaxRequests {
		c.mu.Unlock()
		reason := "reason=Unsupported authentication mechanism"
		if offered {
			c.logf("more than %d requests in progress; failing request %d", c.s.opts.MaxRequests, id)
			return c.write(FormatLine("FAIL", strconv.FormatUint(uint64(id), 10), "code=temp_fail", "temp", "reason=Too many requests in progress"))
		}
		return c.write(FormatLine("FAIL", strconv.FormatUint(uint64(id), 10), reason))
	}
	p := &pending{cont: make(chan []byte, 1)}
	c.reqs[id] = p
	c.reqWG.Add(1)
	c.mu.Unlock()
	req := sasl.Request{
		Service: service,
		Remote:  addr(params, "rip", "rport"),
		Local:   addr(params, "lip", "lport"),
		Secured: params.Has("secured"),
	}
	go func() {
		defer c.reqWG.Done()
		c.run(id, mech, req, initial, p)
	}()
	return nil
}

// addr builds a TCP address from the ip and port parameters; nil when the
// ip is missing or not an address.
func addr(p Params, ipName, portName string) net.Addr {
	v, _ := p.Get(ipName)
	ip := net.ParseIP(v)
	if ip == nil {
		return nil
	}
	ps, _ := p.Get(portName)
	port, _ := strconv.Atoi(ps)
	if port < 0 || port > 65535 {
		port = 0
	}
	return &net.TCPAddr{IP: ip, Port: port}
}

// run drives one mechanism to its end and sends OK or FAIL.
func (c *serverConn) run(id uint32, mech string, req sasl.Request, resp []byte, p *pending) {
	ids := strconv.FormatUint(uint64(id), 10)
	defer func() {
		c.mu.Lock()
		if c.reqs[id] == p {
			delete(c.reqs, id)
		}
		c.mu.Unlock()
	}()
	srv := sasl.NewServer(mech, c.s.opts.Checker, req)
	timer := time.NewTimer(c.s.opts.RequestTimeout)
	defer timer.Stop()
	for {
		chal, done, err := srv.Next(c.ctx, resp)
		if done {
			c.finish(ids, srv, err)
			return
		}
		c.mu.Lock()
		p.waiting = true
		c.mu.Unlock()
		if err := c.write(FormatLine("CONT", ids, base64.StdEncoding.EncodeToString(chal))); err != nil {
			return
		}
		timer.Reset(c.s.opts.RequestTimeout)
		select {
		case r, ok := <-p.cont:
			if !ok {
				return // connection closing
			}
			resp = r
		case <-timer.C:
			c.write(FormatLine("FAIL", ids, "reason=Authentication request timed out"))
			return
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *serverConn) finish(ids string, srv sasl.Server, err error) {
	switch {
	case err == nil:
		c.write(FormatLine("OK", ids, "user="+srv.User()))
	case errors.Is(err, sasl.ErrTempFail):
		c.logf("request %s: %v", ids, err)
		c.write(FormatLine("FAIL", ids, "code=temp_fail", "temp"))
	case c.ctx.Err() != nil:
		// Shut down in the middle: the client sees the connection close.
	default:
		// ErrAuthFailed, ErrMalformed: the client learns nothing more
		// than Dovecot tells it.
		c.write(FormatLine("FAIL", ids))
	}
}

// cmdCont hands a client's response to the waiting mechanism:
// CONT id base64.
func (c *serverConn) cmdCont(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("%w: CONT needs an id", ErrProtocol)
	}
	id, err := parseID(args[0])
	if err != nil {
		return err
	}
	data := ""
	if len(args) > 1 {
		data = args[1]
	}
	c.mu.Lock()
	p := c.reqs[id]
	if p == nil {
		c.mu.Unlock()
		// Timed out or never started: Dovecot answers so.
		return c.write(FormatLine("FAIL", args[0], "reason=Authentication request timed out"))
	}
	if !p.waiting {
		c.mu.Unlock()
		return fmt.Errorf("%w: CONT %d while no challenge is outstanding", ErrProtocol, id)
	}
	resp, derr := base64.StdEncoding.DecodeString(data)
	if derr != nil {
		// The mechanism ends with a failure; the request is forgotten
		// by its goroutine.
		delete(c.reqs, id)
		close(p.cont)
		c.mu.Unlock()
		return c.write(FormatLine("FAIL", args[0], "reason=Invalid base64 data"))
	}
	p.waiting = false
	if resp == nil {
		resp = []byte{}
	}
	p.cont <- resp
	c.mu.Unlock()
	return nil
}

// cmdCancel drops a request: CANCEL id (protocol 1.3+). A request already
// checking a password still finishes; its reply is then dropped by the
// client.
func (c *serverConn) cmdCancel(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("%w: CANCEL needs an id", ErrProtocol)
	}
	id, err := parseID(args[0])
	if err != nil {
		return err
	}
	c.mu.Lock()
	if p := c.reqs[id]; p != nil && p.waiting {
		delete(c.reqs, id)
		close(p.cont)
	}
	c.mu.Unlock()
	return nil
}
