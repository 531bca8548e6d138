package lmtpd

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"postcote/internal/netx"
	"sync"
	"sync/atomic"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/mailstore"
	"postcote/internal/queue"
)

// Delivery is what the server needs from the mailbox role: the userdb
// lookup done at RCPT and the delivery of one copy after DATA.
// transport.Mailbox implements it.
type Delivery interface {
	// Lookup finds the mailbox owner of rcpt; found is false for an
	// unknown user, err means the userdb could not answer.
	Lookup(ctx context.Context, rcpt string) (u mailstore.User, found bool, err error)
	// DeliverUser stores one copy into u's INBOX and returns once it is
	// durable (StatusSent) or has failed.
	DeliverUser(ctx context.Context, u mailstore.User, sender, rcpt string, body io.Reader) queue.Result
}

// Options configure a Server. Zero values mean Dovecot's defaults.
type Options struct {
	Hostname string      // in the greeting, the LHLO reply and Received; default os.Hostname
	TLS      *tls.Config // STARTTLS is offered when set (ssl_cert/ssl_key)
	// MaxMessageSize refuses larger messages (SIZE, RFC 1870); 0 is no limit.
	MaxMessageSize int64
	// MaxRecipients per transaction; default 1000.
	MaxRecipients int
	// MaxLineLength of a command line, CRLF excluded; default 4096.
	MaxLineLength int
	// Timeout for each read and write on the connection; default 5 minutes.
	Timeout time.Duration
	// AddReceived prepends Dovecot's Received header (lmtp_add_received_header).
	AddReceived bool
	// SpoolDir holds messages larger than 1 MiB while they are delivered;
	// default os.TempDir().
	SpoolDir string
	Logger   *maillog.Logger
}

func (o *Options) setDefaults() {
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
		if o.Hostname == "" {
			o.Hostname = "localhost"
		}
	}
	if o.MaxRecipients <= 0 {
		o.MaxRecipients = 1000
	}
	if o.MaxLineLength <= 0 {
		o.MaxLineLength = 4096
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.SpoolDir == "" {
		o.SpoolDir = os.TempDir()
	}
	if o.Logger == nil {
		o.Logger = maillog.Discard()
	}
}

// Server is an LMTP server. One Server may serve several listeners (unix
// and inet) at once.
type Server struct {
	opts     Options
	delivery Delivery

	mu        sync.Mutex
	listeners map[net.Listener]bool
	sessions  map[*session]bool
	wg        sync.WaitGroup
	shutdown  atomic.Bool
}

// New returns a server delivering through d.
func New(opts Options, d Delivery) *Server {
	opts.setDefaults()
	return &Server{opts: opts, delivery: d, listeners: map[net.Listener]bool{}, sessions: map[*session]bool{}}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("lmtpd: server closed")

// Serve accepts connections on l until Shutdown or a listener error.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	if s.shutdown.Load() {
		return ErrServerClosed
	}
	s.mu.Lock()
	s.listeners[l] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	var backoff netx.AcceptBackoff
	for {
		c, err := l.Accept()
		if err != nil {
			if s.shutdown.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// A passing failure (out of descriptors): wait, then retry.
				s.opts.Logger.Warnf("lmtp", "accept: %v; retrying", err)
				if !backoff.Wait(ctx) {
					return ctx.Err()
				}
				continue
			}
			return fmt.Errorf("lmtp: accept: %w", err)
		}
		backoff.Reset()
		sess := newSession(s, c)
		s.mu.Lock()
		if s.shutdown.Load() {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.sessions[sess] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			sess.serve(ctx)
			s.mu.Lock()
			delete(s.sessions, sess)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting, lets sessions finish the transaction they are
// in (idle ones are told 421 and closed), and waits for them until ctx
// ends, when the remaining connections are closed. A message whose
// replies were not all sent is retried by the client: nothing accepted
// is lost, because a reply is only sent once the copy is durable.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutdown.Store(true)
	s.mu.Lock()
	for l := range s.listeners {
		l.Close()
	}
	for sess := range s.sessions {
		sess.kickIfIdle()
	}
	s.mu.Unlock()
	return netx.Drain(ctx, &s.wg, func() {
		s.mu.Lock()
		for sess := range s.sessions {
			sess.conn().Close()
		}
		s.mu.Unlock()
	})
}
