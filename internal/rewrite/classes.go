package rewrite

import (
	"context"
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
}

// Classify returns the class of domain. An empty domain (a bare local
// part) is local, as Postfix appends $myorigin to it. When a list has
// lookup tables, Classify asks them too; a table that cannot answer
// makes Classify fall back to the literal elements only, so callers that
// can report a temporary failure use ClassifyContext.
func (d *Domains) Classify(domain string) Class {
	if d.hasTables() {
		if c, err := d.ClassifyContext(context.Background(), domain); err == nil {
			return c
		}
	}
	switch {
	case domain == "" || d.Local.Match(domain):
		return Local
	case d.VirtualAlias.Match(domain):
		return VirtualAlias
	case d.VirtualMailbox.Match(domain):
		return VirtualMailbox
	case d.Relay.Match(domain):
		return Relay
	}
	return Default
}

func (d *Domains) hasTables() bool {
	for _, l := range []*DomainList{d.Local, d.VirtualAlias, d.VirtualMailbox, d.Relay} {
		if l != nil && len(l.tables) > 0 {
			return true
		}
	}
	return false
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
