package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sort"
	"strings"

	"postcote/internal/dnsx"
)

// Resolver is the DNS the SMTP client uses (internal/dnsx owns it; the
// SMTP server shares it). *net.Resolver satisfies it.
type Resolver = dnsx.Resolver

// StaticResolver answers from fixed tables; tests use it so that nothing
// resolves names off this machine (see internal/dnsx for its file format).
type StaticResolver = dnsx.StaticResolver

// ParseStaticResolver reads dnsx's zone-like test file.
func ParseStaticResolver(rd io.Reader) (*StaticResolver, error) {
	return dnsx.ParseStaticResolver(rd)
}

func notFound(name string) error { return dnsx.NotFound(name) }

// smtpTarget is one address to try: the MX (or host) name and its IP.
type smtpTarget struct {
	name string // host name for logs and certificate checks
	ip   net.IP
	port string
	pref int // MX preference, -1 when not from an MX record
}

func (t smtpTarget) host() string  { return fmt.Sprintf("%s[%s]", t.name, t.ip) }
func (t smtpTarget) relay() string { return fmt.Sprintf("%s[%s]:%s", t.name, t.ip, t.port) }

// dnsFailure is a resolution failure with the DSN and text it ends with.
type dnsFailure struct {
	perm bool
	dsn  string
	text string
}

func (e *dnsFailure) Error() string { return e.text }

// resolve turns a next hop into the addresses to try, in order: the MX
// hosts by preference, equal preferences shuffled (RFC 5321 5.1), each
// MX's addresses; the domain's own addresses when it has no MX; only
// the host's addresses when noMX (a [bracketed] next hop). At most
// limit addresses (smtp_mx_address_limit; 0 = no limit).
func (s *SMTP) resolve(ctx context.Context, host, port string, noMX bool, limit int) ([]smtpTarget, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []smtpTarget{{name: ip.String(), ip: ip, port: port, pref: -1}}, nil
	}
	if noMX {
		ts, err := s.addrs(ctx, host, port)
		if err != nil {
			return nil, lookupFailure(host, "A", err)
		}
		return capTargets(ts, limit), nil
	}
	mxs, err := s.resolver().LookupMX(ctx, host)
	var de *net.DNSError
	if err != nil && !(errors.As(err, &de) && de.IsNotFound) {
		return nil, lookupFailure(host, "MX", err)
	}
	if len(mxs) == 0 {
		// RFC 5321 5.1: no MX records, the domain itself is the host.
		ts, aerr := s.addrs(ctx, host, port)
		if aerr == nil && s.isSelf(ts[0].ip) {
			return nil, loopsBack(host)
		}
		if aerr != nil {
			if err != nil && errors.As(aerr, &de) && de.IsNotFound {
				// Neither MX nor address: the domain does not exist,
				// worded as Postfix words NXDOMAIN for the MX query.
				return nil, lookupFailure(host, "MX", err)
			}
			return nil, lookupFailure(host, "A", aerr)
		}
		return capTargets(ts, limit), nil
	}
	for _, mx := range mxs {
		if len(mxs) == 1 && (mx.Host == "." || mx.Host == "") {
			// RFC 7505 3: a null MX says the domain accepts no mail.
			return nil, &dnsFailure{perm: true, dsn: "5.1.10",
				text: fmt.Sprintf("Domain %s does not accept mail (nullMX)", host)}
		}
	}
	sort.SliceStable(mxs, func(i, j int) bool { return mxs[i].Pref < mxs[j].Pref })
	for i := 0; i < len(mxs); {
		j := i
		for j < len(mxs) && mxs[j].Pref == mxs[i].Pref {
			j++
		}
		group := mxs[i:j]
		rand.Shuffle(len(group), func(a, b int) { group[a], group[b] = group[b], group[a] })
		i = j
	}
	var out []smtpTarget
	var lastErr error
	for _, mx := range mxs {
		if mx.Host == "." || mx.Host == "" {
			continue
		}
		ts, err := s.addrs(ctx, strings.TrimSuffix(mx.Host, "."), port)
		if err != nil {
			lastErr = lookupFailure(mx.Host, "A", err)
			continue
		}
		self := false
		for i := range ts {
			ts[i].pref = int(mx.Pref)
			self = self || s.isSelf(ts[i].ip)
		}
		if self {
			// RFC 5321 5.1: when this host is an MX of the domain, only
			// the more preferred MX hosts may be tried; none means the
			// mail would loop (Postfix's "loops back to myself").
			var better []smtpTarget
			for _, t := range out {
				if t.pref < int(mx.Pref) {
					better = append(better, t)
				}
			}
			if len(better) == 0 {
				return nil, loopsBack(host)
			}
			out = better
			break
		}
		out = append(out, ts...)
	}
	if len(out) == 0 {
		if lastErr == nil {
			lastErr = &dnsFailure{dsn: "4.4.3", text: fmt.Sprintf("Host or domain name not found. Name service error for name=%s type=MX", host)}
		}
		return nil, lastErr
	}
	return capTargets(out, limit), nil
}

func capTargets(ts []smtpTarget, limit int) []smtpTarget {
	if limit > 0 && len(ts) > limit {
		return ts[:limit]
	}
	return ts
}

func (s *SMTP) addrs(ctx context.Context, host, port string) ([]smtpTarget, error) {
	ips, err := s.resolver().LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	var out []smtpTarget
	for _, ip := range ips {
		out = append(out, smtpTarget{name: host, ip: ip.IP, port: port, pref: -1})
	}
	if len(out) == 0 {
		return nil, notFound(host)
	}
	return out, nil
}

// lookupFailure words a DNS error as Postfix does: a name that does not
// exist bounces (5.4.4), anything else (SERVFAIL, timeout) defers (4.4.3).
func lookupFailure(name, typ string, err error) error {
	var de *net.DNSError
	if errors.As(err, &de) && de.IsNotFound {
		return &dnsFailure{perm: true, dsn: "5.4.4",
			text: fmt.Sprintf("Host or domain name not found. Name service error for name=%s type=%s: Host not found", name, typ)}
	}
	return &dnsFailure{dsn: "4.4.3",
		text: fmt.Sprintf("Host or domain name not found. Name service error for name=%s type=%s: Host not found, try again", name, typ)}
}

// isSelf says whether ip is one of this host's own addresses (the
// inet_interfaces and proxy_interfaces the server gave in LocalAddrs).
func (s *SMTP) isSelf(ip net.IP) bool {
	for _, a := range s.LocalAddrs {
		if a.Equal(ip) {
			return true
		}
	}
	return false
}

func loopsBack(domain string) error {
	return &dnsFailure{perm: true, dsn: "5.4.6", text: fmt.Sprintf("mail for %s loops back to myself", domain)}
}
