package server

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"postcote/internal/config/postfixconf"
	"postcote/internal/lookup"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
	"postcote/internal/smtpd"
	"postcote/internal/transport"
)

// mtaRewrite is the address rewriting and recipient validation of one
// main.cf (internal/rewrite), with the tables it opened.
type mtaRewrite struct {
	rules        *rewrite.Addresses
	recipients   *rewrite.Recipients
	headerLimit  int
	tokenLimit   int // header_address_token_limit
	hopLimit     int // hopcount_limit
	headerPerm   func(ctx context.Context, env *queue.Envelope) (bool, error)
	remoteDomain string        // remote_header_rewrite_domain
	senderLogin  rewrite.Table // smtpd_sender_login_maps, nil when unset
	open         rewrite.Opener
	// virtual is the virtual(8) agent of virtual_mailbox_maps; nil when
	// the map is unset (the userdb decides, as before).
	virtual *transport.VirtualMaps
}

// rewriteFrom reads the rewriting settings of main.cf. open opens
// "type:name" tables; nil means this build has no table layer, and any
// table setting is an error naming the table type.
func rewriteFrom(m *postfixconf.Main, domains *rewrite.Domains, nets []netip.Prefix, open rewrite.Opener) (*mtaRewrite, error) {
	var errs []error
	maps := func(name string) rewrite.Table {
		specs := m.List(name)
		if len(specs) == 0 {
			return nil
		}
		t, err := rewrite.OpenMaps(open, name, specs)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.Pos(name), err))
			return nil
		}
		return t
	}
	classes := func(name string) map[string]bool {
		if !m.IsSet(name) {
			return nil // Postfix's default classes for the map
		}
		set := map[string]bool{}
		for _, c := range m.List(name) {
			switch c {
			case rewrite.EnvelopeSender, rewrite.EnvelopeRecipient, rewrite.HeaderSender, rewrite.HeaderRecipient:
				set[c] = true
			default:
				errs = append(errs, fmt.Errorf("%s: %s: unknown class %q (want envelope_sender, envelope_recipient, header_sender, header_recipient)", m.Pos(name), name, c))
			}
		}
		return set
	}
	integer := func(name string) int {
		n, err := m.Int(name)
		if err != nil {
			errs = append(errs, err)
		}
		return n
	}
	myorigin, err := m.FileValue("myorigin")
	if err != nil {
		errs = append(errs, err)
	}
	appendDot, err := m.Bool("append_dot_mydomain")
	if err != nil {
		errs = append(errs, err)
	}
	propCanon, propVirtual := true, true // Postfix's default "canonical, virtual"
	if m.IsSet("propagate_unmatched_extensions") {
		propCanon, propVirtual = false, false
		for _, p := range m.List("propagate_unmatched_extensions") {
			propCanon = propCanon || p == "canonical"
			propVirtual = propVirtual || p == "virtual"
		}
	}
	delim := m.Get("recipient_delimiter")
	boolean := func(name string) bool {
		v, err := m.Bool(name)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	var masqClasses []string
	if m.IsSet("masquerade_classes") {
		masqClasses = m.List("masquerade_classes")
	}
	masq, err := rewrite.NewMasquerade(m.List("masquerade_domains"), masqClasses, m.List("masquerade_exceptions"), open)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", m.Pos("masquerade_domains"), err))
	}
	rules := &rewrite.Addresses{
		Myorigin:                  rewrite.Canonical(myorigin),
		Mydomain:                  rewrite.Canonical(m.Get("mydomain")),
		AppendDotMydomain:         appendDot,
		Domains:                   domains,
		Delimiter:                 delim,
		PropagateCanonical:        propCanon,
		PropagateVirtual:          propVirtual,
		Canonical:                 maps("canonical_maps"),
		SenderCanonical:           maps("sender_canonical_maps"),
		RecipientCanonical:        maps("recipient_canonical_maps"),
		CanonicalClasses:          classes("canonical_classes"),
		SenderCanonicalClasses:    classes("sender_canonical_classes"),
		RecipientCanonicalClasses: classes("recipient_canonical_classes"),
		VirtualAlias:              maps("virtual_alias_maps"),
		RecursionLimit:            integer("virtual_alias_recursion_limit"),
		ExpansionLimit:            integer("virtual_alias_expansion_limit"),
		AddressLengthLimit:        integer("virtual_alias_address_length_limit"),
		Masquerade:                masq,
		SwapBangpath:              boolean("swap_bangpath"),
		PercentHack:               boolean("allow_percent_hack"),
		ResolveDequoted:           boolean("resolve_dequoted_address"),
	}
	rc := &rewrite.Recipients{Domains: domains, Rules: rules,
		VirtualMailboxMaps: maps("virtual_mailbox_maps"),
		RelayRecipientMaps: maps("relay_recipient_maps"),
	}
	switch {
	case domains.Local.Empty() && len(domains.Interfaces) == 0:
		// No local domains (mydestination empty, and no address whose
		// literal is local): nothing to check, and no reason to open
		// alias files.
	case open == nil && !m.IsSet("local_recipient_maps"):
		// The default "proxy:unix:passwd.byname $alias_maps" without a
		// table layer: the system users of /etc/passwd.
		rc.Passwd = "/etc/passwd"
	default:
		rc.LocalRecipientMaps = maps("local_recipient_maps")
	}
	r := &mtaRewrite{rules: rules, recipients: rc, open: open, senderLogin: maps("smtpd_sender_login_maps")}
	size, err := m.Size("header_size_limit")
	if err != nil {
		errs = append(errs, err)
	}
	r.headerLimit = int(size)
	r.tokenLimit = integer("header_address_token_limit")
	r.remoteDomain = m.Get("remote_header_rewrite_domain")
	if d := r.remoteDomain; d != "" && !hostnameSyntax(d) {
		errs = append(errs, fmt.Errorf("%s: remote_header_rewrite_domain: %q is not a domain name (letters, digits, hyphens and dots, as example.com)", m.Pos("remote_header_rewrite_domain"), d))
	}
	r.hopLimit = integer("hopcount_limit")
	r.headerPerm, err = headerRewriteClients(m, nets, open)
	if err != nil {
		errs = append(errs, err)
	}
	if rc.VirtualMailboxMaps != nil {
		r.virtual = &transport.VirtualMaps{
			MailboxMaps: rc.VirtualMailboxMaps,
			UIDMaps:     maps("virtual_uid_maps"),
			GIDMaps:     maps("virtual_gid_maps"),
			MailboxBase: m.Get("virtual_mailbox_base"),
			MinimumUID:  integer("virtual_minimum_uid"),
			Delimiter:   delim,
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	return r, nil
}

// cleanup returns the cleanup stage in front of q.
func (r *mtaRewrite) cleanup(q rewrite.Queue) *rewrite.Cleanup {
	return &rewrite.Cleanup{Next: q, Rules: r.rules, HeaderLimit: r.headerLimit, TokenLimit: r.tokenLimit, HopLimit: r.hopLimit,
		HeaderContext: r.headerPerm, RemoteHeaderDomain: r.remoteDomain}
}

// serviceCleanup returns the cleanup an smtpd service hands its mail
// to: shared, or, when the service's master.cf -o options change what
// local_header_rewrite_clients decides (it is an smtpd parameter in
// Postfix, evaluated by each smtpd with its own mynetworks), a copy
// whose header context follows the service's view.
func (r *mtaRewrite) serviceCleanup(shared *rewrite.Cleanup, view *postfixconf.Main) (*rewrite.Cleanup, error) {
	changed := false
	for _, name := range []string{"local_header_rewrite_clients", "mynetworks", "mynetworks_style", "inet_interfaces"} {
		changed = changed || view.Overridden(name)
	}
	if !changed {
		return shared, nil
	}
	nets, err := myNetworks(view)
	if err != nil {
		return nil, err
	}
	perm, err := headerRewriteClients(view, nets, r.open)
	if err != nil {
		return nil, err
	}
	c := *shared
	c.HeaderContext = perm
	return &c, nil
}

// smtpdTables fills smtpd's table hooks: smtpd_sender_login_maps and
// the opener of check_*_access.
func (r *mtaRewrite) smtpdTables(o *smtpd.Options) {
	if r.senderLogin != nil {
		o.SenderLoginMaps = r.senderLogin
	}
	if r.open != nil {
		open := r.open
		o.OpenTable = func(name string) (smtpd.Table, error) { return open(name) }
	}
}

// headerRewriteClients reads local_header_rewrite_clients as Postfix's
// smtpd_check_rewrite evaluates it: the message's headers are rewritten
// in the local context when the first matching element says so, in the
// remote context (remote_header_rewrite_domain) otherwise. Local
// submissions (sendmail, pickup) always get the local context. Elements,
// case-insensitive: permit_inet_interfaces (the default: the client is
// one of this host's interface addresses), permit_mynetworks,
// permit_sasl_authenticated, "check_address_map type:table" or a bare
// "type:table" (the client IP address is looked up; any result is a
// match, so "static:all" makes every client local). Postfix's
// permit_tls_clientcerts and permit_tls_all_clientcerts need verified
// TLS client certificates, which postcote's smtpd does not ask for: they
// are a configuration error, as is anything else.
func headerRewriteClients(m *postfixconf.Main, nets []netip.Prefix, open rewrite.Opener) (func(context.Context, *queue.Envelope) (bool, error), error) {
	const name = "local_header_rewrite_clients"
	var inet, mynets, sasl bool
	type addrMap struct {
		spec  string
		table rewrite.Table
	}
	var maps []addrMap
	elems := m.List(name)
	for i := 0; i < len(elems); i++ {
		e := elems[i]
		switch strings.ToLower(e) {
		case "permit_inet_interfaces":
			inet = true
			continue
		case "permit_mynetworks":
			mynets = true
			continue
		case "permit_sasl_authenticated":
			sasl = true
			continue
		case "permit_tls_clientcerts", "permit_tls_all_clientcerts":
			return nil, fmt.Errorf("%s: %s: %s is not supported: postcote's smtpd does not verify TLS client certificates (use permit_sasl_authenticated, permit_mynetworks or check_address_map)", m.Pos(name), name, e)
		case "check_address_map":
			if i+1 >= len(elems) {
				return nil, fmt.Errorf("%s: %s: check_address_map needs a table (check_address_map type:table)", m.Pos(name), name)
			}
			i++
			e = elems[i]
		}
		if !strings.Contains(e, ":") {
			return nil, fmt.Errorf("%s: %s: %q is not supported (use permit_inet_interfaces, permit_mynetworks, permit_sasl_authenticated, check_address_map type:table or type:table)", m.Pos(name), name, e)
		}
		if open == nil {
			return nil, fmt.Errorf("%s: %s: %s: %w", m.Pos(name), name, e, rewrite.ErrTableType)
		}
		t, err := open(e)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", m.Pos(name), name, err)
		}
		maps = append(maps, addrMap{e, t})
	}
	var local map[netip.Addr]bool
	if inet {
		var err error
		if local, err = inetInterfaceAddrs(m); err != nil {
			return nil, fmt.Errorf("%s: permit_inet_interfaces: %w", name, err)
		}
	}
	return func(ctx context.Context, env *queue.Envelope) (bool, error) {
		if env.Protocol == "local" || env.ClientAddr == "" {
			return true, nil
		}
		if sasl && env.AuthUser != "" {
			return true, nil
		}
		ip, err := netip.ParseAddr(strings.Trim(env.ClientAddr, "[]"))
		if err == nil {
			ip = ip.Unmap()
			if inet && local[ip] {
				return true, nil
			}
			if mynets {
				for _, p := range nets {
					if p.Contains(ip) {
						return true, nil
					}
				}
			}
		}
		for _, am := range maps {
			v, err := am.table.Lookup(ctx, strings.Trim(env.ClientAddr, "[]"))
			if err != nil {
				return false, fmt.Errorf("%s lookup error for %s: %w", am.spec, env.ClientAddr, err)
			}
			if len(v) > 0 {
				return true, nil
			}
		}
		return false, nil
	}, nil
}

// inetInterfaceAddrs are the addresses of inet_interfaces as Postfix's
// permit_inet_interfaces sees them (own_inet_addr_list; proxy_interfaces
// is not part of it): "all" is every interface address, "loopback-only"
// 127.0.0.1 and ::1, other elements the addresses they name.
func inetInterfaceAddrs(m *postfixconf.Main) (map[netip.Addr]bool, error) {
	ifaces, err := m.InetInterfaces()
	if err != nil {
		return nil, err
	}
	out := map[netip.Addr]bool{}
	for _, v := range ifaces {
		switch v {
		case "all":
			addrs, err := net.InterfaceAddrs()
			if err != nil {
				return nil, fmt.Errorf("list interfaces: %w", err)
			}
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					if ip, ok := netip.AddrFromSlice(n.IP); ok {
						out[ip.Unmap()] = true
					}
				}
			}
		case "loopback-only", "localhost":
			out[netip.MustParseAddr("127.0.0.1")], out[netip.IPv6Loopback()] = true, true
		default:
			if ip, err := netip.ParseAddr(v); err == nil {
				out[ip.Unmap()] = true
			}
		}
	}
	return out, nil
}

// hostnameSyntax tells whether d is a domain name as Postfix's
// valid_hostname accepts it (RFC 1035 2.3.1): dot-separated labels of
// letters, digits and hyphens, none empty or over 63 bytes, not starting
// or ending with a hyphen, 255 bytes at most.
func hostnameSyntax(d string) bool {
	if len(d) > 255 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i] | 0x20
			if !(c >= 'a' && c <= 'z' || l[i] >= '0' && l[i] <= '9' || l[i] == '-') {
				return false
			}
		}
	}
	return true
}

// tableOpener returns the opener of main.cf's lookup tables: one
// internal/lookup registry per generation, so that parameters naming the
// same table share it, closed with the generation.
func (s *runner) tableOpener(gen *generation) rewrite.Opener {
	reg := lookup.NewRegistry(lookup.Options{Logf: func(format string, args ...any) {
		s.log.Warnf("master", format, args...)
	}})
	gen.closers = append(gen.closers, reg.Close)
	return func(spec string) (rewrite.Table, error) { return reg.Open(spec) }
}
