package rewrite

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Canonical class names of canonical_classes, sender_canonical_classes
// and recipient_canonical_classes (postconf(5)).
const (
	EnvelopeSender    = "envelope_sender"
	EnvelopeRecipient = "envelope_recipient"
	HeaderSender      = "header_sender"
	HeaderRecipient   = "header_recipient"
)

// Addresses is the address rewriting of Postfix's trivial-rewrite and
// cleanup, configured from main.cf. The zero value rewrites nothing.
type Addresses struct {
	// Myorigin is $myorigin: the domain appended to a bare local part
	// ("root" becomes "root@$myorigin"). Empty appends nothing.
	Myorigin string
	// Mydomain is $mydomain, appended as ".$mydomain" to "user@host"
	// when AppendDotMydomain is set (append_dot_mydomain).
	Mydomain          string
	AppendDotMydomain bool
	// Domains decides which domains are ours: the "user" (no domain)
	// key of canonical(5) and virtual(5) is tried only for $myorigin and
	// mydestination domains.
	Domains *Domains
	// Delimiter is recipient_delimiter: each of its characters separates
	// an address extension ("user+ext@example.com").
	Delimiter string
	// PropagateCanonical and PropagateVirtual are the "canonical" and
	// "virtual" members of propagate_unmatched_extensions (both by
	// default): an extension dropped to find a match is added to the
	// result.
	PropagateCanonical bool
	PropagateVirtual   bool

	// Canonical is canonical_maps, SenderCanonical sender_canonical_maps,
	// RecipientCanonical recipient_canonical_maps.
	Canonical, SenderCanonical, RecipientCanonical Table
	// CanonicalClasses, SenderCanonicalClasses and
	// RecipientCanonicalClasses say where each map applies; a nil map
	// means every class of the map's kind, as Postfix's defaults.
	CanonicalClasses, SenderCanonicalClasses, RecipientCanonicalClasses map[string]bool

	// VirtualAlias is virtual_alias_maps.
	VirtualAlias Table
	// RecursionLimit is virtual_alias_recursion_limit and ExpansionLimit
	// virtual_alias_expansion_limit (1000 each when zero).
	RecursionLimit int
	ExpansionLimit int
	// AddressLengthLimit is virtual_alias_address_length_limit: a
	// virtual_alias_maps result longer than this is an expansion error
	// (1000 when zero).
	AddressLengthLimit int

	// Masquerade is masquerade_domains with its classes and exceptions,
	// applied after canonical mapping; nil masquerades nothing.
	Masquerade *Masquerade

	// SwapBangpath is swap_bangpath, PercentHack allow_percent_hack and
	// ResolveDequoted resolve_dequoted_address (all yes in Postfix; the
	// zero value is no): see routeUnqualified and ResolveLocal.
	SwapBangpath, PercentHack, ResolveDequoted bool
}

// ErrAliasExpansion is wrapped by Expand for a loop or an expansion over
// the limits; Postfix defers such mail ("451 4.6.0 Alias expansion
// error"). Local delivery's ExpandAliases wraps it too.
var ErrAliasExpansion = errors.New("alias expansion error")

// Qualify is trivial-rewrite's "local" context: "site!user" becomes
// "user@site" (SwapBangpath), or else "user%site" becomes "user@site"
// (PercentHack), or else "user" becomes "user@$myorigin"; then with
// append_dot_mydomain "user@host" becomes "user@host.$mydomain". The
// null address stays empty.
func (a *Addresses) Qualify(addr string) string {
	return a.qualifyIn(addr, a.Myorigin, a.Mydomain)
}

// qualifyIn is trivial-rewrite's rewrite_tree in a context whose origin
// ("user" becomes "user@origin") and domain (append_dot_mydomain's
// ".domain") are given: the local context uses $myorigin and $mydomain,
// the remote context $remote_header_rewrite_domain for both
// (trivial-rewrite.c). The null address, and "@" alone, stay as they are;
// so does "user@" (no domain to complete).
func (a *Addresses) qualifyIn(addr, origin, mydomain string) string {
	if addr == "" || addr == "@" {
		return addr
	}
	if r, ok := a.routeUnqualified(addr); ok {
		addr = r
	}
	local, domain := SplitAddress(addr)
	if !strings.Contains(addr, "@") {
		if origin == "" {
			return addr
		}
		return local + "@" + origin
	}
	if a.AppendDotMydomain && mydomain != "" && domain != "" &&
		!strings.Contains(domain, ".") && !strings.HasPrefix(domain, "[") {
		return local + "@" + domain + "." + mydomain
	}
	return addr
}

// splitExtension returns the local part without its extension and the
// extension with its delimiter ("user+foo" gives "user", "+foo"). Postfix
// splits at the first delimiter character that is not the first
// character of the local part.
func splitExtension(local, delims string) (base, ext string) {
	if delims == "" {
		return local, ""
	}
	if i := strings.IndexAny(local, delims); i > 0 {
		return local[:i], local[i:]
	}
	return local, ""
}

// mapAddress looks addr up in t with the key sequence of canonical(5)
// and virtual(5): "user+ext@domain", "user@domain", "user" (for our
// local domains only), "@domain". found is false when no key matched.
// When a key without the extension matched and propagate is set, the
// extension is added to each result's local part. A result "@domain"
// keeps the input's local part (canonical(5): "@domain @domain").
func (a *Addresses) mapAddress(ctx context.Context, t Table, addr string, propagate bool) ([]string, bool, error) {
	if t == nil || addr == "" {
		return nil, false, nil
	}
	local, domain := SplitAddress(addr)
	domain = Canonical(domain)
	base, ext := splitExtension(local, a.Delimiter)
	type key struct {
		k        string
		stripped bool
	}
	var keys []key
	if domain != "" {
		keys = append(keys, key{local + "@" + domain, false})
		if ext != "" {
			keys = append(keys, key{base + "@" + domain, true})
		}
	}
	if domain == "" || a.isLocalDomain(ctx, domain) {
		keys = append(keys, key{local, false})
		if ext != "" {
			keys = append(keys, key{base, true})
		}
	}
	if domain != "" {
		keys = append(keys, key{"@" + domain, ext != ""})
	}
	for _, k := range keys {
		vals, err := t.Lookup(ctx, k.k)
		if err != nil {
			return nil, false, fmt.Errorf("lookup %s: %w", k.k, err)
		}
		res := splitResults(vals)
		if len(res) == 0 {
			continue
		}
		for i, r := range res {
			if strings.HasPrefix(r, "@") {
				r = local + r
				res[i] = r
				continue // the local part already has its extension
			}
			if propagate && k.stripped && ext != "" {
				rl, rd := SplitAddress(r)
				if !strings.Contains(r, "@") {
					res[i] = rl + ext
				} else {
					res[i] = rl + ext + "@" + rd
				}
			}
		}
		return res, true, nil
	}
	return nil, false, nil
}

// isLocalDomain tells whether domain is $myorigin or local as
// resolve_local() says (mydestination, or a literal of our own
// addresses), where the bare "user" key applies (mail_addr_find).
func (a *Addresses) isLocalDomain(ctx context.Context, domain string) bool {
	if a.Myorigin != "" && Canonical(a.Myorigin) == domain {
		return true
	}
	if a.Domains == nil {
		return false
	}
	ok, err := a.Domains.LocalContext(ctx, domain)
	return err == nil && ok
}

// classOn tells whether a canonical map applies to class: a nil class set
// means the map's default classes.
func classOn(set map[string]bool, class string, defaults ...string) bool {
	if set == nil {
		for _, d := range defaults {
			if d == class {
				return true
			}
		}
		return false
	}
	return set[class]
}

// Canonicalize rewrites one address of the given canonical class
// (EnvelopeSender, EnvelopeRecipient, HeaderSender, HeaderRecipient)
// through sender_canonical_maps or recipient_canonical_maps and then
// canonical_maps, as cleanup(8) does. Each map gives one address: the
// first result is used.
func (a *Addresses) Canonicalize(ctx context.Context, class, addr string) (string, error) {
	type step struct {
		name string
		t    Table
	}
	var steps []step
	switch class {
	case EnvelopeSender, HeaderSender:
		if classOn(a.SenderCanonicalClasses, class, EnvelopeSender, HeaderSender) {
			steps = append(steps, step{"sender_canonical_maps", a.SenderCanonical})
		}
	case EnvelopeRecipient, HeaderRecipient:
		if classOn(a.RecipientCanonicalClasses, class, EnvelopeRecipient, HeaderRecipient) {
			steps = append(steps, step{"recipient_canonical_maps", a.RecipientCanonical})
		}
	default:
		return addr, fmt.Errorf("unknown canonical class %q", class)
	}
	if classOn(a.CanonicalClasses, class, EnvelopeSender, EnvelopeRecipient, HeaderSender, HeaderRecipient) {
		steps = append(steps, step{"canonical_maps", a.Canonical})
	}
	for _, s := range steps {
		res, found, err := a.mapAddress(ctx, s.t, addr, a.PropagateCanonical)
		if err != nil {
			return addr, lookupError(s.name, addr, fmt.Errorf("%s: %w", s.name, err))
		}
		if found {
			addr = a.Qualify(res[0])
		}
	}
	return addr, nil
}

// Expand resolves addr through virtual_alias_maps the way cleanup(8)'s
// map1n does: every result replaces the address, results are expanded
// again, an address that expands to itself is kept (and not expanded
// again), and expansion stops with an *Error wrapping ErrAliasExpansion
// ("451 4.6.0 Alias expansion error") past RecursionLimit levels (which
// also ends alias loops), past ExpansionLimit addresses, or for a result
// longer than AddressLengthLimit. A table that cannot answer gives an
// *Error with Postfix's "451 4.3.0 Error: queue file write error". An
// address without an entry expands to itself.
func (a *Addresses) Expand(ctx context.Context, addr string) ([]string, error) {
	if a.VirtualAlias == nil {
		return []string{addr}, nil
	}
	recursion, expansion, length := a.RecursionLimit, a.ExpansionLimit, a.AddressLengthLimit
	if recursion <= 0 {
		recursion = 1000
	}
	if expansion <= 0 {
		expansion = 1000
	}
	if length <= 0 {
		length = 1000
	}
	out := []string{addr}
	self := map[string]bool{} // addresses that expanded into themselves
	for i := 0; i < len(out); i++ {
		for depth := 0; ; depth++ {
			if len(out) > expansion {
				return nil, aliasError("unreasonable virtual_alias_maps map expansion size for " + addr)
			}
			if depth >= recursion {
				return nil, aliasError("unreasonable virtual_alias_maps map nesting for " + addr)
			}
			cur := out[i]
			if self[strings.ToLower(cur)] {
				break
			}
			res, found, err := a.mapAddress(ctx, a.VirtualAlias, cur, a.PropagateVirtual)
			if err != nil {
				return nil, lookupError("virtual_alias_maps", addr, fmt.Errorf("virtual_alias_maps: %w", err))
			}
			if !found {
				break
			}
			for j, r := range res {
				if len(r) > length {
					return nil, aliasError(fmt.Sprintf("unreasonable virtual_alias_maps result %.300s...", r))
				}
				r = a.Qualify(r)
				if j == 0 {
					out[i] = r
				} else {
					out = append(out, r)
				}
				if strings.EqualFold(r, cur) {
					self[strings.ToLower(cur)] = true
				}
			}
		}
	}
	return out, nil
}

// LookupAddress looks addr up in t with the key order of canonical(5)
// and virtual(5) ("user+ext@domain", "user@domain", "@domain"; "user"
// is not tried), without rewriting the results: virtual(8) uses it for
// virtual_mailbox_maps and virtual_uid_maps. delimiter is
// recipient_delimiter.
func LookupAddress(ctx context.Context, t Table, addr, delimiter string) ([]string, bool, error) {
	a := &Addresses{Delimiter: delimiter}
	local, domain := SplitAddress(addr)
	if domain == "" {
		return nil, false, nil
	}
	return a.mapAddress(ctx, t, local+"@"+domain, false)
}
