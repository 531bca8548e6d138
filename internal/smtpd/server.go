package smtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"postcote/internal/netx"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/sasl"
)

// Server serves one SMTP service (smtp, submission, submissions) on any
// number of listeners.
type Server struct {
	opts    Options
	queue   Queue
	addrs   Addresses
	auth    sasl.PasswordChecker
	policy  *policy
	program string // log program name, "smtpd" or "submission/smtpd"
	anvil   *Anvil

	shutdown atomic.Bool   // stop accepting, end idle sessions
	force    atomic.Bool   // Shutdown's deadline passed: end every session
	forced   chan struct{} // closed when force is set, to cut error sleeps short

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	wg        sync.WaitGroup
}

// MechanismLister is implemented by a password checker that knows which
// SASL mechanisms its auth server offers, as Postfix learns them from
// its Dovecot auth server's MECH lines. When Options.SASLMechanisms is
// empty, New offers those.
type MechanismLister interface {
	SASLMechanisms() []string
}

// New checks opts, fills in Postfix's defaults and compiles the
// restriction lists. It fails on an unknown restriction name, on lists
// that would make an open relay, and on settings that contradict each
// other (AUTH without a password checker, TLS levels without TLS).
func New(opts Options, q Queue, a Addresses, auth sasl.PasswordChecker) (*Server, error) {
	if q == nil || a == nil {
		return nil, errors.New("smtpd: a queue and an address resolver are required")
	}
	if opts.Hostname == "" {
		return nil, errors.New("smtpd: myhostname is empty")
	}
	if opts.Banner == "" {
		opts.Banner = opts.Hostname + " ESMTP postcote"
	}
	if opts.MessageSizeLimit == 0 {
		opts.MessageSizeLimit = 10240000
	}
	if opts.RecipientLimit <= 0 {
		opts.RecipientLimit = 1000
	}
	if opts.MaxLineLength <= 0 {
		opts.MaxLineLength = 2048
	}
	if opts.MaxLineLength < 512 {
		opts.MaxLineLength = 512 // RFC 5321 4.5.3.1.4: a command line may be 512 octets
	}
	if opts.Timeouts.Command <= 0 {
		opts.Timeouts.Command = 300 * time.Second
	}
	if opts.Timeouts.Data <= 0 {
		opts.Timeouts.Data = opts.Timeouts.Command
	}
	if opts.HardErrorLimit <= 0 {
		opts.HardErrorLimit = 20
	}
	if opts.SoftErrorLimit <= 0 {
		opts.SoftErrorLimit = 10
	}
	if opts.ErrorSleepTime == 0 {
		opts.ErrorSleepTime = time.Second
	}
	if opts.ClientConnectionCountLimit == 0 {
		opts.ClientConnectionCountLimit = 50
	}
	if opts.Anvil == nil {
		opts.Anvil = NewAnvil(opts.RateTimeUnit, nil)
	}
	if opts.MaxConnections <= 0 {
		opts.MaxConnections = 100
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = maillog.Discard()
	}
	mechs := opts.SASLMechanisms
	if ml, ok := auth.(MechanismLister); ok && len(mechs) == 0 {
		mechs = ml.SASLMechanisms()
	}
	if len(mechs) == 0 {
		// The plaintext pair every guide configures (auth_mechanisms =
		// plain login); SCRAM only where the configuration asks.
		mechs = []string{"PLAIN", "LOGIN"}
	}
	opts.SASLMechanisms = make([]string, len(mechs)) // never alias the caller's slice
	for i, m := range mechs {
		opts.SASLMechanisms[i] = strings.ToUpper(m)
		if sasl.NewServer(m, auth, sasl.Request{}) == nil {
			return nil, fmt.Errorf("smtpd: SASL mechanism %q is not supported", m)
		}
	}
	if opts.SASLSecurityOptions == nil {
		opts.SASLSecurityOptions = []string{"noanonymous"}
	}
	if opts.SASLTLSSecurityOptions == nil {
		opts.SASLTLSSecurityOptions = opts.SASLSecurityOptions
	}
	for _, list := range [][]string{opts.SASLSecurityOptions, opts.SASLTLSSecurityOptions} {
		for _, o := range splitRestrictions(list) {
			switch strings.ToLower(o) {
			case "noanonymous", "noplaintext", "noactive", "nodictionary", "mutual_auth", "forward_secrecy":
			default:
				return nil, fmt.Errorf("smtpd: smtpd_sasl_security_options: unknown option %q", o)
			}
		}
	}
	switch opts.TLSLevel {
	case "":
		opts.TLSLevel = TLSNone
		if opts.TLS != nil {
			opts.TLSLevel = TLSMay
		}
	case TLSNone, TLSMay, TLSEncrypt:
	default:
		return nil, fmt.Errorf("smtpd: smtpd_tls_security_level %q: want none, may or encrypt", opts.TLSLevel)
	}
	if (opts.TLSLevel != TLSNone || opts.WrapperMode) && opts.TLS == nil {
		return nil, fmt.Errorf("smtpd: smtpd_tls_security_level = %s (or wrapper mode) needs a certificate", opts.TLSLevel)
	}
	if opts.SASLEnable && auth == nil {
		return nil, errors.New("smtpd: smtpd_sasl_auth_enable = yes needs a password checker")
	}
	p, err := compilePolicy(&opts, a)
	if err != nil {
		return nil, fmt.Errorf("smtpd: %w", err)
	}
	program := "smtpd"
	if svc := opts.ServiceName; svc != "" && svc != "smtp" && !strings.Contains(svc, ":") && strings.Trim(svc, "0123456789") != "" {
		program = svc + "/smtpd"
	}
	return &Server{
		opts: opts, queue: q, addrs: a, auth: auth, policy: p, program: program, forced: make(chan struct{}),
		anvil:     opts.Anvil,
		listeners: map[net.Listener]struct{}{}, sessions: map[*session]struct{}{},
	}, nil
}

// Serve accepts connections on l until ctx is done, l is closed or
// Shutdown is called; it then returns nil (or the listener's error).
// Sessions already running continue; Shutdown ends them. With WrapperMode
// every connection starts with a TLS handshake.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.mu.Lock()
	if s.shutdown.Load() {
		s.mu.Unlock()
		l.Close()
		return nil
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	var backoff netx.AcceptBackoff
	for {
		c, err := l.Accept()
		if err != nil {
			if s.shutdown.Load() || ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Temporary trouble (EMFILE, ECONNABORTED): wait and retry.
			s.opts.Logger.Warnf(s.program, "accept: %v", err)
			if !backoff.Wait(ctx) {
				return nil
			}
			continue
		}
		backoff.Reset()
		if !s.track(c) {
			continue
		}
		go s.handle(context.WithoutCancel(ctx), c)
	}
}

// track registers a new connection; it refuses it (421) when the process
// limit is reached or the server is shutting down.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	n := len(s.sessions)
	down := s.shutdown.Load()
	if !down && n < s.opts.MaxConnections {
		s.wg.Add(1)
		s.mu.Unlock()
		return true
	}
	s.mu.Unlock()
	r := Reply{421, "4.7.0", s.opts.Hostname + " Error: too many connections"}
	if down {
		r = replyShutdown
	} else {
		s.opts.Logger.Warnf(s.program, "service %q has reached its process limit %d: refusing %s", s.opts.ServiceName, s.opts.MaxConnections, c.RemoteAddr())
	}
	if s.opts.WrapperMode {
		// The client expects TLS; a plaintext reply would be noise.
		c.Close()
		return false
	}
	c.SetWriteDeadline(time.Now().Add(time.Second))
	c.Write([]byte(r.String()))
	c.Close()
	return false
}

func (s *Server) handle(ctx context.Context, c net.Conn) {
	defer s.wg.Done()
	sess := newSession(s, c)
	s.mu.Lock()
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
	if s.opts.WrapperMode {
		tc := tls.Server(c, s.opts.TLS)
		hctx, cancel := context.WithTimeout(ctx, s.opts.Timeouts.Command)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			s.opts.Logger.Printf(s.program, "connect from %s", sess.namaddr())
			s.opts.Logger.Warnf(s.program, "TLS library problem: %s: %v", sess.namaddr(), err)
			s.opts.Logger.Printf(s.program, "lost connection after CONNECT from %s", sess.namaddr())
			s.opts.Logger.Printf(s.program, "disconnect from %s commands=0/0", sess.namaddr())
			c.Close()
			return
		}
		sess.startTLS(tc)
	}
	sess.serve(ctx)
}

// Shutdown stops accepting, ends idle sessions at once with "421 4.3.2
// Service shutting down", lets sessions inside a mail transaction finish
// it, and when ctx is done closes whatever is left (a message being
// received is then not queued). It returns ctx's error if it had to force.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutdown.Store(true)
	for l := range s.listeners {
		l.Close()
	}
	s.mu.Unlock()
	s.kickAll()
	return netx.Drain(ctx, &s.wg, func() {
		if !s.force.Swap(true) {
			close(s.forced)
		}
		s.kickAll()
	})
}

func (s *Server) kickAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for sess := range s.sessions {
		sess.kick()
	}
}
