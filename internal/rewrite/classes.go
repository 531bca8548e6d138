package rewrite

import (
	"context"
	"net/netip"
	"strings"
)

// Class is an address class.
type Class int

// The address classes, in the order Postfix tries them.
const (
	Default        Class = iota // none of ours: relaying needs a permit
	Local                       // mydestination (and inet_interfaces addresses)
	VirtualAlias                // virtual_alias_domains
	VirtualMailbox              // virtual_mailbox_domains
	Relay                       // relay_domains
)

func (c Class) String() string {
	switch c {
	case Local:
		return "local"
	case VirtualAlias:
		return "virtual alias"
	case VirtualMailbox:
		return "virtual mailbox"
	case Relay:
		return "relay"
	}
	return "default"
}

// DomainList is a Postfix domain list after file expansion: names, and
// ".name" elements that match subdomains.
type DomainList struct {
	exact      map[string]bool
	parents    []string // ".example.com" forms, and names when subdomains match
	subdomains bool
	tables     []Table // type:name elements, see WithTables
}

// NewDomainList builds a list from elements as main.cf gives them. With
// subdomains set, "example.com" also matches "mx.example.com" (Postfix's
// parent_domain_matches_subdomains).
func NewDomainList(elems []string, subdomains bool) *DomainList {
	l := &DomainList{exact: map[string]bool{}, subdomains: subdomains}
	for _, e := range elems {
		e = Canonical(e)
		if e == "" {
			continue
		}
		if strings.HasPrefix(e, ".") {
			l.parents = append(l.parents, e)
			continue
		}
		l.exact[e] = true
		if subdomains {
			l.parents = append(l.parents, "."+e)
		}
	}
	return l
}

// Match tells whether domain (any case, trailing dot allowed) is listed.
func (l *DomainList) Match(domain string) bool {
	if l == nil {
		return false
	}
	d := Canonical(domain)
	if d == "" {
		return false
	}
	if l.exact[d] {
		return true
	}
	for _, p := range l.parents {
		if strings.HasSuffix(d, p) {
			return true
		}
	}
	return false
}

// Empty tells whether the list has no element.
func (l *DomainList) Empty() bool {
	return l == nil || len(l.exact) == 0 && len(l.parents) == 0 && len(l.tables) == 0
}

// Canonical lowercases a domain and drops one trailing dot.
func Canonical(domain string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(domain), "."))
}

// Domains are the domain lists that decide address classes.
type Domains struct {
	Local          *DomainList // mydestination
	VirtualAlias   *DomainList // virtual_alias_domains
	VirtualMailbox *DomainList // virtual_mailbox_domains
	Relay          *DomainList // relay_domains
	// Interfaces are the addresses this host receives mail on:
	// inet_interfaces ("all" being every interface address) and
	// proxy_interfaces. An address literal naming one of them
	// ("user@[192.0.2.1]", "user@[IPv6:2001:db8::1]") is local, as in
	// Postfix's resolve_local().
	Interfaces []netip.Addr
	// ResolveNumeric is resolve_numeric_domain: a domain that is a bare
	// IPv4 address ("user@192.0.2.1") stands for the literal
	// [192.0.2.1]. Without it such a domain, which is no valid host name,
	// is of the default class (trivial-rewrite flags it as an error).
	ResolveNumeric bool
}

// Classify returns the class of domain. An empty domain (a bare local
// part) is local, as Postfix appends $myorigin to it. When a list has
// lookup tables, Classify asks them too; a table that cannot answer
// makes Classify fall back to the literal elements only, so callers that
// can report a temporary failure use ClassifyContext.
func (d *Domains) Classify(domain string) Class {
	c, err := d.classify(context.Background(), domain, true)
	if err != nil {
		c, _ = d.classify(context.Background(), domain, false)
	}
	return c
}

// classify is trivial-rewrite's class decision (resolve.c resolve_addr)
// for one domain: local when resolve_local() says so (mydestination, or
// an address literal of Interfaces), then virtual_alias_domains,
// virtual_mailbox_domains, relay_domains. An address literal that is
// not a valid IPv4 or "IPv6:" address, and an all-numeric domain
// (valid_hostname's "numeric hostname") are of the default class unless
// ResolveNumeric turns the latter into a literal; so is a name with
// two trailing dots. tables says whether
// the lists' lookup tables are asked.
func (d *Domains) classify(ctx context.Context, domain string, tables bool) (Class, error) {
	if domain == "" {
		return Local, nil
	}
	match := func(l *DomainList, dom string) (bool, error) {
		if tables {
			return l.MatchContext(ctx, dom)
		}
		return l.Match(dom), nil
	}
	dom := Canonical(domain)
	if dom == "" || strings.HasSuffix(dom, ".") {
		return Default, nil // "x..": one trailing dot is stripped, not two
	}
	if numericHost(dom) {
		if !d.ResolveNumeric || !validIPv4(dom) {
			return Default, nil
		}
		// The bare form may be listed in mydestination (resolve.c
		// strips it before it finds the domain numeric).
		if ok, err := match(d.Local, dom); err != nil || ok {
			return Local, err
		}
		dom = "[" + dom + "]"
	}
	if strings.HasPrefix(dom, "[") && literalAddr(dom) == (netip.Addr{}) {
		return Default, nil
	}
	if ok, err := match(d.Local, dom); err != nil {
		return Default, err
	} else if ok || d.ownLiteral(dom) {
		return Local, nil
	}
	for _, c := range []struct {
		list  *DomainList
		class Class
	}{{d.VirtualAlias, VirtualAlias}, {d.VirtualMailbox, VirtualMailbox}, {d.Relay, Relay}} {
		ok, err := match(c.list, dom)
		if err != nil {
			return Default, err
		}
		if ok {
			return c.class, nil
		}
	}
	return Default, nil
}

// LocalContext is Postfix's resolve_local(): domain (one trailing dot
// ignored, but not two) is in mydestination, or is an address literal
// of one of Interfaces. err is for a mydestination table that could not
// answer.
func (d *Domains) LocalContext(ctx context.Context, domain string) (bool, error) {
	if d == nil {
		return false, nil
	}
	dom := Canonical(domain)
	if dom == "" || strings.HasSuffix(dom, ".") {
		return false, nil
	}
	if ok, err := d.Local.MatchContext(ctx, dom); err != nil || ok {
		return ok, err
	}
	return d.ownLiteral(dom), nil
}

// ownLiteral tells whether dom is an address literal (RFC 5321 4.1.3:
// "[192.0.2.1]", "[IPv6:2001:db8::1]") of an address this host listens
// on (resolve_local.c: valid_mailhost_addr, then own_inet_addr and
// proxy_inet_addr).
func (d *Domains) ownLiteral(dom string) bool {
	a := literalAddr(dom)
	if !a.IsValid() {
		return false
	}
	for _, own := range d.Interfaces {
		if own.WithZone("") == a {
			return true
		}
	}
	return false
}

// literalAddr parses an address literal as Postfix's
// valid_mailhost_addr does: IPv4 bare, IPv6 only with the "IPv6:" tag
// (any case). The zero Addr means dom is no valid literal.
func literalAddr(dom string) netip.Addr {
	if len(dom) < 3 || dom[0] != '[' || dom[len(dom)-1] != ']' {
		return netip.Addr{}
	}
	inner := dom[1 : len(dom)-1]
	if len(inner) > 5 && strings.EqualFold(inner[:5], "IPv6:") {
		a, err := netip.ParseAddr(inner[5:])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return netip.Addr{}
		}
		return a
	}
	if !validIPv4(inner) {
		return netip.Addr{}
	}
	return netip.MustParseAddr(inner)
}

// validIPv4 is a dotted quad (valid_ipv4_hostaddr).
func validIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

// numericHost tells whether a domain is what valid_hostname rejects as
// a "numeric hostname": labels of digits and hyphens only, no letter or
// underscore anywhere.
func numericHost(dom string) bool {
	if dom == "" || dom[0] == '[' {
		return false
	}
	for i := 0; i < len(dom); i++ {
		if c := dom[i]; !(c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// RecipientChecker tells whether a recipient of one of our classes
// exists. found is false for an unknown user; err is for back ends that
// could not answer (a temporary failure, never "unknown").
type RecipientChecker interface {
	RecipientExists(ctx context.Context, class Class, address string) (found bool, err error)
}

// SplitAddress splits "local@domain" at the last "@". An address without
// "@" has an empty domain.
func SplitAddress(addr string) (local, domain string) {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[:i], addr[i+1:]
	}
	return addr, ""
}
