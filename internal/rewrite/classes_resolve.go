package rewrite

import (
	"context"
	"strings"
)

// Resolve is the address part of trivial-rewrite's resolver (resolve.c
// resolve_addr) that smtpd's relay checks need before they classify a
// recipient: an address without a domain gets its bang path or percent
// hack applied (swap_bangpath, allow_percent_hack), and the local
// domains are stripped off with the routing they uncover (ResolveLocal).
// An address that stays without a domain is returned as it is: the
// caller appends $myhostname, as the resolver does. err is for a
// mydestination table that could not answer.
func (r *Recipients) Resolve(ctx context.Context, address string) (string, error) {
	rules := r.Rules
	if rules == nil {
		rules = &Addresses{Domains: r.Domains}
	}
	if !strings.Contains(address, "@") {
		routed, ok := rules.routeUnqualified(address)
		if !ok {
			return address, nil
		}
		address = routed
	}
	return rules.ResolveLocal(ctx, address)
}
