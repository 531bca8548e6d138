package imapd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"postcote/internal/netx"
	"slices"
	"strings"
	"sync"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/mailstore"
	"postcote/internal/sasl"
)

// Users finds a logged-in user's mail location (Dovecot's userdb lookup
// after the passdb said yes).
type Users interface {
	LookupUser(ctx context.Context, service, user string) (mailstore.User, error)
}

// Options configures a Server. The zero value of each field means
// Dovecot's default, noted per field.
type Options struct {
	// TLS enables STARTTLS (and is required for ImplicitTLS).
	TLS *tls.Config
	// ImplicitTLS starts TLS before the greeting (imaps, port 993).
	ImplicitTLS bool
	// AllowPlaintextAuth is the inverse of Dovecot's
	// disable_plaintext_auth (default yes): when false, LOGIN and the
	// plaintext SASL mechanisms are refused with [PRIVACYREQUIRED]
	// until TLS is on, and LOGINDISABLED is advertised.
	AllowPlaintextAuth bool
	// TLSRequiredForAuth is Dovecot's ssl = required: until the
	// connection is secured no mechanism is accepted, SCRAM included
	// ("Authentication not allowed until SSL/TLS is enabled.").
	TLSRequiredForAuth bool
	// LocalIsSecure treats a connection whose remote IP equals its local
	// IP (localhost) as secured, as Dovecot does; TrustedNetworks
	// (login_trusted_networks) does the same for listed networks.
	LocalIsSecure   bool
	TrustedNetworks []*net.IPNet
	// AuthMechanisms are the SASL mechanisms offered (auth_mechanisms,
	// default "plain"); unknown names are ignored, and so are SCRAM-SHA-1
	// and SCRAM-SHA-256 when the checker is not a
	// sasl.CredentialsLookup. SCRAM is not a plaintext mechanism: it is
	// offered and accepted without TLS even when AllowPlaintextAuth is
	// false, as Dovecot does.
	AuthMechanisms []string
	// Separator is the hierarchy separator shown to clients (namespace
	// separator); default "/".
	Separator string
	// Greeting is the text after the greeting's capability code
	// (login_greeting); default "postcote ready.".
	Greeting string
	// ServerID is the "name" field of the ID response (RFC 2971);
	// default "postcote".
	ServerID string

	// MaxLineLength bounds one command line, literals of non-APPEND
	// commands included (imap_max_line_length, default 64 KiB).
	MaxLineLength int
	// MaxLiteralSize bounds an APPENDed message and is advertised as
	// APPENDLIMIT (RFC 7889; default 50 MiB).
	MaxLiteralSize int64
	// MaxConnections bounds concurrent connections to this server
	// (default_client_limit, default 1000).
	MaxConnections int
	// MaxUserIPConnections bounds logged-in sessions per user and client
	// IP (mail_max_userip_connections, default 10).
	MaxUserIPConnections int
	// MaxAuthFailures disconnects after this many failed logins
	// (default 3).
	MaxAuthFailures int
	// AuthFailureDelay is waited before a failed login is answered
	// (auth_failure_delay, default 2 s).
	AuthFailureDelay time.Duration

	// LoginTimeout closes a connection that has not logged in within it
	// (default 60 s).
	LoginTimeout time.Duration
	// IdleTimeout is the autologout timer of an authenticated session
	// (RFC 9051 5.4: at least 30 min; default 30 min).
	IdleTimeout time.Duration
	// WriteTimeout bounds each write to a client (default 5 min).
	WriteTimeout time.Duration
	// IdleKeepalive is the interval of "* OK Still here" during IDLE
	// (imap_idle_notify_interval, default 2 min).
	IdleKeepalive time.Duration
	// PollInterval is how often a selected mailbox is checked for
	// changes made by other programs during IDLE
	// (mailbox_idle_check_interval, default 30 s).
	PollInterval time.Duration

	// StructureCacheSize is the number of parsed messages whose
	// ENVELOPE/BODYSTRUCTURE stay cached (default 10000).
	StructureCacheSize int

	// Logger receives Dovecot-shaped log lines; nil discards them.
	Logger *maillog.Logger
	// Now is the clock (for tests); default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if len(o.AuthMechanisms) == 0 {
		o.AuthMechanisms = []string{"PLAIN"}
	}
	var mechs []string
	for _, m := range o.AuthMechanisms {
		m = strings.ToUpper(m)
		for _, known := range sasl.Mechanisms {
			if m == known {
				mechs = append(mechs, m)
			}
		}
	}
	o.AuthMechanisms = mechs
	if o.Separator == "" {
		o.Separator = "/"
	}
	if o.Greeting == "" {
		o.Greeting = "postcote ready."
	}
	if o.ServerID == "" {
		o.ServerID = "postcote"
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = 64 * 1024
	}
	if o.MaxLiteralSize <= 0 {
		o.MaxLiteralSize = 50 << 20
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 1000
	}
	if o.MaxUserIPConnections <= 0 {
		o.MaxUserIPConnections = 10
	}
	if o.MaxAuthFailures <= 0 {
		o.MaxAuthFailures = 3
	}
	if o.AuthFailureDelay == 0 {
		o.AuthFailureDelay = 2 * time.Second
	}
	if o.LoginTimeout <= 0 {
		o.LoginTimeout = 60 * time.Second
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 5 * time.Minute
	}
	if o.IdleKeepalive <= 0 {
		o.IdleKeepalive = 2 * time.Minute
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 30 * time.Second
	}
	if o.StructureCacheSize <= 0 {
		o.StructureCacheSize = 10000
	}
	if o.Logger == nil {
		o.Logger = maillog.Discard()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Server is an IMAP server. It is safe for concurrent use; one Server may
// serve several listeners (143 and 993).
type Server struct {
	opts    Options
	store   mailstore.Store
	checker sasl.PasswordChecker
	users   Users
	cache   *structureCache

	mu        sync.Mutex
	sessions  map[*session]struct{}
	userIP    map[string]int // "user\x00ip" → logged-in sessions
	listeners map[net.Listener]struct{}
	shutdown  chan struct{}
	closed    bool
	wg        sync.WaitGroup
}

// New returns a Server that authenticates through checker, finds users'
// mail through users and opens it from store.
func New(opts Options, store mailstore.Store, checker sasl.PasswordChecker, users Users) *Server {
	opts.setDefaults()
	// SCRAM needs a checker that can give stored credentials; without
	// one it is not offered.
	opts.AuthMechanisms = slices.DeleteFunc(slices.Clone(opts.AuthMechanisms), func(m string) bool {
		return sasl.NewServer(m, checker, sasl.Request{}) == nil
	})
	return &Server{
		opts:      opts,
		store:     store,
		checker:   checker,
		users:     users,
		cache:     newStructureCache(opts.StructureCacheSize),
		sessions:  make(map[*session]struct{}),
		userIP:    make(map[string]int),
		listeners: make(map[net.Listener]struct{}),
		shutdown:  make(chan struct{}),
	}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("imapd: server closed")

// Serve accepts connections on l until ctx ends or Shutdown is called,
// and serves each in its own goroutine (TLS from the start when
// Options.ImplicitTLS is set). It closes l before returning.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	return s.serve(ctx, l, s.opts.ImplicitTLS)
}

// ServeImplicitTLS is Serve with TLS before the greeting (imaps, port
// 993), so one Server can serve 143 and 993 with one structure cache and
// one mail_max_userip_connections count.
func (s *Server) ServeImplicitTLS(ctx context.Context, l net.Listener) error {
	if s.opts.TLS == nil {
		l.Close()
		return errors.New("imapd: implicit TLS needs Options.TLS")
	}
	return s.serve(ctx, l, true)
}

func (s *Server) serve(ctx context.Context, l net.Listener, implicitTLS bool) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()

	var backoff netx.AcceptBackoff
	for {
		c, err := l.Accept()
		if err != nil {
			select {
			case <-s.shutdown:
				return ErrServerClosed
			default:
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if !backoff.Wait(ctx) {
					return ctx.Err()
				}
				continue
			}
			return fmt.Errorf("imapd: accept: %w", err)
		}
		backoff.Reset()
		s.startSession(ctx, c, implicitTLS)
	}
}

// startSession registers and runs a session for c; it refuses the
// connection when MaxConnections is reached.
func (s *Server) startSession(ctx context.Context, c net.Conn, implicitTLS bool) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return false
	}
	if len(s.sessions) >= s.opts.MaxConnections {
		s.mu.Unlock()
		s.opts.Logger.Printf("imap-login", "Disconnected: Connection queue full (client_limit=%d): rip=%s", s.opts.MaxConnections, hostOf(c.RemoteAddr()))
		// Refused without holding up the accept loop.
		go func() {
			c.SetWriteDeadline(s.opts.Now().Add(5 * time.Second))
			c.Write([]byte("* BYE Too many connections, try again later.\r\n"))
			c.Close()
		}()
		return false
	}
	sess := newSession(s, c)
	sess.implicitTLS = implicitTLS
	s.sessions[sess] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		sess.serve(ctx)
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
	return true
}

// Shutdown stops accepting connections, tells every session
// "* BYE Server shutting down." and waits for them to end, until ctx
// ends; then it closes the remaining connections.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.shutdown)
	}
	for l := range s.listeners {
		l.Close()
	}
	for sess := range s.sessions {
		sess.interrupt()
	}
	s.mu.Unlock()
	return netx.Drain(ctx, &s.wg, func() {
		s.mu.Lock()
		for sess := range s.sessions {
			sess.conn.Close()
		}
		s.mu.Unlock()
	})
}

// acquireUserIP counts a logged-in session of user from ip; false when
// mail_max_userip_connections is reached.
func (s *Server) acquireUserIP(user, ip string) bool {
	key := user + "\x00" + ip
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userIP[key] >= s.opts.MaxUserIPConnections {
		return false
	}
	s.userIP[key]++
	return true
}

func (s *Server) releaseUserIP(user, ip string) {
	key := user + "\x00" + ip
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.userIP[key] <= 1 {
		delete(s.userIP, key)
	} else {
		s.userIP[key]--
	}
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}
