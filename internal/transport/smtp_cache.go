package transport

import (
	"context"
	"strings"
	"sync"
	"time"
)

// The SMTP connection cache, as Postfix's smtp(8) with scache(8)
// (CONNECTION_CACHE_README): after a delivery, a session that is still
// in good order is reset (RSET) and kept open, idle, for
// smtp_connection_cache_time_limit; the next delivery to the same next
// hop (or to the same server address and port, whichever destination
// sent there) takes it instead of resolving, connecting, greeting,
// EHLO and STARTTLS again. A session is used for at most
// smtp_connection_reuse_time_limit from its connect, and reused at most
// smtp_connection_reuse_count_limit times (0: no limit).
//
// Caching applies to every next hop with smtp_connection_cache_on_demand
// (Postfix turns it on per destination while the destination has a
// backlog in the active queue; postcote's scheduler does not tell its
// agents about backlogs, so "on demand" here means every destination, at
// the cost of holding an idle connection for the time limit after the
// last message), and to the next hops of
// smtp_connection_cache_destinations otherwise. A TLS session is cached
// only with smtp_tls_connection_reuse (or a policy's connection_reuse=yes),
// as Postfix's default keeps TLS sessions out of the cache, and is taken
// only by a delivery under the same TLS policy (and, for the verify and
// secure levels, the same next-hop name the certificate was checked
// against).
//
// A cached session that turns out dead when used (the server closed it,
// or answers MAIL with 421) is dropped and the delivery goes on with a
// fresh connection; that session counts against nothing. The log line
// of a delivery on a reused session says so as Postfix's does:
// "relay=host[addr]:port, conn_use=2, delay=…".

// cachedSession is an SMTP session between transactions.
type cachedSession struct {
	c        *smtpConn
	dest     string // next hop, lower case, as the delivery named it
	endpoint string // address:port
	host     string // next-hop host, for the verify/secure name check
	tlsKey   string // the TLS policy the session was set up under
	opened   time.Time
	uses     int // transactions done on it
	timer    *time.Timer
}

// connCache holds idle sessions. The zero value is ready to use.
type connCache struct {
	mu     sync.Mutex
	idle   []*cachedSession
	closed bool
}

// put parks cs for limit; when no delivery takes it by then, it is ended
// with QUIT.
func (cc *connCache) put(cs *cachedSession, limit time.Duration) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.closed {
		go endSession(cs.c)
		return
	}
	cc.idle = append(cc.idle, cs)
	cs.timer = time.AfterFunc(limit, func() {
		if cc.remove(cs) {
			endSession(cs.c)
		}
	})
}

// remove takes cs out of the cache; false when it was no longer there.
func (cc *connCache) remove(cs *cachedSession) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for i, x := range cc.idle {
		if x == cs {
			cc.idle = append(cc.idle[:i], cc.idle[i+1:]...)
			return true
		}
	}
	return false
}

// take removes and returns the most recently parked session that ok
// accepts, or nil.
func (cc *connCache) take(ok func(*cachedSession) bool) *cachedSession {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for i := len(cc.idle) - 1; i >= 0; i-- {
		cs := cc.idle[i]
		if !ok(cs) {
			continue
		}
		if !cs.timer.Stop() {
			// Its time ran out just now; the timer's goroutine will
			// find it gone and do nothing, so end it here.
			cc.idle = append(cc.idle[:i], cc.idle[i+1:]...)
			go endSession(cs.c)
			continue
		}
		cc.idle = append(cc.idle[:i], cc.idle[i+1:]...)
		return cs
	}
	return nil
}

// closeAll ends every idle session and refuses new ones.
func (cc *connCache) closeAll() {
	cc.mu.Lock()
	idle := cc.idle
	cc.idle, cc.closed = nil, true
	cc.mu.Unlock()
	for _, cs := range idle {
		cs.timer.Stop()
		endSession(cs.c)
	}
}

// size is the number of idle sessions.
func (cc *connCache) size() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.idle)
}

// endSession says QUIT, within a short time: the server has nothing more
// to tell an idle session.
func endSession(c *smtpConn) {
	c.c.SetDeadline(time.Now().Add(min(orDuration(c.job.s.QuitTimeout, 300*time.Second), 10*time.Second)))
	if c.cmd("QUIT") == nil {
		readSMTPReply(c.r)
	}
	c.close()
}

// Close ends the idle sessions of the connection cache; deliveries
// after it are not cached. The server calls it when a reload replaces
// the agent.
func (s *SMTP) Close() error {
	s.cache.closeAll()
	return nil
}

// cacheWanted says whether sessions to nexthop are kept after delivery.
func (s *SMTP) cacheWanted(ctx context.Context, nexthop string) bool {
	if s.CacheOnDemand {
		return true
	}
	if s.CacheDestinations == nil {
		return false
	}
	ok, err := s.CacheDestinations(ctx, nexthop)
	if err != nil {
		// Not caching is always safe; say why once per delivery.
		s.logf("warning: smtp_connection_cache_destinations lookup for %s: %v", nexthop, err)
		return false
	}
	return ok
}

// keep decides, after a transaction on cs, whether cs goes back into the
// cache: caching is wanted, the session is in good order, its reuse
// limits leave room, and the server accepts RSET (smtp_rset_timeout).
func (s *SMTP) keep(cs *cachedSession, wanted bool) bool {
	c := cs.c
	switch {
	case !wanted || c.broken:
		return false
	case c.tls && !c.job.policy.reuse:
		return false
	case s.ReuseCountLimit > 0 && cs.uses-1 >= s.ReuseCountLimit:
		return false
	case time.Since(cs.opened) >= orDuration(s.ReuseTimeLimit, 300*time.Second):
		return false
	}
	c.deadline(orDuration(s.RsetTimeout, 20*time.Second))
	if c.cmd("RSET") != nil {
		return false
	}
	rep, err := readSMTPReply(c.r)
	return err == nil && rep.code == 250
}

// sessionKey is what a cached session must match to be reused: the same
// TLS policy, and for a verified TLS session the same next-hop name.
func sessionMatches(cs *cachedSession, policy *tlsPolicy, host string) bool {
	if cs.tlsKey != policy.key {
		return false
	}
	if cs.c.tls && (policy.level == "verify" || policy.level == "secure") && !strings.EqualFold(cs.host, host) {
		return false
	}
	return true
}

// stale reports whether a reused session died before its transaction
// began: the connection was lost before the MAIL reply, or the server
// answered MAIL with 421 (it is closing the connection).
func (c *smtpConn) stale() bool {
	return (c.broken && c.mailCode == 0) || c.mailCode == 421
}
