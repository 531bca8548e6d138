package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"postcote/internal/queue"
)

// SMTP is Postfix's smtp(8) client: it delivers to the MX hosts of the
// recipient domain (or to a relayhost) over SMTP, with STARTTLS by
// TLS.Level, PIPELINING, SIZE, 8BITMIME (downgrading 8-bit MIME to
// quoted-printable for servers without it), SMTPUTF8 and DSN. One agent
// serves a transport name ("smtp", "relay").
//
// The next hop is "domain" (MX lookup), "[host]" (no MX lookup),
// "host:port" or "[host]:port"; an IP literal is "[192.0.2.1]". The SMTP
// client code (smtpConn, in smtp_conn.go and smtp_tx.go) speaks RFC 5321
// and is written so that an LMTP client could reuse it by sending LHLO
// and reading one reply per recipient after DATA.
//
// The TLS policy of a delivery is TLS, or the next hop's entry in
// TLSPolicyMaps (smtp_policy.go). Sessions are kept open between
// deliveries to the same next hop or server by the connection cache
// (smtp_cache.go); Close ends the idle ones.
type SMTP struct {
	Name     string   // transport name for logs and results; "smtp" if empty
	HeloName string   // smtp_helo_name ($myhostname)
	Resolver Resolver // DNS; nil means net.DefaultResolver
	// Port is the port used when the next hop names none: 25, or the
	// test-only override of internal/server's DNS hook.
	Port string
	// Timeouts, Postfix's defaults when zero: smtp_connect_timeout 30s,
	// smtp_helo_timeout 300s (greeting, EHLO, STARTTLS), smtp_mail_timeout
	// 300s, smtp_rcpt_timeout 300s, smtp_data_init_timeout 120s,
	// smtp_data_xfer_timeout 180s (each write of the content),
	// smtp_data_done_timeout 600s, smtp_quit_timeout 300s.
	ConnectTimeout, HeloTimeout, MailTimeout, RcptTimeout          time.Duration
	DataInitTimeout, DataXferTimeout, DataDoneTimeout, QuitTimeout time.Duration
	// MXAddressLimit is smtp_mx_address_limit (default 5, 0 = no limit);
	// MXSessionLimit is smtp_mx_session_limit (default 2, 0 = no limit):
	// how many addresses are considered and how many SMTP sessions are
	// held per delivery.
	MXAddressLimit, MXSessionLimit int
	// LocalAddrs are this host's own addresses (inet_interfaces,
	// proxy_interfaces): an MX host with one of them is this host.
	LocalAddrs []net.IP
	TLS        TLSPolicy
	// DisableMIMEConversion is disable_mime_output_conversion: when
	// false (the default) an 8-bit message to a server without 8BITMIME
	// is converted to quoted-printable; when true it is sent as is.
	DisableMIMEConversion bool
	// Dial opens connections; nil means net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Logf receives informational lines (the TLS "… connection
	// established" notes); nil discards them.
	Logf func(format string, args ...any)

	// TLSPolicyMaps are smtp_tls_policy_maps: per next hop, a policy
	// that replaces TLS (see policyFor).
	TLSPolicyMaps []PolicyTable

	// The connection cache (smtp_cache.go). CacheOnDemand is
	// smtp_connection_cache_on_demand; CacheDestinations matches the
	// next hops of smtp_connection_cache_destinations (nil: none).
	// CacheTimeLimit is smtp_connection_cache_time_limit (2s when zero),
	// ReuseTimeLimit smtp_connection_reuse_time_limit (300s when zero),
	// ReuseCountLimit smtp_connection_reuse_count_limit (0: no limit),
	// RsetTimeout smtp_rset_timeout (20s when zero). The zero SMTP
	// caches nothing.
	CacheOnDemand     bool
	CacheDestinations func(ctx context.Context, nexthop string) (bool, error)
	CacheTimeLimit    time.Duration
	ReuseTimeLimit    time.Duration
	ReuseCountLimit   int
	RsetTimeout       time.Duration

	once      sync.Once // prepares policy from TLS on first use
	policy    *tlsPolicy
	policyErr error
	policies  policyCache // prepared smtp_tls_policy_maps values
	cache     connCache
}

// Deliver implements Agent.
func (s *SMTP) Deliver(ctx context.Context, msg *queue.Message, rcpts []int, nexthop string) []queue.Result {
	start := time.Now()
	res := s.Send(ctx, &msg.Envelope, msg.Size, msg.Open, rcpts, nexthop)
	for i := range res {
		res[i].Delay = time.Since(start) - res[i].ConnDelay
		if res[i].Delay < 0 {
			res[i].Delay = 0
		}
	}
	return res
}

func (s *SMTP) name() string {
	if s.Name == "" {
		return "smtp"
	}
	return s.Name
}

// parseSMTPNexthop reads Postfix's smtp(8) destination syntax.
func parseSMTPNexthop(nexthop, defPort string) (host, port string, noMX bool, err error) {
	hp := strings.TrimSpace(nexthop)
	hp = strings.TrimPrefix(hp, "inet:")
	port = defPort
	if strings.HasPrefix(hp, "[") {
		end := strings.IndexByte(hp, ']')
		if end < 0 {
			return "", "", false, fmt.Errorf("bad next hop %q: missing ]", nexthop)
		}
		host, noMX = hp[1:end], true
		rest := hp[end+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", "", false, fmt.Errorf("bad next hop %q", nexthop)
			}
			port = rest[1:]
		}
		host = strings.TrimPrefix(host, "ipv6:")
		host = strings.TrimPrefix(host, "IPv6:")
	} else {
		host = hp
		if i := strings.LastIndexByte(hp, ':'); i >= 0 && strings.Count(hp, ":") == 1 {
			host, port = hp[:i], hp[i+1:]
		}
	}
	host = strings.TrimSuffix(host, ".")
	if host == "" || strings.ContainsAny(host, " \t\r\n/") {
		return "", "", false, fmt.Errorf("bad next hop %q: no host", nexthop)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 || n > 65535 {
		p, err := net.LookupPort("tcp", port)
		if err != nil {
			return "", "", false, fmt.Errorf("bad next hop %q: bad port %q", nexthop, port)
		}
		port = strconv.Itoa(p)
	}
	return host, port, noMX, nil
}

// Send delivers one message to rcpts over SMTP to nexthop and returns
// one result per recipient. open gives the content, once per attempt.
func (s *SMTP) Send(ctx context.Context, env *queue.Envelope, size int64, open func() (io.ReadCloser, error), rcpts []int, nexthop string) []queue.Result {
	name := s.name()
	def := s.Port
	if def == "" {
		def = "25"
	}
	host, port, noMX, err := parseSMTPNexthop(nexthop, def)
	if err != nil {
		return each(rcpts, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.5",
			Reply: name + " transport: " + err.Error(), Relay: "none", Transport: name})
	}
	policy, err := s.policyFor(ctx, nexthop)
	if err != nil {
		return each(rcpts, queue.Result{Status: queue.StatusDeferred, DSN: "4.7.5",
			Reply: name + " transport: " + err.Error(), Relay: "none", Transport: name})
	}
	content, err := scanContent(open)
	if err != nil {
		return each(rcpts, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0",
			Reply: "cannot read queued message: " + err.Error(), Relay: "none", Transport: name})
	}
	start := time.Now()
	results := make([]queue.Result, len(rcpts))
	pending := make([]int, len(rcpts)) // indexes into rcpts still to deliver
	for i, rc := range rcpts {
		results[i] = queue.Result{Rcpt: rc, Status: queue.StatusDeferred, DSN: "4.4.1", Relay: "none", Transport: name,
			Reply: "delivery interrupted before a connection was made"}
		pending[i] = i
	}
	dest := strings.ToLower(strings.TrimSpace(nexthop))
	caching := s.cacheWanted(ctx, nexthop)
	newJob := func(t smtpTarget) *smtpJob {
		return &smtpJob{s: s, env: env, size: size, content: content, host: host, target: t, policy: policy}
	}
	// run delivers the pending recipients over the session cs and keeps
	// it for the next delivery or ends it. It returns false, having
	// changed nothing, when cs was a cached session found dead.
	run := func(cs *cachedSession, final bool, connDelay time.Duration) bool {
		c := cs.c
		cs.uses++
		sub := make([]int, len(pending))
		for k, i := range pending {
			sub[k] = rcpts[i]
		}
		// Shutting down interrupts the session at once; the recipients
		// stay deferred (Postfix's "delivery interrupted").
		conn := c.c
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
		out := c.transaction(sub)
		if !stop() {
			c.broken = true
		}
		if cs.uses > 1 && c.stale() {
			c.close()
			return false
		}
		relay := c.job.target.relay()
		if cs.uses > 1 {
			// Postfix's log shows a reused session as "conn_use=N"
			// right after the relay.
			relay = fmt.Sprintf("%s, conn_use=%d", relay, cs.uses)
		}
		// Once parked, the session belongs to the cache (and perhaps
		// already to another delivery): nothing of it is read after.
		if s.keep(cs, caching) {
			s.cache.put(cs, orDuration(s.CacheTimeLimit, 2*time.Second))
		} else {
			if !c.broken {
				c.quit()
			}
			c.close()
		}
		var next []int
		for k, i := range pending {
			out[k].ConnDelay, out[k].Transport = connDelay, name
			if out[k].Relay == "" {
				out[k].Relay = relay
			}
			results[i] = out[k]
			// Postfix keeps a soft-failed recipient for the next MX
			// host while there is one (smtp(8), smtp_rcpt_fail).
			if out[k].Status == queue.StatusDeferred && !final {
				next = append(next, i)
			}
		}
		pending = next
		return true
	}
	// reuse takes a cached session that ok accepts and runs the delivery
	// on it; dead ones are dropped and the next one tried.
	reuse := func(ok func(*cachedSession) bool, final bool) *cachedSession {
		for caching {
			cs := s.cache.take(func(cs *cachedSession) bool { return ok(cs) && sessionMatches(cs, policy, host) })
			if cs == nil {
				return nil
			}
			cs.c.job = newJob(cs.c.job.target)
			cs.c.job.reached = true
			if run(cs, final, time.Since(start)) {
				return cs
			}
		}
		return nil
	}

	sessions := 0
	// As Postfix's smtp(8), a session cached for this next hop comes
	// first, before any DNS lookup.
	used := ""
	if cs := reuse(func(cs *cachedSession) bool { return cs.dest == dest }, false); cs != nil {
		sessions++
		used = cs.endpoint
		if len(pending) == 0 {
			return results
		}
	}

	limit := s.MXAddressLimit
	targets, err := s.resolve(ctx, host, port, noMX, limit)
	if err != nil {
		if sessions > 0 {
			return results // as the cached session left them
		}
		var df *dnsFailure
		r := queue.Result{Status: queue.StatusDeferred, DSN: "4.4.3", Reply: err.Error(), Relay: "none", Transport: name}
		if errors.As(err, &df) {
			r.DSN = df.dsn
			if df.perm && !configuredHop(env, rcpts, host) {
				r.Status = queue.StatusBounced
			} else if df.perm {
				// A relayhost or transport next hop that does not resolve
				// is a configuration error: the mail waits for it to be
				// fixed instead of bouncing (Postfix does the same).
				r.DSN = "4" + df.dsn[1:]
			}
		}
		r.ConnDelay = time.Since(start)
		return each(rcpts, r)
	}

	for ti, t := range targets {
		if len(pending) == 0 || ctx.Err() != nil {
			break
		}
		endpoint := net.JoinHostPort(t.ip.String(), t.port)
		if endpoint == used {
			continue // its session was the cached one, just used
		}
		final := ti == len(targets)-1 || (s.MXSessionLimit > 0 && sessions+1 >= s.MXSessionLimit)
		// A session cached by a delivery to another next hop that ended
		// at the same server.
		if cs := reuse(func(cs *cachedSession) bool { return cs.endpoint == endpoint }, final); cs != nil {
			sessions++
			if final {
				break
			}
			continue
		}
		job := newJob(t)
		c, err := job.connect(ctx)
		connDelay := time.Since(start)
		if err != nil {
			r := errResult(err, "4.4.1")
			r.Relay, r.Transport, r.ConnDelay = "none", name, connDelay
			if job.reached {
				r.Relay = t.relay()
			}
			var re *replyError
			if errors.As(err, &re) && re.rep.code != 0 {
				r.RemoteMTA = t.name
			}
			for _, i := range pending {
				rc := results[i].Rcpt
				results[i] = r
				results[i].Rcpt = rc
			}
			// A session that stopped before the transaction (greeting,
			// EHLO, TLS) counts against smtp_mx_session_limit once it
			// was set up; a failed connect does not.
			if job.reached {
				sessions++
			}
			if r.Status == queue.StatusBounced {
				break
			}
			if s.MXSessionLimit > 0 && sessions >= s.MXSessionLimit {
				break
			}
			continue
		}
		sessions++
		run(&cachedSession{c: c, dest: dest, endpoint: endpoint, host: host, tlsKey: policy.key, opened: time.Now()}, final, connDelay)
		if final {
			break
		}
	}
	return results
}

func (s *SMTP) resolver() Resolver {
	if s.Resolver == nil {
		return net.DefaultResolver
	}
	return s.Resolver
}

// Check prepares the TLS settings (CA files, protocol list, level) and
// returns what is wrong with them; the server calls it when it loads
// the configuration. The prepared policy is kept for every delivery.
func (s *SMTP) Check() error {
	_, err := s.tlsPolicy()
	return err
}

func (s *SMTP) tlsPolicy() (*tlsPolicy, error) {
	s.once.Do(func() { s.policy, s.policyErr = s.TLS.prepare() })
	return s.policy, s.policyErr
}

// configuredHop says whether the next hop came from the configuration
// (relayhost, transport_maps, relay_transport) rather than from the
// recipients' own domain.
func configuredHop(env *queue.Envelope, rcpts []int, host string) bool {
	for _, rc := range rcpts {
		addr := env.Recipients[rc].Address
		if i := strings.LastIndexByte(addr, '@'); i < 0 || !strings.EqualFold(strings.TrimSuffix(addr[i+1:], "."), host) {
			return true
		}
	}
	return false
}
