package smtpd

// Client rate and concurrency limits, as Postfix's anvil(8) keeps them:
// per service and client address, the number of simultaneous connections
// and, per time unit (anvil_rate_time_unit), the number of connections,
// MAIL commands and RCPT commands.

import (
	"net/netip"
	"sync"
	"time"
)

// Anvil counts client events for the smtpd_client_*_limit parameters.
// One Anvil may be shared by several Servers (as Postfix's single anvil
// serves all smtpd processes); entries are keyed by service and address.
// It is safe for concurrent use.
type Anvil struct {
	unit time.Duration
	now  func() time.Time

	mu      sync.Mutex
	clients map[string]*anvilClient
	swept   time.Time
}

type anvilClient struct {
	conns  int       // simultaneous connections now
	start  time.Time // start of the current rate window
	connN  int       // connections in the window
	mailN  int       // MAIL commands in the window
	rcptN  int       // RCPT commands in the window
	active bool
}

// NewAnvil returns an Anvil whose rates count events per unit
// (anvil_rate_time_unit, Postfix default 60s); now nil means time.Now.
func NewAnvil(unit time.Duration, now func() time.Time) *Anvil {
	if unit <= 0 {
		unit = 60 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Anvil{unit: unit, now: now, clients: map[string]*anvilClient{}}
}

// client returns the entry for key with its rate window brought up to
// date; a.mu must be held.
func (a *Anvil) client(key string) *anvilClient {
	now := a.now()
	if now.Sub(a.swept) > a.unit {
		// Forget idle clients whose window has passed, so the map stays
		// as small as the set of recently active clients.
		for k, c := range a.clients {
			if c.conns == 0 && now.Sub(c.start) > a.unit {
				delete(a.clients, k)
			}
		}
		a.swept = now
	}
	c := a.clients[key]
	if c == nil {
		c = &anvilClient{start: now}
		a.clients[key] = c
	}
	if now.Sub(c.start) >= a.unit {
		c.start, c.connN, c.mailN, c.rcptN = now, 0, 0, 0
	}
	return c
}

// connect records a new connection and returns the simultaneous count
// and the connection rate including it.
func (a *Anvil) connect(key string) (count, rate int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.client(key)
	c.conns++
	c.connN++
	return c.conns, c.connN
}

// disconnect records the end of a connection counted by connect.
func (a *Anvil) disconnect(key string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c := a.clients[key]; c != nil && c.conns > 0 {
		c.conns--
	}
}

// mail records a MAIL command and returns the rate including it.
func (a *Anvil) mail(key string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.client(key)
	c.mailN++
	return c.mailN
}

// rcpt records a RCPT command and returns the rate including it.
func (a *Anvil) rcpt(key string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.client(key)
	c.rcptN++
	return c.rcptN
}

// limited says whether the client's events count against the limits
// (smtpd_client_event_limit_exceptions, default $mynetworks).
func (s *Server) limited(a netip.Addr) bool {
	exc := s.opts.ClientEventLimitExceptions
	if exc == nil {
		exc = s.opts.MyNetworks
	}
	a = a.Unmap()
	for _, p := range exc {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

func (s *Server) anvilKey(a netip.Addr) string {
	svc := s.opts.ServiceName
	if svc == "" {
		svc = "smtp"
	}
	return svc + ":" + a.String()
}

// admitClient applies smtpd_client_connection_count_limit and
// smtpd_client_connection_rate_limit to a new session; the zero Reply
// means admitted (and the caller must call releaseClient at the end).
func (sess *session) admitClient() Reply {
	s := sess.srv
	if !s.limited(sess.clientAddr) {
		return Reply{}
	}
	key := s.anvilKey(sess.clientAddr)
	count, rate := s.anvil.connect(key)
	sess.anvilKey = key
	refuse := Reply{421, "4.7.0", s.opts.Hostname + " Error: too many connections from " + sess.clientAddr.String()}
	if lim := s.opts.ClientConnectionCountLimit; lim > 0 && count > lim {
		sess.warnf("Connection concurrency limit exceeded: %d from %s for service %s", count, sess.namaddr(), s.opts.ServiceName)
		return refuse
	}
	if lim := s.opts.ClientConnectionRateLimit; lim > 0 && rate > lim {
		sess.warnf("Connection rate limit exceeded: %d from %s for service %s", rate, sess.namaddr(), s.opts.ServiceName)
		return refuse
	}
	return Reply{}
}

func (sess *session) releaseClient() {
	if sess.anvilKey != "" {
		sess.srv.anvil.disconnect(sess.anvilKey)
		sess.anvilKey = ""
	}
}

// mailRateExceeded applies smtpd_client_message_rate_limit at MAIL.
func (sess *session) mailRateExceeded() (Reply, bool) {
	s := sess.srv
	lim := s.opts.ClientMessageRateLimit
	if lim <= 0 || !s.limited(sess.clientAddr) {
		return Reply{}, false
	}
	if n := s.anvil.mail(s.anvilKey(sess.clientAddr)); n > lim {
		sess.warnf("Message delivery request rate limit exceeded: %d from %s for service %s", n, sess.namaddr(), s.opts.ServiceName)
		return Reply{450, "4.7.1", "Error: too much mail from " + sess.clientAddr.String()}, true
	}
	return Reply{}, false
}

// rcptRateExceeded applies smtpd_client_recipient_rate_limit at RCPT.
func (sess *session) rcptRateExceeded() (Reply, bool) {
	s := sess.srv
	lim := s.opts.ClientRecipientRateLimit
	if lim <= 0 || !s.limited(sess.clientAddr) {
		return Reply{}, false
	}
	if n := s.anvil.rcpt(s.anvilKey(sess.clientAddr)); n > lim {
		sess.warnf("Recipient address rate limit exceeded: %d from %s for service %s", n, sess.namaddr(), s.opts.ServiceName)
		return Reply{450, "4.7.1", "Error: too many recipients from " + sess.clientAddr.String()}, true
	}
	return Reply{}, false
}
