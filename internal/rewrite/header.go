package rewrite

import (
	"strings"
)

// headerClass says which canonical class an address header belongs to,
// as Postfix's header_opts table does: originator fields (RFC 5322
// 3.6.2, 3.6.6) are header_sender, destination fields (3.6.3, 3.6.6)
// header_recipient. Other headers are never touched.
func headerClass(name string) string {
	switch strings.ToLower(name) {
	case "from", "sender", "reply-to", "errors-to", "return-receipt-to",
		"resent-from", "resent-sender", "resent-reply-to", "disposition-notification-to":
		return HeaderSender
	case "to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc", "apparently-to":
		return HeaderRecipient
	}
	return ""
}

// safeHeaderAddress refuses replacements that would change the header's
// structure: line breaks or NULs anywhere, angle brackets, commas,
// parentheses, semicolons, colons or white space outside a quoted local
// part.
func safeHeaderAddress(a string) bool {
	return !strings.ContainsAny(a, "\r\n\x00") && unquotedFree(a, "<>,();: \t")
}

// addressSpans finds the addr-specs of an address-list header value
// (RFC 5322 3.4): the text inside "<…>" (after any obsolete source route
// "@a,@b:"), or a bare addr-spec between commas. Comments, quoted
// strings, group names and display names are skipped; an element that is
// not a plain addr-spec (obsolete forms with spaces, garbage) is left
// alone. Spans are byte offsets [start, end) in value, in order.
func addressSpans(value string) [][2]int {
	var spans [][2]int
	elemStart := 0
	var angle = -1    // offset after '<' when inside brackets
	sawAngle := false // the element had a <…> part
	depth := 0        // comment nesting
	quoted := false
	endElem := func(end int) {
		if !sawAngle {
			if s, e, ok := bareSpan(value, elemStart, end); ok {
				spans = append(spans, [2]int{s, e})
			}
		}
		elemStart, sawAngle = end+1, false
	}
	for i := 0; i < len(value); i++ {
		c := value[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
		case depth > 0:
			if c == '\\' {
				i++
			} else if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
		case c == '"':
			quoted = true
		case c == '(':
			depth++
		case angle >= 0:
			if c == '>' {
				s := angle
				// Obsolete route: "<@a,@b:user@c>".
				if k := strings.LastIndexByte(value[s:i], ':'); k >= 0 && strings.HasPrefix(value[s:i], "@") {
					s += k + 1
				}
				if s < i && plainAddr(value[s:i]) {
					spans = append(spans, [2]int{s, i})
				}
				angle = -1
			}
		case c == '<':
			angle, sawAngle = i+1, true
		case c == ',' || c == ';':
			endElem(i)
		case c == ':':
			// A group name ends here (RFC 5322 3.4 group).
			elemStart, sawAngle = i+1, false
		}
	}
	if angle < 0 && !quoted && depth == 0 {
		endElem(len(value))
	}
	return spans
}

// bareSpan returns the span of a bare addr-spec in value[start:end]: the
// one run of text that is not white space or a comment.
func bareSpan(value string, start, end int) (int, int, bool) {
	s, e := -1, -1
	depth := 0
	quoted := false
	for i := start; i < end; i++ {
		c := value[i]
		switch {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '"' {
				quoted = false
			}
			continue
		case depth > 0:
			if c == '\\' {
				i++
			} else if c == '(' {
				depth++
			} else if c == ')' {
				depth--
			}
			continue
		case c == '(':
			depth++
			continue
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			continue
		case c == '"':
			quoted = true
		}
		if e >= 0 && e != i {
			return 0, 0, false // two runs: a phrase, not an addr-spec
		}
		if s < 0 {
			s = i
		}
		e = i + 1
		if quoted {
			// Extend over the quoted string.
			for i++; i < end; i++ {
				if value[i] == '\\' {
					i++
				} else if value[i] == '"' {
					quoted = false
					break
				}
			}
			e = min(i+1, end)
		}
	}
	if s < 0 || e > end || !plainAddr(value[s:e]) {
		return 0, 0, false
	}
	return s, e, true
}

// plainAddr tells whether s looks like an addr-spec we may rewrite:
// no white space, controls, brackets, parentheses or commas outside a
// quoted local part.
func plainAddr(s string) bool {
	return unquotedFree(s, "<>(),") && !hasUnquotedControl(s)
}

// unquotedFree tells whether the non-empty s has none of the bytes of
// set outside its quoted strings, and no quoted string left open.
func unquotedFree(s, set string) bool {
	ok := s != ""
	quoted := scanUnquoted(s, func(c byte) {
		if strings.IndexByte(set, c) >= 0 {
			ok = false
		}
	})
	return ok && !quoted
}

// hasUnquotedControl tells whether s has a control character or white
// space outside its quoted strings.
func hasUnquotedControl(s string) bool {
	found := false
	scanUnquoted(s, func(c byte) {
		if c <= ' ' || c == 0x7f {
			found = true
		}
	})
	return found
}

// scanUnquoted calls f with each byte of s outside quoted strings
// (backslash escapes inside them honoured) and returns whether a quoted
// string was left open.
func scanUnquoted(s string, f func(c byte)) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case !quoted:
			f(c)
		}
	}
	return quoted
}

// tokenSpecials are the RFC 5322 3.2.3 specials, each one token.
const tokenSpecials = "()<>@,;:\\\".[]"

// cutTokens returns value up to the start of its limit+1-th token, as
// Postfix's tok822_parse_limit keeps only limit tokens of an address
// header: atoms, quoted strings, comments and domain literals count one
// each, as does each special; white space does not. ok is false when
// value has no more than limit tokens.
func cutTokens(value string, limit int) (string, bool) {
	n := 0
	for i := 0; i < len(value); {
		c := value[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			i++
			continue
		}
		n++
		if n > limit {
			return value[:i], true
		}
		switch c {
		case '(':
			i = skipComment(value, i)
		case '"':
			i = skipDelimited(value, i, '"')
		case '[':
			i = skipDelimited(value, i, ']')
		default:
			if strings.IndexByte(tokenSpecials, c) >= 0 || c < ' ' || c == 0x7f {
				i++ // a special, or a control character: one token
				continue
			}
			for i < len(value) && value[i] > ' ' && value[i] != 0x7f && strings.IndexByte(tokenSpecials, value[i]) < 0 {
				i++
			}
		}
	}
	return value, false
}

// skipComment returns the offset after the (nested) comment starting at
// value[i] == '(' (RFC 5322 3.2.2), or len(value) when it is unclosed.
func skipComment(value string, i int) int {
	depth := 0
	for ; i < len(value); i++ {
		switch value[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(value)
}

// skipDelimited returns the offset after the quoted string or domain
// literal starting at value[i] and ending with end, backslash escapes
// honoured; len(value) when it is unclosed.
func skipDelimited(value string, i int, end byte) int {
	for i++; i < len(value); i++ {
		switch value[i] {
		case '\\':
			i++
		case end:
			return i + 1
		}
	}
	return len(value)
}
