package rewrite

import (
	"bufio"
	"bytes"
	"context"
	"io"
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

// DefaultHeaderLimit is Postfix's header_size_limit default: the most
// bytes of one logical header that are parsed; longer ones pass through
// unchanged.
const DefaultHeaderLimit = 102400

// maxHeaderBlock bounds the header block read into memory: beyond it the
// rest of the message passes through unparsed.
const maxHeaderBlock = 1 << 20

// RewriteHeaders copies a message from r to a reader, rewriting the
// addresses in its address headers with rw (given the header's canonical
// class and the address; it returns the replacement, or the address
// unchanged). Only the header block (RFC 5322 2.1: up to the first empty
// line, or the first line that is not a header field) is held in memory;
// the body is streamed. Everything but the rewritten addresses is kept
// byte for byte, line endings included.
func RewriteHeaders(ctx context.Context, r io.Reader, limit int, rw func(ctx context.Context, class, addr string) (string, error)) (io.Reader, error) {
	if limit <= 0 {
		limit = DefaultHeaderLimit
	}
	br := bufio.NewReaderSize(r, 64<<10)
	var out bytes.Buffer
	var field []byte // the logical header being collected
	flush := func() error {
		if len(field) == 0 {
			return nil
		}
		nf, err := rewriteField(ctx, field, limit, rw)
		if err != nil {
			return err
		}
		out.Write(nf)
		field = field[:0]
		return nil
	}
	for out.Len()+len(field) < maxHeaderBlock {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: not a header we parse.
			if ferr := flush(); ferr != nil {
				return nil, ferr
			}
			out.Write(line)
			break
		}
		if len(line) == 0 && err != nil {
			if err != io.EOF {
				return nil, err
			}
			break
		}
		isCont := line[0] == ' ' || line[0] == '\t'
		switch {
		case isCont && len(field) > 0:
			field = append(field, line...)
		case !isCont && isFieldStart(line):
			if ferr := flush(); ferr != nil {
				return nil, ferr
			}
			field = append(field, line...)
		default:
			// Empty line or body text: the header block ends here.
			if ferr := flush(); ferr != nil {
				return nil, ferr
			}
			out.Write(line)
			return io.MultiReader(&out, br), nil
		}
		if err != nil {
			if err != io.EOF {
				return nil, err
			}
			break
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return io.MultiReader(&out, br), nil
}

// isFieldStart tells whether line begins a header field: a name of
// printable characters other than ":" followed by ":" (RFC 5322 2.2).
func isFieldStart(line []byte) bool {
	for i, c := range line {
		if c == ':' {
			return i > 0
		}
		if c <= ' ' || c > '~' {
			return false
		}
	}
	return false
}

// rewriteField rewrites the addresses of one logical header field.
func rewriteField(ctx context.Context, field []byte, limit int, rw func(context.Context, string, string) (string, error)) ([]byte, error) {
	colon := bytes.IndexByte(field, ':')
	class := headerClass(string(field[:colon]))
	if class == "" || len(field) > limit {
		return field, nil
	}
	value := string(field[colon+1:])
	spans := addressSpans(value)
	if len(spans) == 0 {
		return field, nil
	}
	var b strings.Builder
	b.Write(field[:colon+1])
	prev := 0
	for _, sp := range spans {
		addr := value[sp[0]:sp[1]]
		na, err := rw(ctx, class, addr)
		if err != nil {
			return nil, err
		}
		b.WriteString(value[prev:sp[0]])
		if na == addr || !safeHeaderAddress(na) {
			b.WriteString(addr)
		} else {
			b.WriteString(na)
		}
		prev = sp[1]
	}
	b.WriteString(value[prev:])
	return []byte(b.String()), nil
}

// safeHeaderAddress refuses replacements that would change the header's
// structure: line breaks, angle brackets, commas or parentheses outside
// a quoted local part.
func safeHeaderAddress(a string) bool {
	if a == "" {
		return false
	}
	quoted := false
	for i := 0; i < len(a); i++ {
		switch c := a[i]; {
		case c == '\r' || c == '\n' || c == 0:
			return false
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case !quoted && (c == '<' || c == '>' || c == ',' || c == '(' || c == ')' || c == ';' || c == ':' || c == ' ' || c == '\t'):
			return false
		}
	}
	return !quoted
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
// no white space or line breaks outside a quoted local part.
func plainAddr(s string) bool {
	if s == "" {
		return false
	}
	quoted := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case c == '\\' && quoted:
			i++
		case !quoted && (c <= ' ' || c == 0x7f || c == '<' || c == '>' || c == '(' || c == ')' || c == ','):
			return false
		}
	}
	return !quoted
}
