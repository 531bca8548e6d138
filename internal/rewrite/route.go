package rewrite

import (
	"context"
	"strings"
)

// Sender-specified routing (RFC 5321 3.6.1 and its appendix C calls it
// source routing; "!" is UUCP's bang path, "%" the "percent hack"):
// Postfix's trivial-rewrite still honours two forms for mail it has
// accepted. smtpd refuses them from clients that may not relay (its
// restrictions treat "%", "!" and "@" in the local part of one of our
// domains as routing), so what follows only ever sees addresses that
// were allowed to relay anyway: local submissions, mynetworks and
// authenticated clients, and the results of our own tables.

// routeUnqualified is trivial-rewrite's "local" context for an address
// without a domain (rewrite.c rewrite_tree): with swap_bangpath
// "site!user" becomes "user@site", split at the first "!" ("a!b!c" is
// "b!c@a"); otherwise with allow_percent_hack "user%site" becomes
// "user@site", split at the last "%". A local part Postfix would quote
// (RFC 5322 specials, white space) is one token and stays as it is. ok
// is false when no rule applied.
func (a *Addresses) routeUnqualified(addr string) (string, bool) {
	if addr == "" || strings.Contains(addr, "@") || needsQuoting(addr) {
		return addr, false
	}
	if a.SwapBangpath {
		if i := strings.IndexByte(addr, '!'); i > 0 && i < len(addr)-1 {
			return addr[i+1:] + "@" + addr[:i], true
		}
	}
	if a.PercentHack {
		if i := strings.LastIndexByte(addr, '%'); i > 0 && i < len(addr)-1 {
			return addr[:i] + "@" + addr[i+1:], true
		}
	}
	return addr, false
}

// needsQuoting tells whether a local part is not a dot-atom (RFC 5322
// 3.2.3), so that Postfix's quote_822_local would quote it.
func needsQuoting(local string) bool {
	if local == "" || local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return true
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if c <= ' ' || c == 0x7f || strings.IndexByte(tokenSpecials, c) >= 0 && c != '.' {
			return true
		}
	}
	return false
}

// maxRouteSteps bounds ResolveLocal's loop; every step also makes the
// address shorter.
const maxRouteSteps = 64

// ResolveLocal is the routing part of trivial-rewrite's resolver
// (resolve.c resolve_addr) for an envelope recipient: while the domain
// is local (Domains.LocalContext: mydestination, or a literal of one of
// our addresses), it is stripped and the local part is looked at again:
// an "@" in it (from a quoted local part such as
// "user@remote"@ourhost, with resolve_dequoted_address), a bang path
// (swap_bangpath) or a "%" (allow_percent_hack) gives the next address,
// so "user%remote.example@ourhost" becomes "user@remote.example". When
// nothing applies the address stays as it was. Other domains (virtual,
// relay, remote) are never changed: there "%" and "!" belong to the
// mailbox name. err is for a mydestination table that could not answer.
func (a *Addresses) ResolveLocal(ctx context.Context, addr string) (string, error) {
	if a.Domains == nil || !(a.SwapBangpath || a.PercentHack || a.ResolveDequoted) {
		return addr, nil
	}
	for range maxRouteSteps {
		at := strings.LastIndexByte(addr, '@')
		if at <= 0 {
			return addr, nil
		}
		local, domain := addr[:at], addr[at+1:]
		ok, err := a.Domains.LocalContext(ctx, domain)
		if err != nil {
			return addr, err
		}
		if !ok {
			return addr, nil
		}
		next, routed := a.routeLocalPart(local)
		if !routed {
			return addr, nil
		}
		addr = a.Qualify(next)
	}
	return addr, nil
}

// routeLocalPart finds the routing in the local part of an address whose
// local domain was stripped.
func (a *Addresses) routeLocalPart(local string) (string, bool) {
	if needsQuoting(local) {
		// A quoted string: looked into only with resolve_dequoted_address.
		if !a.ResolveDequoted {
			return local, false
		}
		if i := strings.LastIndexByte(local, '@'); i > 0 && i < len(local)-1 {
			return local, true
		}
		if a.PercentHack {
			if i := strings.LastIndexByte(local, '%'); i > 0 && i < len(local)-1 {
				return local[:i] + "@" + local[i+1:], true
			}
		}
		if a.SwapBangpath {
			if i := strings.LastIndexByte(local, '!'); i > 0 && i < len(local)-1 {
				return local[i+1:] + "@" + local[:i], true
			}
		}
		return local, false
	}
	return a.routeUnqualified(local)
}
