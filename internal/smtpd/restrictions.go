package smtpd

// The restriction engine: Postfix's smtpd_*_restrictions lists
// (SMTPD_ACCESS_README, postconf(5)). Each list is evaluated in order until
// a restriction permits, rejects or defers; "permit" ends only its own
// list, a reject or defer ends the whole check. At RCPT time the lists run
// client, helo, sender (when smtpd_delay_reject = yes), then relay, then
// recipient: both of the last two must not reject. smtpd_data_restrictions
// run at DATA (and the first BDAT), smtpd_end_of_data_restrictions after
// the message content, before it is committed to the queue. The DNS-based
// restrictions are in dns_restrictions.go and dns_rbl.go.

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"postcote/internal/dnsx"
)

// stage names a restriction list.
type stage int

const (
	stageClient stage = iota
	stageHelo
	stageSender
	stageRelay
	stageRecipient
	stageData
	stageEOD
	numStages
)

var stageParam = [numStages]string{
	"smtpd_client_restrictions", "smtpd_helo_restrictions", "smtpd_sender_restrictions",
	"smtpd_relay_restrictions", "smtpd_recipient_restrictions",
	"smtpd_data_restrictions", "smtpd_end_of_data_restrictions",
}

// defaultRelayRestrictions is Postfix's smtpd_relay_restrictions default.
var defaultRelayRestrictions = []string{"permit_mynetworks", "permit_sasl_authenticated", "defer_unauth_destination"}

type verdict int

const (
	dunno verdict = iota
	permit
	deny // reject or defer: the reply says which
)

// decision is what one restriction or list decided.
type decision struct {
	verdict verdict
	reply   Reply
	// deferred: the deny is a remembered defer_if_permit, which an
	// explicit rejection found later would override.
	deferred bool
}

// checkState is what the restrictions may look at.
type checkState struct {
	clientName string
	clientAddr netip.Addr
	helo       string // "" before HELO/EHLO
	sender     *Path  // nil before MAIL
	rcpt       *Path  // nil before RCPT
	authUser   string // SASL login, "" when not authenticated
	tls        bool
	esmtp      bool // the client said EHLO
	pipelined  bool // input arrived ahead of time without PIPELINING

	reverseName   string     // the PTR name, "unknown" when none
	nameStatus    peerStatus // how the (confirmed) client name lookup ended
	reverseStatus peerStatus // how the PTR lookup ended
	rcptCount     int        // recipients accepted so far
	atRCPT        bool       // the check runs for a RCPT (or VRFY) command
	cache         *dnsCache  // the session's DNS list answers
	warn          func(format string, args ...any)

	// deferIfPermit and deferIfReject are Postfix's defer_if_permit and
	// defer_if_reject: a temporary DNS failure that turns the final
	// permit, or a later 5XX refusal, into this reply.
	deferIfPermit *Reply
	deferIfReject *Reply
}

func (st *checkState) warnf(format string, args ...any) {
	if st.warn != nil {
		st.warn(format, args...)
	}
}

func (st *checkState) namaddr() string {
	return st.clientName + "[" + st.clientAddr.String() + "]"
}

// restriction is one compiled element of a list.
type restriction struct {
	name  string
	table Table   // for check_*_access
	list  dnsList // for the DNS list restrictions
	eval  evalFunc
}

// evalFunc is the code of one restriction.
type evalFunc = func(ctx context.Context, p *policy, r *restriction, st *checkState, sg stage) (decision, error)

// policy is the compiled set of restriction lists plus what they consult.
type policy struct {
	lists      [numStages][]restriction
	addrs      Addresses
	myNetworks []netip.Prefix
	loginMaps  Table
	hostname   string
	// implicitUnlisted: smtpd_reject_unlisted_recipient (default yes).
	implicitUnlisted bool

	resolver                 dnsx.Resolver
	unknownAddressCode       int    // unknown_address_reject_code
	unknownAddressTempfail   string // unknown_address_tempfail_action
	unknownHostnameCode      int    // unknown_hostname_reject_code
	unknownHeloTempfail      string // unknown_helo_hostname_tempfail_action
	unknownClientCode        int    // unknown_client_reject_code
	rblCode                  int    // maps_rbl_reject_code
	defaultRBLReply          string // default_rbl_reply
	rblReplyMaps             Table  // rbl_reply_maps
	multiRecipientBounceCode int    // multi_recipient_bounce_reject_code
}

// restrictionFuncs maps each supported restriction name to its code (the
// DNS-based ones are in dnsRestrictionFuncs). Names in neither make
// compilePolicy fail: a misspelt restriction must not silently open the
// relay.
var restrictionFuncs = map[string]evalFunc{
	"permit": func(context.Context, *policy, *restriction, *checkState, stage) (decision, error) {
		return decision{verdict: permit}, nil
	},
	"reject": func(_ context.Context, _ *policy, _ *restriction, st *checkState, sg stage) (decision, error) {
		return denied(554, "5.7.1", st, sg, "Access denied"), nil
	},
	"defer": func(_ context.Context, _ *policy, _ *restriction, st *checkState, sg stage) (decision, error) {
		return denied(450, "4.7.1", st, sg, "Access denied"), nil
	},
	"permit_mynetworks": func(_ context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if p.inMyNetworks(st.clientAddr) {
			return decision{verdict: permit}, nil
		}
		return decision{}, nil
	},
	"permit_sasl_authenticated": func(_ context.Context, _ *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if st.authUser != "" {
			return decision{verdict: permit}, nil
		}
		return decision{}, nil
	},
	"permit_auth_destination": func(ctx context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if st.rcpt == nil {
			return decision{}, nil
		}
		ok, err := p.authDestination(ctx, *st.rcpt)
		if err != nil || !ok {
			return decision{}, err
		}
		return decision{verdict: permit}, nil
	},
	"reject_unauth_destination": func(ctx context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		return p.unauthDestination(ctx, st, 554, "5.7.1")
	},
	"defer_unauth_destination": func(ctx context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		return p.unauthDestination(ctx, st, 454, "4.7.1")
	},
	"reject_multi_recipient_bounce": func(_ context.Context, p *policy, _ *restriction, st *checkState, sg stage) (decision, error) {
		return p.multiRecipientBounce(st, sg), nil
	},
	"reject_unauth_pipelining": func(_ context.Context, _ *policy, _ *restriction, st *checkState, sg stage) (decision, error) {
		if st.pipelined {
			return denied(503, "5.5.0", st, sg, "Improper use of SMTP command pipelining"), nil
		}
		return decision{}, nil
	},
	"reject_non_fqdn_recipient": func(_ context.Context, _ *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if st.rcpt != nil && !st.rcpt.Null && !fqdn(st.rcpt.Domain) {
			return denied(504, "5.5.2", st, stageRecipient, "need fully-qualified address"), nil
		}
		return decision{}, nil
	},
	"reject_non_fqdn_sender": func(_ context.Context, _ *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if st.sender != nil && !st.sender.Null && !fqdn(st.sender.Domain) {
			return denied(504, "5.5.2", st, stageSender, "need fully-qualified address"), nil
		}
		return decision{}, nil
	},
	"reject_non_fqdn_helo_hostname": func(_ context.Context, _ *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if st.helo != "" && !strings.HasPrefix(st.helo, "[") && !fqdn(st.helo) {
			return denied(504, "5.5.2", st, stageHelo, "need fully-qualified hostname"), nil
		}
		return decision{}, nil
	},
	"reject_invalid_helo_hostname": func(_ context.Context, _ *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if st.helo != "" && !validDomain(st.helo) {
			return denied(501, "5.5.2", st, stageHelo, "Invalid name"), nil
		}
		return decision{}, nil
	},
	"reject_unlisted_recipient": func(ctx context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if st.rcpt == nil {
			return decision{}, nil
		}
		return p.unlistedRecipient(ctx, st)
	},
	"reject_plaintext_session": func(_ context.Context, _ *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		if !st.tls {
			return decision{verdict: deny, reply: Reply{450, "4.7.1", "Session encryption is required"}}, nil
		}
		return decision{}, nil
	},
	"reject_sender_login_mismatch": func(ctx context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		return p.senderLoginMismatch(ctx, st)
	},
	"check_client_access":    checkAccess,
	"check_helo_access":      checkAccess,
	"check_sender_access":    checkAccess,
	"check_recipient_access": checkAccess,
}

// restrictionAliases are the pre-2.3 names Postfix still accepts.
var restrictionAliases = map[string]string{
	"reject_non_fqdn_hostname": "reject_non_fqdn_helo_hostname",
	"reject_invalid_hostname":  "reject_invalid_helo_hostname",
	"reject_unknown_hostname":  "reject_unknown_helo_hostname",
	"reject_unknown_client":    "reject_unknown_client_hostname",
}

// compilePolicy turns the option lists into restriction code. It refuses
// unknown names and, as Postfix does, a relay/recipient pair that contains
// nothing able to refuse relaying.
func compilePolicy(opts *Options, addrs Addresses) (*policy, error) {
	p := &policy{addrs: addrs, myNetworks: opts.MyNetworks, loginMaps: opts.SenderLoginMaps, hostname: strings.ToLower(opts.Hostname),
		implicitUnlisted: !opts.KeepUnlistedRecipients}
	if err := p.dnsSettings(opts); err != nil {
		return nil, err
	}
	relay := opts.RelayRestrictions
	if relay == nil {
		relay = defaultRelayRestrictions
	}
	src := [numStages][]string{opts.ClientRestrictions, opts.HeloRestrictions, opts.SenderRestrictions, relay,
		opts.RecipientRestrictions, opts.DataRestrictions, opts.EndOfDataRestrictions}
	for sg, list := range src {
		tokens := splitRestrictions(list)
		for i := 0; i < len(tokens); i++ {
			name := strings.ToLower(tokens[i])
			if alias, ok := restrictionAliases[name]; ok {
				name = alias
			}
			fn, ok := restrictionFuncs[name]
			dns, isDNS := dnsRestrictionFuncs[name]
			if isDNS {
				fn, ok = dns.eval, true
			}
			if !ok {
				return nil, fmt.Errorf("%s: unknown or unsupported restriction %q", stageParam[sg], tokens[i])
			}
			r := restriction{name: name, eval: fn}
			if strings.HasPrefix(name, "check_") {
				if i+1 >= len(tokens) {
					return nil, fmt.Errorf("%s: %s needs a table argument", stageParam[sg], name)
				}
				i++
				if opts.OpenTable == nil {
					return nil, fmt.Errorf("%s: %s %s: no lookup tables available", stageParam[sg], name, tokens[i])
				}
				t, err := opts.OpenTable(tokens[i])
				if err != nil {
					return nil, fmt.Errorf("%s: %s %s: %w", stageParam[sg], name, tokens[i], err)
				}
				r.table = t
			}
			if isDNS {
				if p.resolver == nil {
					return nil, fmt.Errorf("%s: %s needs DNS, and no resolver is configured", stageParam[sg], name)
				}
				if dns.list {
					if i+1 >= len(tokens) {
						return nil, fmt.Errorf("%s: %s needs a DNS list domain", stageParam[sg], name)
					}
					i++
					l, err := parseDNSList(tokens[i])
					if err != nil {
						return nil, fmt.Errorf("%s: %s: %w", stageParam[sg], name, err)
					}
					r.list = l
				}
			}
			if name == "reject_sender_login_mismatch" && p.loginMaps == nil {
				return nil, fmt.Errorf("%s: reject_sender_login_mismatch needs smtpd_sender_login_maps", stageParam[sg])
			}
			p.lists[sg] = append(p.lists[sg], r)
		}
	}
	if !p.refusesRelay() {
		return nil, fmt.Errorf("smtpd_relay_restrictions and smtpd_recipient_restrictions: specify at least one working instance of reject_unauth_destination, defer_unauth_destination, reject or defer (refusing to run an open relay)")
	}
	return p, nil
}

// splitRestrictions accepts elements that are single names, "name arg"
// pairs, or whole comma/space separated values.
func splitRestrictions(list []string) []string {
	var out []string
	for _, e := range list {
		out = append(out, strings.FieldsFunc(e, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })...)
	}
	return out
}

// refusesRelay mirrors Postfix's start-up check (smtpd_check.c): one of the
// two RCPT lists must be able to refuse mail for other destinations.
func (p *policy) refusesRelay() bool {
	for _, sg := range []stage{stageRelay, stageRecipient} {
		for _, r := range p.lists[sg] {
			switch r.name {
			case "reject_unauth_destination", "defer_unauth_destination", "reject", "defer":
				return true
			}
		}
	}
	return false
}

// evaluate runs the given lists in order and returns the first deny, or a
// dunno/permit decision when none denied. A lookup error becomes the
// temporary failure Postfix gives (451 4.3.0). A temporary DNS failure
// remembered on the way (defer_if_permit) turns the final permit into
// its deferral; one remembered as defer_if_reject turns a 5XX refusal
// into its 4XX reply.
func (p *policy) evaluate(ctx context.Context, st *checkState, stages ...stage) (decision, error) {
	for _, sg := range stages {
		for i := range p.lists[sg] {
			r := &p.lists[sg][i]
			d, err := r.eval(ctx, p, r, st, sg)
			if err != nil {
				return decision{verdict: deny, reply: tempLookupFailure(st, sg)}, fmt.Errorf("%s %s: %w", stageParam[sg], r.name, err)
			}
			if d.verdict == deny {
				if d.reply.Code >= 500 && st.deferIfReject != nil {
					d.reply = *st.deferIfReject
				}
				return d, nil
			}
			if d.verdict == permit {
				break // permit ends this list only
			}
		}
	}
	if st.deferIfPermit != nil {
		if st.atRCPT && st.rcpt != nil && p.implicitUnlisted {
			// As Postfix's smtpd_check_rcpt, the implicit
			// unlisted-recipient check comes before a remembered
			// deferral: a 5XX for an unknown user wins over a 4XX.
			d, err := p.unlistedRecipient(ctx, st)
			if err != nil {
				return decision{verdict: deny, reply: tempLookupFailure(st, stageRecipient)}, err
			}
			if d.verdict == deny {
				return d, nil
			}
		}
		return decision{verdict: deny, reply: *st.deferIfPermit, deferred: true}, nil
	}
	return decision{verdict: permit}, nil
}

func tempLookupFailure(st *checkState, sg stage) Reply {
	return Reply{451, "4.3.0", objectName(st, sg) + ": Temporary lookup failure"}
}

// objectName is the "<…>" a reply names for a list, and className its
// "… rejected" word, as Postfix's reply_name/reply_class.
func objectName(st *checkState, sg stage) string {
	switch sg {
	case stageClient:
		return "<" + st.namaddr() + ">"
	case stageHelo:
		return "<" + st.helo + ">"
	case stageSender:
		if st.sender != nil {
			return "<" + st.sender.Display() + ">"
		}
	case stageData:
		return "<DATA>"
	case stageEOD:
		return "<END-OF-MESSAGE>"
	default:
		if st.rcpt != nil {
			return "<" + st.rcpt.Display() + ">"
		}
	}
	return "<>"
}

func className(sg stage) string {
	switch sg {
	case stageClient:
		return "Client host"
	case stageHelo:
		return "Helo command"
	case stageSender:
		return "Sender address"
	case stageData:
		return "Data command"
	case stageEOD:
		return "End-of-data"
	}
	return "Recipient address"
}

func denied(code int, enh string, st *checkState, sg stage, text string) decision {
	return decision{verdict: deny, reply: Reply{code, enh, fmt.Sprintf("%s: %s rejected: %s", objectName(st, sg), className(sg), text)}}
}

func (p *policy) inMyNetworks(a netip.Addr) bool {
	a = a.Unmap()
	for _, n := range p.myNetworks {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// fqdn says whether a domain is fully qualified (has a dot inside, or is
// an address literal).
func fqdn(d string) bool {
	d = strings.TrimSuffix(d, ".")
	return strings.HasPrefix(d, "[") || strings.Contains(d, ".")
}

// Resolver is what Addresses may also implement (rewrite.Recipients
// does) so that the relay checks see a recipient as Postfix's
// trivial-rewrite resolves it: Resolve applies the sender-specified
// routing that swap_bangpath, allow_percent_hack and
// resolve_dequoted_address honour in an address without a domain and in
// our local domains ("user%remote@ourhost" is "user@remote"), and returns
// an address that has no domain after that unchanged. Without it a
// recipient is classified as sent.
type Resolver interface {
	Resolve(ctx context.Context, address string) (string, error)
}

// dest is a recipient as the relay checks see it.
type dest struct {
	addr   string // the resolved address: local part, "@", domain
	domain string // its domain, lower case without the trailing dot
	class  Class
	// routed: sender-specified routing is left in the local part.
	routed bool
}

// destination resolves a recipient the way Postfix's smtpd_check.c sees
// it through trivial-rewrite (resolve.c resolve_addr). The source route
// is already gone (parsePath; RFC 5321 C lets a server ignore it), the
// local part is dequoted. An address without a domain gets $myhostname.
// With a Resolver, routing in the local part of a local address is
// applied first. What is left is routing (RESOLVE_FLAG_ROUTED) when an
// "@", "!" or "%" comes before the domain's "@": for every class, and
// whatever swap_bangpath and allow_percent_hack say, since the next hop
// may honour what this host does not (resolve.c: "to prevent backup MX
// hosts from relaying third-party destinations through primary MX
// hosts").
func (p *policy) destination(ctx context.Context, rcpt Path) (dest, error) {
	addr := rcpt.Local
	if rcpt.Domain != "" {
		addr += "@" + rcpt.DomainKey()
	}
	res, _ := p.addrs.(Resolver)
	for range 2 {
		if res != nil {
			r, err := res.Resolve(ctx, addr)
			if err != nil {
				return dest{addr: addr}, fmt.Errorf("resolve %s: %w", addr, err)
			}
			addr = r
		}
		if strings.Contains(addr, "@") {
			break
		}
		// resolve.c: "Re-resolve with @$myhostname".
		addr += "@" + p.hostname
	}
	at := strings.LastIndexByte(addr, '@')
	d := dest{addr: addr, domain: strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))}
	d.routed = strings.ContainsAny(addr[:at], "@!%")
	class, err := p.addrs.Classify(ctx, d.domain)
	if err != nil {
		return d, fmt.Errorf("classify %s: %w", d.domain, err)
	}
	d.class = class
	return d, nil
}

// authDestination is permit_auth_destination's test: the recipient is in
// one of our domains (any class but Other) and has no routing in it.
func (p *policy) authDestination(ctx context.Context, rcpt Path) (bool, error) {
	if rcpt.Null {
		return false, nil
	}
	d, err := p.destination(ctx, rcpt)
	if err != nil {
		return false, err
	}
	return d.class != Other && !d.routed, nil
}

func (p *policy) unauthDestination(ctx context.Context, st *checkState, code int, enh string) (decision, error) {
	if st.rcpt == nil {
		return decision{}, nil
	}
	ok, err := p.authDestination(ctx, *st.rcpt)
	if err != nil || ok {
		return decision{}, err
	}
	return decision{verdict: deny, reply: Reply{code, enh, "<" + st.rcpt.Display() + ">: Relay access denied"}}, nil
}

// unlistedRecipient is reject_unlisted_recipient (and the implicit
// smtpd_reject_unlisted_recipient = yes check): a recipient in one of our
// domains must exist. As smtpd_check.c check_rcpt_maps, the resolved
// address and its class decide.
func (p *policy) unlistedRecipient(ctx context.Context, st *checkState) (decision, error) {
	d, err := p.destination(ctx, *st.rcpt)
	if err != nil || d.class == Other {
		return decision{}, err
	}
	known, err := p.addrs.KnownRecipient(ctx, d.addr)
	if err != nil {
		return decision{}, fmt.Errorf("recipient %s: %w", d.addr, err)
	}
	if known {
		return decision{}, nil
	}
	text := fmt.Sprintf("<%s>: Recipient address rejected: User unknown in %s recipient table", st.rcpt.Display(), d.class)
	if d.class == VirtualAlias || d.class == VirtualMailbox {
		text = fmt.Sprintf("<%s>: Recipient address rejected: User unknown in %s table", st.rcpt.Display(), d.class)
	}
	return decision{verdict: deny, reply: Reply{550, "5.1.1", text}}, nil
}

// senderLoginMismatch is reject_sender_login_mismatch: the MAIL FROM
// address must be owned (smtpd_sender_login_maps) by the SASL login, and an
// owned address may not be used without logging in.
func (p *policy) senderLoginMismatch(ctx context.Context, st *checkState) (decision, error) {
	if st.sender == nil || st.sender.Null {
		return decision{}, nil
	}
	owners, err := lookupAddress(ctx, p.loginMaps, *st.sender)
	if err != nil {
		return decision{}, err
	}
	var list []string
	for _, o := range owners {
		list = append(list, splitRestrictions([]string{o})...)
	}
	if st.authUser == "" {
		if len(list) > 0 {
			return denied(553, "5.7.1", st, stageSender, "not logged in"), nil
		}
		return decision{}, nil
	}
	for _, o := range list {
		if strings.EqualFold(o, st.authUser) {
			return decision{}, nil
		}
	}
	return denied(553, "5.7.1", st, stageSender, "not owned by user "+st.authUser), nil
}

// lookupAddress looks an address up the way Postfix's access and login
// maps do (access(5) EMAIL ADDRESS PATTERNS): user@domain, then the domain
// and its parents, then "user@".
func lookupAddress(ctx context.Context, t Table, pth Path) ([]string, error) {
	keys := []string{pth.Address()}
	if d := pth.DomainKey(); d != "" {
		keys = append(keys, domainKeys(d)...)
		keys = append(keys, pth.Local+"@")
	}
	return lookupKeys(ctx, t, keys)
}

// domainKeys is the domain and its parent domains ("a.b.c", "b.c", "c").
func domainKeys(d string) []string {
	keys := []string{d}
	if strings.HasPrefix(d, "[") {
		return keys
	}
	for i := strings.IndexByte(d, '.'); i >= 0; i = strings.IndexByte(d, '.') {
		d = d[i+1:]
		if d == "" {
			break
		}
		keys = append(keys, d)
	}
	return keys
}

func lookupKeys(ctx context.Context, t Table, keys []string) ([]string, error) {
	for _, k := range keys {
		v, err := t.Lookup(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("lookup %q: %w", k, err)
		}
		if len(v) > 0 {
			return v, nil
		}
	}
	return nil, nil
}

// checkAccess is check_{client,helo,sender,recipient}_access with access(5)
// results: OK or a number (permit), REJECT/DEFER [text], DUNNO, "4NN/5NN
// text", PERMIT and the plain restriction names permit/reject/defer.
func checkAccess(ctx context.Context, p *policy, r *restriction, st *checkState, sg stage) (decision, error) {
	var keys []string
	obj := sg
	switch r.name {
	case "check_client_access":
		obj = stageClient
		if st.clientName != "unknown" {
			keys = domainKeys(strings.ToLower(st.clientName))
		}
		keys = append(keys, ipKeys(st.clientAddr)...)
	case "check_helo_access":
		obj = stageHelo
		if st.helo == "" {
			return decision{}, nil
		}
		keys = domainKeys(strings.ToLower(strings.TrimSuffix(st.helo, ".")))
	case "check_sender_access", "check_recipient_access":
		pth := st.sender
		obj = stageSender
		if r.name == "check_recipient_access" {
			pth, obj = st.rcpt, stageRecipient
		}
		if pth == nil {
			return decision{}, nil
		}
		if pth.Null {
			keys = []string{""}
			break
		}
		v, err := lookupAddress(ctx, r.table, *pth)
		if err != nil {
			return decision{}, err
		}
		return accessAction(v, st, obj), nil
	}
	v, err := lookupKeys(ctx, r.table, keys)
	if err != nil {
		return decision{}, err
	}
	return accessAction(v, st, obj), nil
}

// ipKeys are the access(5) keys for a client address: the address, then
// shorter octet prefixes for IPv4.
func ipKeys(a netip.Addr) []string {
	a = a.Unmap()
	keys := []string{a.String()}
	if a.Is4() {
		s := a.String()
		for i := strings.LastIndexByte(s, '.'); i > 0; i = strings.LastIndexByte(s, '.') {
			s = s[:i]
			keys = append(keys, s)
		}
	}
	return keys
}

func accessAction(v []string, st *checkState, sg stage) decision {
	if len(v) == 0 {
		return decision{}
	}
	action, text, _ := strings.Cut(strings.TrimSpace(v[0]), " ")
	text = strings.TrimSpace(text)
	switch up := strings.ToUpper(action); {
	case up == "OK" || up == "PERMIT":
		return decision{verdict: permit}
	case up == "DUNNO" || up == "":
		return decision{}
	case up == "REJECT":
		if text == "" {
			text = "Access denied"
		}
		return denied(554, "5.7.1", st, sg, text)
	case up == "DEFER":
		if text == "" {
			text = "Access denied"
		}
		return denied(450, "4.7.1", st, sg, text)
	case len(up) == 3 && (up[0] == '4' || up[0] == '5'):
		code, err := strconv.Atoi(up)
		if err != nil {
			break
		}
		enh := string(up[0]) + ".7.1"
		if e, rest, ok := strings.Cut(text, " "); ok && len(e) >= 5 && e[0] == up[0] && e[1] == '.' {
			enh, text = e, rest
		}
		if text == "" {
			text = "Access denied"
		}
		return denied(code, enh, st, sg, text)
	default:
		if _, err := strconv.Atoi(up); err == nil {
			return decision{verdict: permit} // a numeric result means OK
		}
	}
	// An action this server does not know: fail safe, as Postfix's
	// "451 4.3.5 Server configuration error".
	return decision{verdict: deny, reply: Reply{451, "4.3.5", "Server configuration error"}}
}

// RestrictionNames lists every restriction name compilePolicy accepts,
// the pre-2.3 aliases included (the configuration checker's table is
// tested against it, so `postcote check` and the server agree).
func RestrictionNames() []string {
	var names []string
	for n := range restrictionFuncs {
		names = append(names, n)
	}
	for n := range dnsRestrictionFuncs {
		names = append(names, n)
	}
	for n := range restrictionAliases {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
