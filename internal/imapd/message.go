package imapd

import (
	"bytes"
	"strings"
)

// Limits of the MIME parser, as Dovecot's message parser has them: a
// message nested deeper or split into more parts is treated as one
// opaque leaf beyond the limit instead of being refused.
const (
	maxMIMEDepth = 50
	maxMIMEParts = 10000
)

// headerField is one header field; raw spans its bytes in the message,
// folding and line end included.
type headerField struct {
	name       string
	start, end int
}

// part is one MIME entity (RFC 2045) of a message as offsets into the
// message's bytes: the header is data[hdrStart:bodyStart] (the blank line
// included), the body data[bodyStart:end].
type part struct {
	hdrStart, bodyStart, end int
	fields                   []headerField

	mtype, subtype string // as written; text/plain when absent
	params         []param
	children       []*part // multipart/*
	msg            *part   // message/rfc822: the encapsulated message
}

type param struct{ name, value string }

// messageParser parses one message; it counts parts against the limits.
type messageParser struct {
	data  []byte
	parts int
}

// parseMessage parses data (an RFC 5322 message) into its part tree.
func parseMessage(data []byte) *part {
	mp := &messageParser{data: data}
	return mp.entity(0, len(data), 0, false)
}

// entity parses the entity in data[start:end]. digest says the default
// content type is message/rfc822 (RFC 2046 5.1.5).
func (mp *messageParser) entity(start, end, depth int, digest bool) *part {
	mp.parts++
	p := &part{hdrStart: start}
	p.fields, p.bodyStart = parseHeader(mp.data, start, end)
	p.end = end
	ct, hasCT := p.headerValue(mp.data, "Content-Type")
	p.mtype, p.subtype, p.params = "text", "plain", nil
	if hasCT {
		if t, st, params, ok := parseContentType(ct); ok {
			p.mtype, p.subtype, p.params = t, st, params
		} else {
			p.params = []param{{"charset", "us-ascii"}}
		}
	} else if digest {
		p.mtype, p.subtype = "message", "rfc822"
	} else {
		p.params = []param{{"charset", "us-ascii"}}
	}
	if p.isText() && p.param("charset") == "" {
		// Dovecot shows the RFC 2045 5.2 default for text parts.
		p.params = append(p.params, param{"charset", "us-ascii"})
	}
	if depth >= maxMIMEDepth || mp.parts >= maxMIMEParts {
		if p.isMultipart() || p.isMessage() {
			p.mtype, p.subtype, p.params = "application", "octet-stream", nil
		}
		return p
	}
	switch {
	case p.isMultipart():
		boundary := p.param("boundary")
		if boundary != "" {
			for _, r := range splitMultipart(mp.data, p.bodyStart, end, boundary) {
				if mp.parts >= maxMIMEParts {
					break
				}
				c := mp.entity(r[0], r[1], depth+1, strings.EqualFold(p.subtype, "digest"))
				if c.msg != nil && c.msg.isMultipart() {
					// Dovecot leaves the line end before the next
					// boundary in an encapsulated multipart message
					// (its epilogue), so sizes and line counts agree.
					c.end, c.msg.end = r[2], r[2]
				}
				p.children = append(p.children, c)
			}
		}
		if len(p.children) == 0 {
			// RFC 3501 9 needs at least one body in a multipart:
			// an empty text/plain part stands in, as in Dovecot.
			p.children = []*part{{hdrStart: end, bodyStart: end, end: end, mtype: "text", subtype: "plain",
				params: []param{{"charset", "us-ascii"}}}}
		}
	case p.isMessage():
		p.msg = mp.entity(p.bodyStart, end, depth+1, false)
	}
	return p
}

func (p *part) isMultipart() bool { return strings.EqualFold(p.mtype, "multipart") }

// isMessage reports message/rfc822 (and message/global, RFC 6532 3.7),
// whose body is a message in its own right.
func (p *part) isMessage() bool {
	return strings.EqualFold(p.mtype, "message") && (strings.EqualFold(p.subtype, "rfc822") || strings.EqualFold(p.subtype, "global"))
}

func (p *part) isText() bool { return strings.EqualFold(p.mtype, "text") }

func (p *part) param(name string) string {
	for _, pr := range p.params {
		if strings.EqualFold(pr.name, name) {
			return pr.value
		}
	}
	return ""
}

// parseHeader reads header fields from data[start:end] up to the blank
// line. It returns the fields and where the body starts. A header
// without a blank line makes the whole entity header.
func parseHeader(data []byte, start, end int) ([]headerField, int) {
	var fields []headerField
	pos := start
	for pos < end {
		nl := bytes.IndexByte(data[pos:end], '\n')
		lineEnd := end
		next := end
		if nl >= 0 {
			lineEnd = pos + nl
			next = lineEnd + 1
		}
		line := data[pos:lineEnd]
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			return fields, next
		}
		if (line[0] == ' ' || line[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1].end = next
		} else if colon := bytes.IndexByte(line, ':'); colon > 0 {
			name := strings.TrimRight(string(line[:colon]), " \t")
			fields = append(fields, headerField{name: name, start: pos, end: next})
		}
		pos = next
	}
	return fields, end
}

// fieldValue returns the field's value unfolded (RFC 5322 2.2.3) and
// trimmed.
func fieldValue(data []byte, f headerField) string {
	raw := data[f.start:f.end]
	colon := bytes.IndexByte(raw, ':')
	v := raw[colon+1:]
	var sb strings.Builder
	sb.Grow(len(v))
	for _, b := range v {
		if b != '\r' && b != '\n' {
			sb.WriteByte(b)
		}
	}
	return strings.Trim(sb.String(), " \t")
}

// headerValue returns the unfolded value of part p's first field name.
func (p *part) headerValue(data []byte, name string) (string, bool) {
	for _, f := range p.fields {
		if strings.EqualFold(f.name, name) {
			return fieldValue(data, f), true
		}
	}
	return "", false
}

// splitMultipart finds the body parts of a multipart body in
// data[start:end] (RFC 2046 5.1.1): the CRLF before a delimiter line
// belongs to the delimiter; the preamble and epilogue are dropped; a
// missing close delimiter ends the last part at end.
// Each part is [start, end, end with the line end before the delimiter].
func splitMultipart(data []byte, start, end int, boundary string) [][3]int {
	delim := []byte("--" + boundary)
	var parts [][3]int
	inPart := false
	partStart := 0
	pos := start
	for pos < end {
		nl := bytes.IndexByte(data[pos:end], '\n')
		lineEnd, next := end, end
		if nl >= 0 {
			lineEnd, next = pos+nl, pos+nl+1
		}
		line := data[pos:lineEnd]
		if bytes.HasPrefix(line, delim) {
			rest := line[len(delim):]
			closing := bytes.HasPrefix(rest, []byte("--"))
			if closing {
				rest = rest[2:]
			}
			if len(bytes.Trim(rest, " \t\r")) == 0 {
				if inPart {
					pe := pos
					if pe > partStart && data[pe-1] == '\n' {
						pe--
						if pe > partStart && data[pe-1] == '\r' {
							pe--
						}
					}
					parts = append(parts, [3]int{partStart, pe, max(pos, partStart)})
				}
				if closing {
					return parts
				}
				inPart = true
				partStart = next
			}
		}
		pos = next
	}
	if inPart {
		parts = append(parts, [3]int{partStart, end, end})
	}
	return parts
}

// parseContentType parses "type/subtype *(; param)" (RFC 2045 5.1)
// leniently; ok is false when there is no usable type.
func parseContentType(v string) (mtype, subtype string, params []param, ok bool) {
	head, rest, _ := strings.Cut(v, ";")
	head = strings.TrimSpace(stripComments(head))
	mtype, subtype, found := strings.Cut(head, "/")
	mtype, subtype = strings.TrimSpace(mtype), strings.TrimSpace(subtype)
	if !found || !isToken(mtype) || !isToken(subtype) {
		return "", "", nil, false
	}
	return mtype, subtype, parseParams(rest), true
}

// parseDisposition parses Content-Disposition (RFC 2183).
func parseDisposition(v string) (string, []param) {
	head, rest, _ := strings.Cut(v, ";")
	head = strings.TrimSpace(stripComments(head))
	if !isToken(head) {
		return "", nil
	}
	return head, parseParams(rest)
}

// parseParams reads "name=value; ..." where value is a token or a quoted
// string, keeping order and spelling; malformed pieces are skipped.
func parseParams(s string) []param {
	var params []param
	for len(s) > 0 {
		s = strings.TrimLeft(s, " \t;")
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			break
		}
		name := strings.TrimSpace(s[:eq])
		s = strings.TrimLeft(s[eq+1:], " \t")
		var value string
		if strings.HasPrefix(s, `"`) {
			var sb strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				sb.WriteByte(s[i])
			}
			value = sb.String()
			s = s[min(i+1, len(s)):]
			if j := strings.IndexByte(s, ';'); j >= 0 {
				s = s[j:]
			} else {
				s = ""
			}
		} else {
			j := strings.IndexByte(s, ';')
			if j < 0 {
				j = len(s)
			}
			value = strings.TrimSpace(stripComments(s[:j]))
			s = s[j:]
		}
		if isToken(name) {
			params = append(params, param{name, value})
		}
	}
	return params
}

// isToken is RFC 2045 5.1's token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?=`, c) >= 0 {
			return false
		}
	}
	return true
}

// stripComments removes RFC 5322 comments "(…)" outside quoted strings.
func stripComments(s string) string {
	if !strings.Contains(s, "(") {
		return s
	}
	var sb strings.Builder
	depth := 0
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && (inQuote || depth > 0):
			if depth == 0 {
				sb.WriteByte(c)
				sb.WriteByte(s[i+1])
			}
			i++
			continue
		case inQuote:
			if c == '"' {
				inQuote = false
			}
		case c == '"' && depth == 0:
			inQuote = true
		case c == '(':
			depth++
			continue
		case c == ')' && depth > 0:
			depth--
			continue
		}
		if depth == 0 {
			sb.WriteByte(c)
		}
	}
	return sb.String()
}

// countLines counts body lines for BODYSTRUCTURE (RFC 3501 7.4.2) as
// Dovecot does: the number of line ends, so a last line without one (the
// usual case before a MIME boundary) does not count.
func countLines(b []byte) int {
	return bytes.Count(b, []byte{'\n'})
}
