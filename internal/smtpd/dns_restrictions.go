package smtpd

// The restrictions that ask the DNS about a name (postconf(5), Postfix's
// smtpd_check.c): reject_unknown_sender_domain and
// reject_unknown_recipient_domain (the domain needs an MX or an address,
// RFC 5321 5.1; a null MX, RFC 7505, refuses mail), reject_unknown_helo_hostname
// (an address or an MX), reject_unknown_client_hostname and
// reject_unknown_reverse_client_hostname (the results of the session's
// name lookup, dns.go). A DNS answer that never came is not a "no": it
// becomes a deferral, by default only if nothing else rejects
// (defer_if_permit, the tempfail actions of postconf(5)).

import (
	"context"
	"fmt"
	"strings"

	"postcote/internal/dnsx"
)

// dnsRestrictionFuncs are the restrictions that ask the DNS (a resolver
// is then required); list marks those followed by a DNS list domain.
var dnsRestrictionFuncs = map[string]struct {
	eval evalFunc
	list bool
}{
	"reject_unknown_sender_domain": {list: false, eval: func(ctx context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		return p.unknownAddress(ctx, st, st.sender, stageSender)
	}},
	"reject_unknown_recipient_domain": {list: false, eval: func(ctx context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		return p.unknownAddress(ctx, st, st.rcpt, stageRecipient)
	}},
	"reject_unknown_helo_hostname": {list: false, eval: func(ctx context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		return p.unknownHelo(ctx, st)
	}},
	"reject_unknown_client_hostname": {list: false, eval: func(_ context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		return p.unknownClient(st), nil
	}},
	"reject_unknown_reverse_client_hostname": {list: false, eval: func(_ context.Context, p *policy, _ *restriction, st *checkState, _ stage) (decision, error) {
		return p.unknownReverseClient(st), nil
	}},
	"reject_rbl_client": {list: true, eval: func(ctx context.Context, p *policy, r *restriction, st *checkState, _ stage) (decision, error) {
		return p.rejectList(ctx, st, r.list, r.list.addrQuery(st.clientAddr), st.clientAddr.String(), className(stageClient))
	}},
	"reject_rhsbl_client": {list: true, eval: func(ctx context.Context, p *policy, r *restriction, st *checkState, _ stage) (decision, error) {
		if st.clientName == "unknown" {
			return decision{}, nil
		}
		return p.rejectList(ctx, st, r.list, r.list.domainQuery(st.clientName), st.clientName, className(stageClient))
	}},
	"reject_rhsbl_reverse_client": {list: true, eval: func(ctx context.Context, p *policy, r *restriction, st *checkState, _ stage) (decision, error) {
		if st.reverseName == "unknown" || st.reverseName == "" {
			return decision{}, nil
		}
		return p.rejectList(ctx, st, r.list, r.list.domainQuery(st.reverseName), st.reverseName, classReverseClient)
	}},
	"reject_rhsbl_helo": {list: true, eval: func(ctx context.Context, p *policy, r *restriction, st *checkState, _ stage) (decision, error) {
		if st.helo == "" {
			return decision{}, nil
		}
		return p.rejectList(ctx, st, r.list, r.list.domainQuery(st.helo), st.helo, className(stageHelo))
	}},
	"reject_rhsbl_sender": {list: true, eval: func(ctx context.Context, p *policy, r *restriction, st *checkState, _ stage) (decision, error) {
		if st.sender == nil || st.sender.Null {
			return decision{}, nil
		}
		return p.rejectList(ctx, st, r.list, r.list.domainQuery(st.sender.Raw), st.sender.Display(), className(stageSender))
	}},
	"reject_rhsbl_recipient": {list: true, eval: func(ctx context.Context, p *policy, r *restriction, st *checkState, _ stage) (decision, error) {
		if st.rcpt == nil {
			return decision{}, nil
		}
		return p.rejectList(ctx, st, r.list, r.list.domainQuery(st.rcpt.Raw), st.rcpt.Display(), className(stageRecipient))
	}},
	"permit_dnswl_client": {list: true, eval: func(ctx context.Context, p *policy, r *restriction, st *checkState, _ stage) (decision, error) {
		return p.permitList(ctx, st, r.list, r.list.addrQuery(st.clientAddr), st.clientAddr.String(), className(stageClient))
	}},
	"permit_rhswl_client": {list: true, eval: func(ctx context.Context, p *policy, r *restriction, st *checkState, _ stage) (decision, error) {
		if st.clientName == "unknown" {
			return decision{}, nil
		}
		return p.permitList(ctx, st, r.list, r.list.domainQuery(st.clientName), st.clientName, className(stageClient))
	}},
}

// Tempfail actions (unknown_address_tempfail_action and friends).
const (
	deferIfPermit = "defer_if_permit"
	deferAll      = "defer"
)

// dnsStatus is what a name lookup for a restriction found, Postfix's
// DNS_OK, DNS_NULLMX, DNS_NOTFOUND and DNS_RETRY.
type dnsStatus int

const (
	dnsOK dnsStatus = iota
	dnsNullMX
	dnsNotFound
	dnsRetry
)

// policyReply makes a restriction's reply, with the enhanced code's class
// forced to the reply code's as smtpd_check_reject does.
func policyReply(code int, enh, text string) Reply {
	if enh != "" && code >= 400 && code < 600 {
		enh = fmt.Sprint(code/100) + enh[1:]
	}
	return Reply{code, enh, text}
}

// tempfail applies a tempfail action: "defer" refuses now, and
// "defer_if_permit" remembers the reply for the end of the check, where
// it applies only if nothing rejected (Postfix's DEFER_IF_PERMIT2).
func tempfail(action string, st *checkState, r Reply) decision {
	if action == deferAll {
		return decision{verdict: deny, reply: r}
	}
	if st.deferIfPermit == nil {
		st.deferIfPermit = &r
	}
	return decision{}
}

// mailhostStatus looks a mail domain up as Postfix's
// reject_unknown_mailhost: MX first, then A/AAAA; a single "." MX is a
// null MX. An answer from either query is enough; a temporary failure of
// one with no answer from the other is a temporary failure.
func (p *policy) mailhostStatus(ctx context.Context, domain string) dnsStatus {
	mx, err := p.resolver.LookupMX(ctx, domain)
	if err == nil && len(mx) > 0 {
		if len(mx) == 1 && (mx[0].Host == "." || mx[0].Host == "") {
			return dnsNullMX // RFC 7505 3
		}
		return dnsOK
	}
	retry := dnsx.IsTemporary(err)
	if _, aerr := p.resolver.LookupIPAddr(ctx, domain); aerr == nil {
		return dnsOK
	} else if dnsx.IsTemporary(aerr) {
		retry = true
	}
	if retry {
		return dnsRetry
	}
	return dnsNotFound
}

// hostnameStatus is reject_unknown_hostname's lookup: an address or an
// MX record (a null MX is allowed for an MTA's own name).
func (p *policy) hostnameStatus(ctx context.Context, name string) dnsStatus {
	_, err := p.resolver.LookupIPAddr(ctx, name)
	if err == nil {
		return dnsOK
	}
	retry := dnsx.IsTemporary(err)
	mx, merr := p.resolver.LookupMX(ctx, name)
	switch {
	case merr == nil && len(mx) > 0:
		return dnsOK
	case dnsx.IsTemporary(merr):
		retry = true
	}
	if retry {
		return dnsRetry
	}
	return dnsNotFound
}

// unknownAddress is reject_unknown_sender_domain (sg = stageSender) and
// reject_unknown_recipient_domain (stageRecipient). Our own final
// domains (mydestination, virtual alias and mailbox domains), address
// literals, unqualified addresses and the null sender are not looked up.
func (p *policy) unknownAddress(ctx context.Context, st *checkState, pth *Path, sg stage) (decision, error) {
	if pth == nil || pth.Null || pth.Domain == "" || strings.HasPrefix(pth.Domain, "[") {
		return decision{}, nil
	}
	dom := pth.DomainKey()
	if !asciiOnly(dom) {
		// Without an IDNA conversion the name cannot be asked for;
		// skip rather than refuse a valid SMTPUTF8 domain.
		return decision{}, nil
	}
	class, err := p.addrs.Classify(ctx, dom)
	if err != nil {
		return decision{}, fmt.Errorf("classify %s: %w", dom, err)
	}
	if class == Local || class == VirtualAlias || class == VirtualMailbox {
		return decision{}, nil
	}
	name, what := objectName(st, sg), className(sg)
	sender := sg == stageSender
	status := p.mailhostStatus(ctx, dom)
	switch status {
	case dnsNullMX:
		code, enh := 556, "5.1.10"
		if sender {
			code, enh = 550, "5.7.27"
		}
		return decision{verdict: deny, reply: policyReply(code, enh,
			fmt.Sprintf("%s: %s rejected: Domain %s does not accept mail (nullMX)", name, what, dom))}, nil
	case dnsNotFound, dnsRetry:
		enh := "4.1.2"
		if sender {
			enh = "4.1.8"
		}
		text := fmt.Sprintf("%s: %s rejected: Domain not found", name, what)
		if status == dnsRetry {
			return tempfail(p.unknownAddressTempfail, st, policyReply(450, enh, text)), nil
		}
		return decision{verdict: deny, reply: policyReply(p.unknownAddressCode, enh, text)}, nil
	}
	return decision{}, nil
}

// unknownHelo is reject_unknown_helo_hostname; an address literal must
// be a valid address instead (Postfix's reject_invalid_hostaddr).
func (p *policy) unknownHelo(ctx context.Context, st *checkState) (decision, error) {
	helo := strings.TrimSuffix(st.helo, ".")
	if helo == "" {
		return decision{}, nil
	}
	name, what := objectName(st, stageHelo), className(stageHelo)
	if strings.HasPrefix(helo, "[") {
		if !validAddressLiteral(helo) {
			return decision{verdict: deny, reply: policyReply(501, "5.5.2", name+": "+what+" rejected: invalid ip address")}, nil
		}
		return decision{}, nil
	}
	if !asciiOnly(helo) {
		return decision{}, nil
	}
	text := name + ": " + what + " rejected: Host not found"
	switch p.hostnameStatus(ctx, helo) {
	case dnsNotFound:
		return decision{verdict: deny, reply: policyReply(p.unknownHostnameCode, "4.7.1", text)}, nil
	case dnsRetry:
		return tempfail(p.unknownHeloTempfail, st, policyReply(450, "4.7.1", text)), nil
	}
	return decision{}, nil
}

// unknownClient is reject_unknown_client_hostname: the client's name
// must be forward-confirmed (RFC 7372 3.3: 4.7.25/5.7.25).
func (p *policy) unknownClient(st *checkState) decision {
	if st.nameStatus == peerOK {
		return decision{}
	}
	code := 450
	if st.nameStatus >= peerPerm {
		code = p.unknownClientCode
	}
	return decision{verdict: deny, reply: policyReply(code, "4.7.25",
		fmt.Sprintf("Client host rejected: cannot find your hostname, [%s]", st.clientAddr))}
}

// unknownReverseClient is reject_unknown_reverse_client_hostname: the
// client's address must have a PTR name.
func (p *policy) unknownReverseClient(st *checkState) decision {
	if st.reverseStatus == peerOK {
		return decision{}
	}
	code := 450
	if st.reverseStatus == peerPerm {
		code = p.unknownClientCode
	}
	return decision{verdict: deny, reply: policyReply(code, "4.7.1",
		fmt.Sprintf("Client host rejected: cannot find your reverse hostname, [%s]", st.clientAddr))}
}

// multiRecipientBounce is reject_multi_recipient_bounce: a null sender
// with more than one recipient. At RCPT time the recipient being checked
// is not yet counted, so one accepted before it is already too many.
func (p *policy) multiRecipientBounce(st *checkState, sg stage) decision {
	if st.sender == nil || !st.sender.Null {
		return decision{}
	}
	limit := 1
	if st.atRCPT {
		limit = 0
	}
	if st.rcptCount > limit {
		return decision{verdict: deny, reply: policyReply(p.multiRecipientBounceCode, "5.5.3",
			fmt.Sprintf("%s: %s rejected: Multi-recipient bounce", objectName(st, sg), className(sg)))}
	}
	return decision{}
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// dnsSettings copies the DNS restrictions' settings from opts, with
// Postfix's defaults for zero values.
func (p *policy) dnsSettings(opts *Options) error {
	p.resolver = opts.Resolver
	if len(opts.RBLReplyMaps) > 0 {
		if opts.OpenTable == nil {
			return fmt.Errorf("rbl_reply_maps: no lookup tables available")
		}
		var ts tableList
		for _, name := range opts.RBLReplyMaps {
			t, err := opts.OpenTable(name)
			if err != nil {
				return fmt.Errorf("rbl_reply_maps %s: %w", name, err)
			}
			ts = append(ts, t)
		}
		p.rblReplyMaps = ts
	}
	p.defaultRBLReply = opts.DefaultRBLReply
	if p.defaultRBLReply == "" {
		p.defaultRBLReply = DefaultRBLReply
	}
	if _, err := expandTemplate(p.defaultRBLReply, func(string) (string, bool) { return "", true }); err != nil {
		return fmt.Errorf("default_rbl_reply: %w", err)
	}
	for _, c := range []struct {
		param string
		val   int
		def   int
		dst   *int
	}{
		{"unknown_address_reject_code", opts.UnknownAddressRejectCode, 450, &p.unknownAddressCode},
		{"unknown_hostname_reject_code", opts.UnknownHostnameRejectCode, 450, &p.unknownHostnameCode},
		{"unknown_client_reject_code", opts.UnknownClientRejectCode, 450, &p.unknownClientCode},
		{"maps_rbl_reject_code", opts.MapsRBLRejectCode, 554, &p.rblCode},
		{"multi_recipient_bounce_reject_code", opts.MultiRecipientBounceRejectCode, 550, &p.multiRecipientBounceCode},
	} {
		*c.dst = c.val
		if c.val == 0 {
			*c.dst = c.def
		}
		if *c.dst < 400 || *c.dst > 599 {
			return fmt.Errorf("%s = %d: not a 4XX or 5XX reply code", c.param, *c.dst)
		}
	}
	for _, a := range []struct {
		param string
		val   string
		dst   *string
	}{
		{"unknown_address_tempfail_action", opts.UnknownAddressTempfailAction, &p.unknownAddressTempfail},
		{"unknown_helo_hostname_tempfail_action", opts.UnknownHeloHostnameTempfailAction, &p.unknownHeloTempfail},
	} {
		switch v := strings.ToLower(strings.TrimSpace(a.val)); v {
		case "":
			*a.dst = deferIfPermit
		case deferIfPermit, deferAll:
			*a.dst = v
		default:
			return fmt.Errorf("%s = %s: want defer_if_permit or defer", a.param, a.val)
		}
	}
	return nil
}

// tableList searches its tables in order, as Postfix's maps do.
type tableList []Table

func (l tableList) Lookup(ctx context.Context, key string) ([]string, error) {
	for _, t := range l {
		v, err := t.Lookup(ctx, key)
		if err != nil || len(v) > 0 {
			return v, err
		}
	}
	return nil, nil
}
