package ldapx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Defaults of Config's zero values.
const (
	DefaultDialTimeout = 5 * time.Second
	DefaultTimeout     = 10 * time.Second
	DefaultMaxConns    = 16
	DefaultIdleTimeout = 60 * time.Second
)

// Pool is a set of connections to one directory, safe for concurrent
// use. Build it with NewPool; Close it when done.
type Pool struct {
	cfg   Config
	uris  []string
	tls   *tlsBase
	slots chan struct{} // one token per connection that may be in use

	mu     sync.Mutex
	idle   []*conn // most recently used last
	open   int     // connections open: in use and idle
	closed bool
}

// conn is one pooled connection.
type conn struct {
	c        *ldap.Conn
	uri      string
	service  bool // bound as the service identity (Config.BindDN)
	lastUsed time.Time
}

// NewPool checks cfg and returns a Pool. It does not connect: the first
// operation does, so that a directory that is down at start-up only
// delays the first lookups.
func NewPool(cfg Config) (*Pool, error) {
	if len(cfg.URIs) == 0 {
		return nil, errors.New("ldap: no server URI")
	}
	var uris []string
	for _, u := range cfg.URIs {
		cu, err := ParseURI(u)
		if err != nil {
			return nil, fmt.Errorf("ldap: %w", err)
		}
		uris = append(uris, cu)
	}
	if cfg.BindDN != "" && cfg.BindPassword == "" {
		return nil, fmt.Errorf("ldap: bind DN %q without a password: an empty password bind is anonymous (RFC 4513 5.1.2)", cfg.BindDN)
	}
	tb, err := newTLSBase(cfg.TLS)
	if err != nil {
		return nil, fmt.Errorf("ldap: %w", err)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	return &Pool{cfg: cfg, uris: uris, tls: tb, slots: make(chan struct{}, cfg.MaxConns)}, nil
}

// URIs returns the servers in the order they are tried.
func (p *Pool) URIs() []string { return append([]string(nil), p.uris...) }

// Close closes the idle connections; connections in use are closed when
// their operation ends. Operations after Close fail.
func (p *Pool) Close() error {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.open -= len(idle)
	p.mu.Unlock()
	for _, c := range idle {
		c.c.Close()
	}
	return nil
}

func (p *Pool) debugf(format string, args ...any) {
	if p.cfg.Debugf != nil {
		p.cfg.Debugf(format, args...)
	}
}

// acquire takes a connection slot, waiting for ctx at most.
func (p *Pool) acquire(ctx context.Context) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for a free connection: %w", ctx.Err())
	}
}

func (p *Pool) release() { <-p.slots }

// takeIdle returns an idle connection bound the way the caller needs.
// When there is none it returns nil if a new connection may be opened
// (so that user binds and service searches keep separate connections,
// as Dovecot advises for auth_bind), and otherwise an idle connection in
// the other state, to be rebound.
func (p *Pool) takeIdle(service bool) *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var stale []*conn
	defer func() {
		for _, c := range stale {
			go c.c.Close()
		}
	}()
	kept := p.idle[:0]
	for _, c := range p.idle {
		if c.c.IsClosing() || now.Sub(c.lastUsed) > p.cfg.IdleTimeout {
			stale = append(stale, c)
			p.open--
			continue
		}
		kept = append(kept, c)
	}
	for i := len(kept) - 1; i >= 0; i-- {
		if kept[i].service == service {
			c := kept[i]
			p.idle = append(kept[:i], kept[i+1:]...)
			return c
		}
	}
	p.idle = kept
	if p.open < p.cfg.MaxConns {
		return nil
	}
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return c
	}
	return nil
}

// putBack returns c to the idle list, or closes it.
func (p *Pool) putBack(c *conn, broken bool) {
	p.mu.Lock()
	if broken || p.closed || c.c.IsClosing() || p.open > p.cfg.MaxConns {
		p.open--
		p.mu.Unlock()
		go c.c.Close()
		return
	}
	c.lastUsed = time.Now()
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

// dial connects to the first URI that answers.
func (p *Pool) dial(ctx context.Context) (*conn, error) {
	if p.isClosed() {
		return nil, &Error{Op: "connect", Err: errors.New("pool closed")}
	}
	var msgs []string
	for _, uri := range p.uris {
		c, err := p.dialOne(ctx, uri)
		if err == nil {
			p.mu.Lock()
			p.open++
			p.mu.Unlock()
			return c, nil
		}
		p.debugf("ldap: connect %s failed: %v", uri, err)
		msgs = append(msgs, uri+": "+err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, &Error{Op: "connect", Err: errors.New(strings.Join(msgs, "; ")), temporary: true}
}

func (p *Pool) dialOne(ctx context.Context, uri string) (*conn, error) {
	deadline := time.Now().Add(p.cfg.DialTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	scheme, _, _ := strings.Cut(uri, "://")
	host := uriHost(uri)
	opts := []ldap.DialOpt{ldap.DialWithDialer(&net.Dialer{Deadline: deadline})}
	if scheme == "ldaps" {
		opts = append(opts, ldap.DialWithTLSConfig(p.tls.forHost(host)))
	}
	lc, err := ldap.DialURL(uri, opts...)
	if err != nil {
		return nil, err
	}
	c := &conn{c: lc, uri: uri, service: p.cfg.BindDN == ""}
	how := ""
	if p.cfg.StartTLS && scheme == "ldap" {
		// RFC 4513 3: StartTLS comes first, before any bind.
		dctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		err, closed := runOn(dctx, lc, p.cfg.DialTimeout, func() error { return lc.StartTLS(p.tls.forHost(host)) })
		if err != nil || closed {
			lc.Close()
			if err == nil {
				err = dctx.Err()
			}
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
		how = " with StartTLS"
	}
	p.debugf("ldap: connected to %s%s", uri, how)
	return c, nil
}

func (p *Pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// runOn runs fn, an operation on lc, and closes lc if ctx ends first, so
// that a server that stopped answering cannot hold the caller; each
// request fn sends waits at most reqTimeout for its reply. closed
// reports that this happened (the result of fn is then not to be
// trusted).
func runOn(ctx context.Context, lc *ldap.Conn, reqTimeout time.Duration, fn func() error) (err error, closed bool) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < reqTimeout {
		reqTimeout = time.Until(dl)
	}
	lc.SetTimeout(reqTimeout)
	stop := context.AfterFunc(ctx, func() { lc.Close() })
	err = fn()
	if !stop() {
		if err == nil {
			err = ctx.Err()
		}
		return fmt.Errorf("%w (%v)", ctx.Err(), err), true
	}
	return err, false
}

// do runs fn on a connection bound as the service (service true) or in
// any state (false, for Authenticate). capped bounds the whole operation
// by Config.Timeout; otherwise each request is bounded (paged searches).
// A failure on a reused connection is tried again on a new one unless
// delivered says that fn already handed results to its caller.
func (p *Pool) do(ctx context.Context, op string, service, capped bool, delivered *bool, fn func(c *conn) error) error {
	for attempt := 0; ; attempt++ {
		if err := p.acquire(ctx); err != nil {
			return wrap(op, "", err)
		}
		c := p.takeIdle(service)
		reused := c != nil
		if c == nil {
			var err error
			if c, err = p.dial(ctx); err != nil {
				p.release()
				return err
			}
		}
		var opCtx context.Context
		var cancel context.CancelFunc
		if capped {
			opCtx, cancel = context.WithTimeout(ctx, p.cfg.Timeout)
		} else {
			opCtx, cancel = context.WithCancel(ctx)
		}
		err, closed := runOn(opCtx, c.c, p.cfg.Timeout, func() error {
			if service && !c.service {
				if err := p.bindService(c); err != nil {
					return err
				}
			}
			return fn(c)
		})
		cancel()
		broken := closed || (err != nil && isConnBroken(err))
		p.putBack(c, broken)
		p.release()
		if err == nil {
			return nil
		}
		if broken && reused && attempt == 0 && ctx.Err() == nil && (delivered == nil || !*delivered) {
			// A pooled connection the server closed (restart, idle
			// timeout): try once more on a new one.
			p.debugf("ldap: %s on reused connection to %s failed (%v); reconnecting", op, c.uri, err)
			continue
		}
		e := wrap(op, c.uri, err)
		if broken {
			e.temporary = true
		}
		return e
	}
}

// bindService binds c as Config.BindDN, or anonymously.
func (p *Pool) bindService(c *conn) error {
	var err error
	if p.cfg.BindDN == "" {
		err = c.c.UnauthenticatedBind("")
	} else {
		err = c.c.Bind(p.cfg.BindDN, p.cfg.BindPassword)
	}
	if err != nil {
		p.debugf("ldap: bind as %q on %s failed: %v", p.cfg.BindDN, c.uri, err)
		return wrap("bind", c.uri, fmt.Errorf("as %q: %w", p.cfg.BindDN, err))
	}
	c.service = true
	return nil
}

// Authenticate checks a password by binding as dn (RFC 4513 5.1.3). It
// returns nil when the directory accepts it, an error matching
// ErrInvalidCredentials when it refuses it, ErrEmptyPassword without
// asking anything for an empty password, and ErrUnavailable when the
// directory could not answer.
func (p *Pool) Authenticate(ctx context.Context, dn, password string) error {
	if password == "" {
		return &Error{Op: "authenticate", Err: ErrEmptyPassword}
	}
	if dn == "" {
		return &Error{Op: "authenticate", Err: errors.New("empty DN")}
	}
	start := time.Now()
	err := p.do(ctx, "authenticate", false, true, nil, func(c *conn) error {
		c.service = false // whatever the outcome, c is no longer bound as the service
		return c.c.Bind(dn, password)
	})
	if err != nil {
		p.debugf("ldap: bind as %q: %v (%v)", dn, err, time.Since(start).Round(time.Microsecond))
		return err
	}
	p.debugf("ldap: bind as %q: ok (%v)", dn, time.Since(start).Round(time.Microsecond))
	return nil
}

// Check connects, binds as the service and reads the root DSE, to tell
// whether the directory is usable (postcote doctor).
func (p *Pool) Check(ctx context.Context) error {
	_, err := p.Search(ctx, SearchRequest{Scope: ScopeBase, Filter: "(objectClass=*)", Attributes: []string{"namingContexts"}})
	return err
}
