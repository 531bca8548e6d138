package smtpd

// The client's host name, as Postfix's smtpd_peer.c finds it when
// smtpd_peername_lookup = yes: the PTR name of the address (the "reverse
// name"), then that name's own addresses, which must include the client
// address (forward-confirmed reverse DNS). Only a confirmed name is used
// in logs, the Received header and check_client_access; anything else is
// "unknown", with a status saying whether the failure was temporary.

import (
	"context"
	"net/netip"
	"strings"
	"time"

	"postcote/internal/dnsx"
)

// peerStatus is Postfix's SMTPD_PEER_CODE: how the name lookup ended.
type peerStatus int

const (
	peerOK     peerStatus = iota // name found (and confirmed)
	peerTemp                     // DNS failed temporarily
	peerPerm                     // no name (or no lookup done)
	peerForged                   // the name does not map back to the address
)

// peerDNSTimeout bounds the whole name lookup of a new session.
const peerDNSTimeout = 10 * time.Second

// lookupPeer sets the session's client name and reverse name with their
// statuses, once per session (before the greeting, as Postfix does).
func (s *session) lookupPeer(ctx context.Context) {
	s.reverseName, s.nameStatus, s.reverseStatus = "unknown", peerPerm, peerPerm
	if !s.clientAddr.IsValid() || s.opts.NoPeernameLookup {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, min(s.opts.Timeouts.Command, peerDNSTimeout))
	defer cancel()
	if s.opts.Resolver == nil {
		if s.opts.LookupAddr == nil {
			return
		}
		// A PTR-only hook (tests): its name is taken as confirmed.
		if name, err := s.opts.LookupAddr(lctx, s.clientAddr.String()); err == nil && usableHostname(name) {
			s.clientName = strings.TrimSuffix(name, ".")
			s.reverseName = s.clientName
			s.nameStatus, s.reverseStatus = peerOK, peerOK
		}
		return
	}
	name, status := s.reverseLookup(lctx)
	s.reverseStatus, s.nameStatus = status, status
	if status != peerOK {
		return
	}
	s.reverseName = name
	s.nameStatus = s.forwardConfirm(lctx, name)
	if s.nameStatus == peerOK {
		s.clientName = name
	}
}

// reverseLookup finds the client's PTR name. Like Postfix, a name that is
// not a valid host name, or that looks like an address, counts as none.
func (s *session) reverseLookup(ctx context.Context) (string, peerStatus) {
	names, err := s.opts.Resolver.LookupAddr(ctx, s.clientAddr.String())
	if err != nil {
		if dnsx.IsTemporary(err) {
			return "", peerTemp
		}
		return "", peerPerm
	}
	for _, n := range names {
		if usableHostname(n) {
			return strings.TrimSuffix(n, "."), peerOK
		}
	}
	if len(names) > 0 {
		s.warnf("%s: hostname %.100s not usable", s.clientAddr, printable(names[0]))
	}
	return "", peerPerm
}

// forwardConfirm checks that name resolves back to the client address.
func (s *session) forwardConfirm(ctx context.Context, name string) peerStatus {
	addrs, err := s.opts.Resolver.LookupIPAddr(ctx, name)
	if err != nil {
		s.warnf("hostname %s does not resolve to address %s: %s", name, s.clientAddr, dnsErrorText(err))
		if dnsx.IsTemporary(err) {
			return peerTemp
		}
		return peerPerm
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == s.clientAddr {
			return peerOK
		}
	}
	s.warnf("hostname %s does not resolve to address %s", name, s.clientAddr)
	return peerForged
}

// usableHostname: a syntactically valid, printable host name that is not
// an address (Postfix logs anything else as "unknown").
func usableHostname(name string) bool {
	n := strings.TrimSuffix(name, ".")
	if n == "" || strings.HasPrefix(n, "[") || !validDomain(n) || !utf8Printable(n) {
		return false
	}
	_, err := netip.ParseAddr(n)
	return err != nil
}

// dnsErrorText words a failed lookup as the resolver library does in
// Postfix's warnings.
func dnsErrorText(err error) string {
	if dnsx.IsNotFound(err) {
		return "Name or service not known"
	}
	return "Temporary failure in name resolution"
}
