package imapd

import (
	"bytes"
	"strconv"
	"strings"
)

// imapBuf builds IMAP response syntax in memory (for cached structures).
type imapBuf struct{ bytes.Buffer }

// str writes a quoted string or, when it cannot be quoted (8-bit, CR/LF),
// a literal (RFC 3501 4.3). Like Dovecot, strings with a quote or a
// backslash go as literals too.
func (b *imapBuf) str(s string) {
	if !quoteSafe(s) || strings.ContainsAny(s, `"\`) {
		b.WriteByte('{')
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteString("}\r\n")
		b.WriteString(s)
		return
	}
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// nstr writes NIL for an absent value.
func (b *imapBuf) nstr(s string, present bool) {
	if !present {
		b.WriteString("NIL")
		return
	}
	b.str(s)
}

func (b *imapBuf) num(n int) { b.WriteString(strconv.Itoa(n)) }

// params writes a body parameter list or NIL (RFC 3501 9 body-fld-param).
func (b *imapBuf) params(params []param) {
	if len(params) == 0 {
		b.WriteString("NIL")
		return
	}
	b.WriteByte('(')
	for i, p := range params {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.str(p.name)
		b.WriteByte(' ')
		b.str(p.value)
	}
	b.WriteByte(')')
}

// bodyStructure returns the BODYSTRUCTURE (ext true) or BODY (ext false)
// of p (RFC 3501 7.4.2, RFC 9051 7.5.2).
func bodyStructure(data []byte, p *part, ext bool) []byte {
	var b imapBuf
	writeBody(&b, data, p, ext)
	return b.Bytes()
}

func writeBody(b *imapBuf, data []byte, p *part, ext bool) {
	b.WriteByte('(')
	if p.isMultipart() {
		for _, c := range p.children {
			writeBody(b, data, c, ext)
		}
		b.WriteByte(' ')
		b.str(p.subtype)
		if ext {
			// body-ext-mpart: params, disposition, language, location.
			b.WriteByte(' ')
			var params []param
			for _, pr := range p.params {
				params = append(params, pr)
			}
			b.params(params)
			b.WriteByte(' ')
			writeExtTail(b, data, p)
		}
		b.WriteByte(')')
		return
	}
	// body-type-1part: type, subtype, params, id, description,
	// encoding, size.
	b.str(p.mtype)
	b.WriteByte(' ')
	b.str(p.subtype)
	b.WriteByte(' ')
	b.params(p.params)
	b.WriteByte(' ')
	v, ok := p.headerValue(data, "Content-ID")
	b.nstr(v, ok)
	b.WriteByte(' ')
	v, ok = p.headerValue(data, "Content-Description")
	b.nstr(v, ok)
	b.WriteByte(' ')
	enc, ok := p.headerValue(data, "Content-Transfer-Encoding")
	if !ok || enc == "" {
		enc = "7bit"
	}
	b.str(enc)
	b.WriteByte(' ')
	body := data[p.bodyStart:p.end]
	b.num(len(body))
	switch {
	case p.msg != nil:
		// body-type-msg: envelope, body, lines.
		b.WriteByte(' ')
		b.Write(envelope(data, p.msg))
		b.WriteByte(' ')
		writeBody(b, data, p.msg, ext)
		b.WriteByte(' ')
		b.num(countLines(body))
	case p.isText():
		b.WriteByte(' ')
		b.num(countLines(body))
	}
	if ext {
		// body-ext-1part: MD5, disposition, language, location.
		b.WriteByte(' ')
		v, ok = p.headerValue(data, "Content-MD5")
		b.nstr(v, ok)
		b.WriteByte(' ')
		writeExtTail(b, data, p)
	}
	b.WriteByte(')')
}

// writeExtTail writes disposition, language and location.
func writeExtTail(b *imapBuf, data []byte, p *part) {
	if v, ok := p.headerValue(data, "Content-Disposition"); ok {
		if d, params := parseDisposition(v); d != "" {
			b.WriteByte('(')
			b.str(d)
			b.WriteByte(' ')
			b.params(params)
			b.WriteByte(')')
		} else {
			b.WriteString("NIL")
		}
	} else {
		b.WriteString("NIL")
	}
	b.WriteByte(' ')
	if v, ok := p.headerValue(data, "Content-Language"); ok {
		var langs []string
		for _, l := range strings.Split(stripComments(v), ",") {
			if l = strings.TrimSpace(l); l != "" {
				langs = append(langs, l)
			}
		}
		switch len(langs) {
		case 0:
			b.WriteString("NIL")
		case 1:
			b.str(langs[0])
		default:
			b.WriteByte('(')
			for i, l := range langs {
				if i > 0 {
					b.WriteByte(' ')
				}
				b.str(l)
			}
			b.WriteByte(')')
		}
	} else {
		b.WriteString("NIL")
	}
	b.WriteByte(' ')
	v, ok := p.headerValue(data, "Content-Location")
	b.nstr(v, ok)
}
