package imapd

import (
	"strings"
)

// envelope returns the ENVELOPE of the message p (RFC 3501 7.4.2): date,
// subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id.
// Strings are the header values unfolded, encoded-words left as they are;
// Sender and Reply-To default to From.
func envelope(data []byte, p *part) []byte {
	var b imapBuf
	b.WriteByte('(')
	get := func(name string) (string, bool) { return p.headerValue(data, name) }
	v, ok := get("Date")
	b.nstr(v, ok && v != "")
	b.WriteByte(' ')
	v, ok = get("Subject")
	b.nstr(v, ok && v != "")
	from, _ := get("From")
	for _, name := range []string{"From", "Sender", "Reply-To", "To", "Cc", "Bcc"} {
		b.WriteByte(' ')
		v, ok := get(name)
		if (name == "Sender" || name == "Reply-To") && (!ok || strings.TrimSpace(v) == "") {
			v = from
		}
		writeAddressList(&b, parseAddressList(v))
	}
	b.WriteByte(' ')
	v, ok = get("In-Reply-To")
	b.nstr(v, ok && v != "")
	b.WriteByte(' ')
	v, ok = get("Message-ID")
	b.nstr(v, ok && v != "")
	b.WriteByte(')')
	return b.Bytes()
}

// address is one element of an envelope address list. A group start has
// only mailbox (the group name) set and group true; a group end has all
// fields empty and group true (RFC 3501 7.4.2).
type address struct {
	name, adl, mailbox, host string
	group                    bool
}

func writeAddressList(b *imapBuf, addrs []address) {
	if len(addrs) == 0 {
		b.WriteString("NIL")
		return
	}
	b.WriteByte('(')
	for _, a := range addrs {
		b.WriteByte('(')
		if a.group {
			b.WriteString("NIL NIL ")
			b.nstr(a.mailbox, a.mailbox != "")
			b.WriteString(" NIL)")
			continue
		}
		b.nstr(a.name, a.name != "")
		b.WriteByte(' ')
		b.nstr(a.adl, a.adl != "")
		b.WriteByte(' ')
		b.str(a.mailbox)
		b.WriteByte(' ')
		b.str(a.host)
		b.WriteByte(')')
	}
	b.WriteByte(')')
}

// addrToken is a lexical token of an address header.
type addrToken struct {
	kind    byte // 'a' atom, 'q' quoted string, 'd' domain literal, or the special itself
	text    string
	space   bool   // white space or a comment came before it
	comment string // a comment that followed it
}

// tokenizeAddresses splits an address header into RFC 5322 3.2 tokens,
// dropping comments and white space.
func tokenizeAddresses(s string) []addrToken {
	var toks []addrToken
	space := false
	add := func(t addrToken) {
		t.space = space
		space = false
		toks = append(toks, t)
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			space = true
			i++
		case c == '(':
			space = true
			depth := 0
			start := i
			for ; i < len(s); i++ {
				if s[i] == '\\' {
					i++
					continue
				}
				if s[i] == '(' {
					depth++
				} else if s[i] == ')' {
					depth--
					if depth == 0 {
						i++
						break
					}
				}
			}
			if len(toks) > 0 && depth == 0 {
				toks[len(toks)-1].comment = strings.TrimSpace(s[start+1 : i-1])
			}
		case c == '"':
			var sb strings.Builder
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				sb.WriteByte(s[i])
			}
			i++
			add(addrToken{kind: 'q', text: sb.String()})
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				j = len(s) - i - 1
			}
			add(addrToken{kind: 'd', text: s[i : i+j+1]})
			i += j + 1
		case strings.IndexByte("<>@,;:.", c) >= 0:
			add(addrToken{kind: c, text: string(c)})
			i++
		case c == ')' || c == ']':
			// A stray closing bracket: skipped.
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n()\"[]<>@,;:.", s[j]) < 0 {
				j++
			}
			add(addrToken{kind: 'a', text: s[i:j]})
			i = j
		}
	}
	return toks
}

// parseAddressList parses an address-list (RFC 5322 3.4) leniently, the
// way Dovecot's message-address parser does: a missing local part or
// domain becomes MISSING_MAILBOX / MISSING_DOMAIN so that no address
// turns into a group marker by accident.
func parseAddressList(s string) []address {
	toks := tokenizeAddresses(s)
	var out []address
	inGroup := false
	for i := 0; i < len(toks); {
		// Collect a phrase or local part up to a structural special.
		j := i
		for j < len(toks) && strings.IndexByte("<@,;:>", toks[j].kind) < 0 {
			j++
		}
		words := toks[i:j]
		var next byte
		if j < len(toks) {
			next = toks[j].kind
		}
		switch next {
		case ':':
			if inGroup {
				i = j + 1
				continue
			}
			out = append(out, address{mailbox: joinPhrase(words), group: true})
			inGroup = true
			i = j + 1
		case ';':
			if len(words) > 0 {
				out = append(out, address{mailbox: orMissing(joinLocal(words), "MISSING_MAILBOX"), host: "MISSING_DOMAIN"})
			}
			if inGroup {
				out = append(out, address{group: true})
				inGroup = false
			}
			i = j + 1
		case '<':
			a, k := parseAngleAddr(toks, j+1)
			a.name = joinPhrase(words)
			out = append(out, a)
			i = k
		case '@':
			k := j + 1
			for k < len(toks) && strings.IndexByte(",;<>", toks[k].kind) < 0 {
				k++
			}
			host := joinLocal(toks[j+1 : k])
			if host == "" {
				host = "MISSING_DOMAIN"
			}
			local := joinLocal(words)
			if local == "" {
				local = "MISSING_MAILBOX"
			}
			// RFC 822's "addr (Full Name)": the comment names the
			// address, as in Dovecot.
			name := ""
			if k > j+1 {
				name = toks[k-1].comment
			}
			out = append(out, address{name: name, mailbox: local, host: host})
			i = k
		default: // ',' '>' or end
			if len(words) > 0 {
				out = append(out, address{mailbox: orMissing(joinLocal(words), "MISSING_MAILBOX"), host: "MISSING_DOMAIN"})
			}
			i = j + 1
		}
	}
	if inGroup {
		out = append(out, address{group: true})
	}
	return out
}

// parseAngleAddr parses "[route:] local@domain >" from toks[i:]; it
// returns the address and the index after ">".
func parseAngleAddr(toks []addrToken, i int) (address, int) {
	var a address
	end := i
	for end < len(toks) && toks[end].kind != '>' {
		end++
	}
	inner := toks[i:end]
	// Obsolete source route: "@a,@b:" (RFC 5322 4.4).
	if len(inner) > 0 && inner[0].kind == '@' {
		for k := range inner {
			if inner[k].kind == ':' {
				a.adl = joinLocal(inner[:k])
				inner = inner[k+1:]
				break
			}
		}
	}
	at := -1
	for k := len(inner) - 1; k >= 0; k-- {
		if inner[k].kind == '@' {
			at = k
			break
		}
	}
	if at < 0 {
		a.mailbox = joinLocal(inner)
		a.host = "MISSING_DOMAIN"
	} else {
		a.mailbox = joinLocal(inner[:at])
		a.host = joinLocal(inner[at+1:])
	}
	if a.mailbox == "" {
		a.mailbox = "MISSING_MAILBOX"
	}
	if a.host == "" {
		a.host = "MISSING_DOMAIN"
	}
	return a, end + 1
}

// joinPhrase joins display-name words, with one space where the header
// had white space between them.
func joinPhrase(toks []addrToken) string {
	var sb strings.Builder
	for i, t := range toks {
		if i > 0 && t.space {
			sb.WriteByte(' ')
		}
		sb.WriteString(t.text)
	}
	return sb.String()
}

// joinLocal joins local-part or domain tokens without spaces; a quoted
// local part loses its quotes, as Dovecot gives it.
func joinLocal(toks []addrToken) string {
	var sb strings.Builder
	for _, t := range toks {
		sb.WriteString(t.text)
	}
	return sb.String()
}

// orMissing stands in Dovecot's placeholder for an empty address part.
func orMissing(s, placeholder string) string {
	if s == "" {
		return placeholder
	}
	return s
}
