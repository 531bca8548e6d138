package smtpd

// DNS lists (postconf(5) reject_rbl_client, reject_rhsbl_*,
// permit_dnswl_client, permit_rhswl_client; RFC 5782): the client address
// reversed, or a domain, is prefixed to the list's domain and looked up
// as an A record; any answer (or one matching the "=127.0.0.2" filter of
// the argument) lists it, and the TXT record of the same name gives the
// reason. A list that does not answer lists nobody (with a warning), as
// Postfix gives the client the benefit of the doubt. The refusal is the
// rbl_reply_maps template for the list, else default_rbl_reply, with
// Postfix's $name expansion.

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"postcote/internal/dnsx"
)

// DefaultRBLReply is Postfix's default_rbl_reply.
const DefaultRBLReply = "$rbl_code Service unavailable; $rbl_class [$rbl_what] blocked using $rbl_domain${rbl_reason?; $rbl_reason}"

// rbl classes (smtpd_check.c's SMTPD_NAME_*) that only DNS lists use.
const classReverseClient = "Unverified Client host"

// maxRBLText is Postfix's RBL_TXT_LIMIT: how much TXT text a reply quotes.
const maxRBLText = 500

// dnsList is one list argument: "zen.example" or "zen.example=127.0.0.[2..11]".
type dnsList struct {
	domain string
	filter *addrPattern // nil: any A record lists
}

func parseDNSList(arg string) (dnsList, error) {
	dom, pat, hasPat := strings.Cut(arg, "=")
	dom = strings.ToLower(strings.TrimSuffix(dom, "."))
	if dom == "" || !validDomain(dom) || strings.HasPrefix(dom, "[") {
		return dnsList{}, fmt.Errorf("bad DNS list domain %q", arg)
	}
	l := dnsList{domain: dom}
	if hasPat {
		f, err := parseAddrPattern(pat)
		if err != nil {
			return dnsList{}, fmt.Errorf("%s: %w", arg, err)
		}
		l.filter = f
	}
	return l, nil
}

// addrPattern is Postfix's ip_match syntax for list results: four dotted
// octets, each a number or a bracketed ";"-separated set of numbers and
// "a..b" ranges: "127.0.0.2", "127.0.0.[2..11]", "127.0.[1;3].[2;4..6]".
type addrPattern [4][]octetRange

type octetRange struct{ lo, hi uint8 }

func parseAddrPattern(s string) (*addrPattern, error) {
	parts := splitOctets(s)
	if len(parts) != 4 {
		return nil, fmt.Errorf("bad address pattern %q: want four octets", s)
	}
	var p addrPattern
	for i, part := range parts {
		elems := []string{part}
		if strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]") && len(part) > 2 {
			elems = strings.Split(part[1:len(part)-1], ";")
		}
		for _, e := range elems {
			lo, hi, isRange := strings.Cut(e, "..")
			if !isRange {
				hi = lo
			}
			a, err1 := parseOctet(lo)
			b, err2 := parseOctet(hi)
			if err1 != nil || err2 != nil || a > b {
				return nil, fmt.Errorf("bad address pattern %q", s)
			}
			p[i] = append(p[i], octetRange{a, b})
		}
	}
	return &p, nil
}

// splitOctets splits at the dots outside brackets.
func splitOctets(s string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			depth--
		case '.':
			if depth == 0 {
				parts = append(parts, s[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, s[start:])
}

func parseOctet(s string) (uint8, error) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("bad octet %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 8)
	return uint8(n), err
}

func (p *addrPattern) match(a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	b := a.As4()
	for i, rs := range p {
		ok := false
		for _, r := range rs {
			ok = ok || (b[i] >= r.lo && b[i] <= r.hi)
		}
		if !ok {
			return false
		}
	}
	return true
}

// dnsListAnswer is one list query's outcome, cached for the session.
type dnsListAnswer struct {
	soft  bool         // the list did not answer
	addrs []netip.Addr // A records; none: not listed
	txt   string
}

// queryList looks a name up in a DNS list (Postfix's rbl_pagein).
func (p *policy) queryList(ctx context.Context, st *checkState, query string) dnsListAnswer {
	if ans, ok := st.cache.get(query); ok {
		return ans
	}
	var ans dnsListAnswer
	ips, err := p.resolver.LookupIPAddr(ctx, query)
	switch {
	case dnsx.IsTemporary(err):
		ans.soft = true
		st.warnf("%s: RBL lookup error: Host or domain name not found. Name service error for name=%s type=A: Host not found, try again", query, query)
	case err == nil:
		for _, ip := range ips {
			if a, ok := netip.AddrFromSlice(ip.IP); ok && a.Unmap().Is4() {
				ans.addrs = append(ans.addrs, a.Unmap())
			}
		}
		if len(ans.addrs) > 0 {
			if txt, err := p.resolver.LookupTXT(ctx, query); err == nil {
				ans.txt = joinTXT(txt)
			}
		}
	}
	st.cache.put(query, ans)
	return ans
}

// joinTXT concatenates TXT records with " / ", up to maxRBLText bytes.
func joinTXT(txt []string) string {
	var b strings.Builder
	for i, t := range txt {
		if i > 0 {
			if b.Len()+3 > maxRBLText {
				break
			}
			b.WriteString(" / ")
		}
		b.WriteString(t[:min(len(t), maxRBLText-b.Len())])
		if b.Len() >= maxRBLText {
			break
		}
	}
	return b.String()
}

// listed says whether an answer lists the name under the list's filter.
func (l dnsList) listed(ans dnsListAnswer) bool {
	if l.filter == nil {
		return len(ans.addrs) > 0
	}
	for _, a := range ans.addrs {
		if l.filter.match(a) {
			return true
		}
	}
	return false
}

// addrQuery and domainQuery are the names asked for an address and for a
// domain; domainQuery returns "" for what must not be asked (Postfix's
// find_dnsxl_domain: no address literals, invalid names or names whose
// last label is numeric).
func (l dnsList) addrQuery(a netip.Addr) string { return dnsx.Reverse(a) + "." + l.domain }

func (l dnsList) domainQuery(what string) string {
	dom := what
	if i := strings.LastIndexByte(what, '@'); i >= 0 {
		dom = what[i+1:]
	}
	dom = strings.TrimSuffix(dom, ".")
	if dom == "" || strings.HasPrefix(dom, "[") || !validDomain(dom) || !asciiOnly(dom) {
		return ""
	}
	last := dom[strings.LastIndexByte(dom, '.')+1:]
	if strings.Trim(last, "0123456789") == "" {
		return ""
	}
	return strings.ToLower(dom) + "." + l.domain
}

// rejectList refuses when query is listed: the reply is the template for
// the list, expanded.
func (p *policy) rejectList(ctx context.Context, st *checkState, l dnsList, query, what, class string) (decision, error) {
	if query == "" {
		return decision{}, nil
	}
	ans := p.queryList(ctx, st, query)
	if ans.soft || !l.listed(ans) {
		return decision{}, nil
	}
	r, err := p.rblReply(ctx, st, l, ans, what, class)
	if err != nil {
		return decision{}, err
	}
	return decision{verdict: deny, reply: r}, nil
}

// permitList is permit_dnswl_client/permit_rhswl_client: a listed client
// is permitted, except that it may not relay (at RCPT, an unauthorized
// destination makes it DUNNO). A list that does not answer turns a later
// 5XX refusal into a 450 (Postfix's DEFER_IF_REJECT).
func (p *policy) permitList(ctx context.Context, st *checkState, l dnsList, query, what, class string) (decision, error) {
	if query == "" {
		return decision{}, nil
	}
	if st.atRCPT && st.rcpt != nil {
		ok, err := p.authDestination(ctx, *st.rcpt)
		if err != nil || !ok {
			return decision{}, err
		}
	}
	ans := p.queryList(ctx, st, query)
	switch {
	case ans.soft:
		if st.deferIfReject == nil {
			r := policyReply(450, "4.7.1", fmt.Sprintf("<%s>: %s rejected: Service unavailable", what, class))
			st.deferIfReject = &r
		}
	case l.listed(ans):
		return decision{verdict: permit}, nil
	}
	return decision{}, nil
}

// rblReply expands the list's reply template (rbl_reply_maps, else
// default_rbl_reply). A template that does not start with a 4XX or 5XX
// code gives Postfix's "450 4.7.1 Service unavailable" and a warning.
func (p *policy) rblReply(ctx context.Context, st *checkState, l dnsList, ans dnsListAnswer, what, class string) (Reply, error) {
	tmpl := p.defaultRBLReply
	if p.rblReplyMaps != nil {
		v, err := p.rblReplyMaps.Lookup(ctx, l.domain)
		if err != nil {
			return Reply{}, fmt.Errorf("rbl_reply_maps %s: %w", l.domain, err)
		}
		if len(v) > 0 {
			tmpl = v[0]
		}
	}
	vars := st.expandVars()
	vars["rbl_code"] = strconv.Itoa(p.rblCode)
	vars["rbl_domain"] = l.domain
	vars["rbl_reason"] = ans.txt
	vars["rbl_txt"] = ans.txt
	vars["rbl_what"] = what
	vars["rbl_class"] = class
	text, err := expandTemplate(tmpl, func(name string) (string, bool) {
		v, ok := vars[name]
		return expandFilter(v), ok
	})
	if err != nil {
		st.warnf("bad rbl reply template for domain %s: %s", l.domain, tmpl)
		text, _ = expandTemplate(DefaultRBLReply, func(name string) (string, bool) {
			v, ok := vars[name]
			return expandFilter(v), ok
		})
	}
	if len(text) < 4 || (text[0] != '4' && text[0] != '5') || !isDigit(text[1]) || !isDigit(text[2]) || text[3] != ' ' {
		st.warnf("rbl response code configuration error: %s", text)
		return policyReply(450, "4.7.1", "Service unavailable"), nil
	}
	code, _ := strconv.Atoi(text[:3])
	rest, enh := text[4:], "4.7.1"
	if d, after, ok := strings.Cut(rest, " "); ok && validEnhanced(d) {
		enh, rest = d, after
	} else if validEnhanced(rest) {
		enh, rest = rest, ""
	}
	if rest == "" {
		rest = "Service unavailable"
	}
	if len(rest) > 500 {
		rest = rest[:500]
	}
	return policyReply(code, enh, rest), nil
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validEnhanced accepts an RFC 3463 status code "c.sss.ddd" with class
// 2, 4 or 5.
func validEnhanced(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || len(parts[0]) != 1 || !strings.Contains("245", parts[0]) {
		return false
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return false
		}
	}
	return true
}

// expandFilter is smtpd_expand_filter's default: characters outside
// printable ASCII become "_", so DNS text cannot break a reply line.
func expandFilter(v string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || (r >= 0x20 && r < 0x7f) {
			return r
		}
		return '_'
	}, v)
}

// expandVars are the session attributes a reply template may name
// (postconf(5) default_rbl_reply).
func (st *checkState) expandVars() map[string]string {
	v := map[string]string{
		"client_address":      st.clientAddr.String(),
		"client_name":         st.clientName,
		"reverse_client_name": st.reverseName,
		"helo_name":           st.helo,
	}
	for _, a := range []struct {
		prefix string
		p      *Path
	}{{"sender", st.sender}, {"recipient", st.rcpt}} {
		if a.p == nil {
			continue
		}
		v[a.prefix] = a.p.Raw
		if !a.p.Null {
			v[a.prefix+"_name"] = a.p.Local
			v[a.prefix+"_domain"] = a.p.Domain
		}
	}
	return v
}

// expandTemplate is Postfix's mac_expand for reply templates: $name,
// ${name}, $(name), ${name?text} (text when name is set and not empty),
// ${name:text} (text otherwise), and $$ for a dollar. Names that lookup
// does not know expand to nothing; text is expanded in turn.
func expandTemplate(tmpl string, lookup func(string) (string, bool)) (string, error) {
	var b strings.Builder
	if err := expandInto(&b, tmpl, lookup, 0); err != nil {
		return "", err
	}
	return b.String(), nil
}

const maxExpandDepth = 20

func expandInto(b *strings.Builder, s string, lookup func(string) (string, bool), depth int) error {
	if depth > maxExpandDepth {
		return fmt.Errorf("template nested too deeply")
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i >= len(s) {
			return fmt.Errorf("template ends in $")
		}
		switch c := s[i]; {
		case c == '$':
			b.WriteByte('$')
		case c == '{' || c == '(':
			end := matchingClose(s, i)
			if end < 0 {
				return fmt.Errorf("unbalanced %c in template", c)
			}
			inner := s[i+1 : end]
			j := 0
			for j < len(inner) && isNameByte(inner[j]) {
				j++
			}
			name, rest := inner[:j], inner[j:]
			if name == "" {
				return fmt.Errorf("empty name in template")
			}
			v, ok := lookup(name)
			switch {
			case rest == "":
				b.WriteString(v)
			case rest[0] == '?':
				if ok && v != "" {
					if err := expandInto(b, rest[1:], lookup, depth+1); err != nil {
						return err
					}
				}
			case rest[0] == ':':
				if !ok || v == "" {
					if err := expandInto(b, rest[1:], lookup, depth+1); err != nil {
						return err
					}
				}
			default:
				return fmt.Errorf("bad character after ${%s", name)
			}
			i = end
		case isNameByte(c):
			j := i
			for j < len(s) && isNameByte(s[j]) {
				j++
			}
			v, _ := lookup(s[i:j])
			b.WriteString(v)
			i = j - 1
		default:
			return fmt.Errorf("bad character after $")
		}
	}
	return nil
}

// matchingClose finds the bracket closing the one at s[open].
func matchingClose(s string, open int) int {
	o := s[open]
	c := byte('}')
	if o == '(' {
		c = ')'
	}
	level := 0
	for i := open; i < len(s); i++ {
		switch s[i] {
		case o:
			level++
		case c:
			level--
			if level == 0 {
				return i
			}
		}
	}
	return -1
}

func isNameByte(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// dnsCache keeps a session's DNS list answers (Postfix caches them per
// process); nil caches nothing.
type dnsCache struct{ m map[string]dnsListAnswer }

func (c *dnsCache) get(q string) (dnsListAnswer, bool) {
	if c == nil {
		return dnsListAnswer{}, false
	}
	a, ok := c.m[q]
	return a, ok
}

func (c *dnsCache) put(q string, a dnsListAnswer) {
	if c == nil {
		return
	}
	if c.m == nil {
		c.m = map[string]dnsListAnswer{}
	}
	c.m[q] = a
}
