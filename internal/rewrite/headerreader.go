package rewrite

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
)

// DefaultHeaderLimit is Postfix's header_size_limit default: the most
// bytes of one logical header that are kept.
const DefaultHeaderLimit = 102400

// DefaultTokenLimit is Postfix's header_address_token_limit default: the
// most address tokens of one address header that are kept.
const DefaultTokenLimit = 10240

// DefaultHopLimit is Postfix's hopcount_limit default.
const DefaultHopLimit = 50

// HeaderOptions say what cleanup does to the primary header block of a
// message (RFC 5322 2.1: the header fields up to the first empty line).
type HeaderOptions struct {
	// SizeLimit is header_size_limit (DefaultHeaderLimit when zero): a
	// logical header is kept up to this many bytes, counting one byte
	// per line break, and the excess is discarded, as Postfix's
	// mime_state does: a first line longer than the limit is cut at the
	// limit, and a continuation line that does not fit is dropped with
	// every continuation line after it. Nothing is logged, as in Postfix.
	SizeLimit int
	// TokenLimit is header_address_token_limit (DefaultTokenLimit when
	// zero): an address header that is rewritten keeps only this many
	// RFC 5322 tokens (atoms, quoted strings, comments, domain literals,
	// specials); the rest of its value is discarded, as Postfix's
	// tok822_parse_limit does.
	TokenLimit int
	// HopLimit is hopcount_limit: a message with this many Received
	// headers (the one our smtpd added included) is refused with an
	// *Error wrapping ErrTooManyHops. Zero means no check.
	HopLimit int
	// Rewrite, when set, rewrites each address of the address headers:
	// given the header's canonical class (HeaderSender, HeaderRecipient)
	// and the address, it returns the replacement or the address
	// unchanged. Replacements that would change the header's structure
	// (line breaks, brackets, commas) are ignored.
	Rewrite func(ctx context.Context, class, addr string) (string, error)
}

// CleanHeaders returns a reader of the message read from r after the
// primary header block went through o. It streams: one logical header
// (at most SizeLimit bytes and its line breaks) is held at a time, and
// the body passes through unread until the caller reads it. Everything
// but discarded excess and rewritten addresses is kept byte for byte,
// line endings included. Errors (a table that cannot answer, too many
// hops) are returned by Read.
func CleanHeaders(ctx context.Context, r io.Reader, o HeaderOptions) io.Reader {
	if o.SizeLimit <= 0 {
		o.SizeLimit = DefaultHeaderLimit
	}
	if o.TokenLimit <= 0 {
		o.TokenLimit = DefaultTokenLimit
	}
	return &headerReader{ctx: ctx, br: bufio.NewReaderSize(r, 64<<10), o: o}
}

// headerReader is CleanHeaders' reader: it turns out one processed
// header at a time, then the body unchanged.
type headerReader struct {
	ctx    context.Context
	br     *bufio.Reader
	o      HeaderOptions
	out    []byte // processed bytes not yet read
	off    int
	inBody bool
	err    error // sticky
	hops   int
	field  []byte // the logical header being collected
}

// Read implements io.Reader.
func (h *headerReader) Read(p []byte) (int, error) {
	for h.off >= len(h.out) {
		if h.err != nil {
			return 0, h.err
		}
		if h.inBody {
			return h.br.Read(p)
		}
		h.out, h.off = h.out[:0], 0
		h.err = h.next()
	}
	n := copy(p, h.out[h.off:])
	h.off += n
	return n, nil
}

// maxNamePeek is how far a header field name is looked for: RFC 5322
// 2.1.1 lines are at most 998 characters.
const maxNamePeek = 1000

// next processes the next logical header into h.out, or notes the end of
// the header block (an empty line is passed on; any other line that does
// not start a header field is left for the body).
func (h *headerReader) next() error {
	peek, err := h.br.Peek(maxNamePeek)
	if len(peek) == 0 {
		h.inBody = true
		if err == io.EOF {
			return nil
		}
		return err
	}
	if !isFieldStart(peek) {
		// The empty line, or body text without one: the header block
		// ends here (RFC 5322 2.1).
		h.inBody = true
		return nil
	}
	colon := bytes.IndexByte(peek, ':')
	f, err := h.readField(colon + 1)
	if err != nil {
		return err
	}
	name := string(f[:colon])
	if strings.EqualFold(name, "Received") {
		// cleanup_message.c: ++hop_count >= hopcount_limit.
		h.hops++
		if h.o.HopLimit > 0 && h.hops >= h.o.HopLimit {
			return hopsError()
		}
	}
	if class := headerClass(name); class != "" && h.o.Rewrite != nil {
		nf, err := rewriteField(h.ctx, f, colon, class, h.o.TokenLimit, h.o.Rewrite)
		if err != nil {
			return err
		}
		f = append(f[:0], nf...)
	}
	// The field becomes the output; the old output buffer collects the
	// next field.
	h.out, h.field = f, h.out[:0]
	return nil
}

// readField reads one logical header into h.field within SizeLimit (see
// HeaderOptions) and returns it with its line endings. The name and its
// colon (the first nameLen bytes) are kept whatever the limit.
func (h *headerReader) readField(nameLen int) ([]byte, error) {
	limit := max(h.o.SizeLimit, nameLen)
	f := h.field[:0]
	f, eol, n, err := readLine(h.br, f, limit)
	if err != nil {
		return nil, err
	}
	truncated := n > limit
	size := min(n, limit)
	f = append(f, eol...)
	for {
		c, err := h.br.Peek(1)
		if len(c) == 0 || (c[0] != ' ' && c[0] != '\t') {
			if err != nil && err != io.EOF {
				return nil, err
			}
			break
		}
		// A continuation line (RFC 5322 2.2.3): kept whole when it fits
		// (one byte for the line break), otherwise it and the rest of
		// the header are discarded.
		room := limit - size - 1
		if truncated || room < 0 {
			room = 0
		}
		mark := len(f)
		f, eol, n, err = readLine(h.br, f, room)
		if err != nil {
			return nil, err
		}
		if truncated || n > room {
			truncated = true
			f = f[:mark]
			continue
		}
		size += 1 + n
		f = append(f, eol...)
	}
	h.field = f
	return f, nil
}

// readLine appends to dst at most max bytes of the next line's content
// (without its line ending) and discards the rest of the line. It returns
// the line ending ("\r\n", "\n", or none at the end of input) and the
// content's whole length.
func readLine(br *bufio.Reader, dst []byte, max int) ([]byte, []byte, int, error) {
	start, total := len(dst), 0
	var last byte
	for {
		chunk, err := br.ReadSlice('\n')
		nl := err == nil
		body := chunk
		if nl {
			body = chunk[:len(chunk)-1]
		}
		if len(body) > 0 {
			last = body[len(body)-1]
		}
		if room := max - (len(dst) - start); room > 0 {
			dst = append(dst, body[:min(room, len(body))]...)
		}
		total += len(body)
		switch {
		case nl:
			if total > 0 && last == '\r' {
				total--
				dst = dst[:start+min(len(dst)-start, total)]
				return dst, crlf, total, nil
			}
			return dst, lf, total, nil
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF:
			return dst, nil, total, nil
		default:
			return dst, nil, total, err
		}
	}
}

var (
	crlf = []byte("\r\n")
	lf   = []byte("\n")
)

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

// rewriteField rewrites the addresses of one logical address header,
// whose name ends at colon, keeping at most tokenLimit tokens of its
// value.
func rewriteField(ctx context.Context, field []byte, colon int, class string, tokenLimit int, rw func(context.Context, string, string) (string, error)) ([]byte, error) {
	value := string(field[colon+1:])
	if cut, ok := cutTokens(value, tokenLimit); ok {
		// Keep the line ending of the header's last line.
		eol := ""
		if strings.HasSuffix(value, "\r\n") {
			eol = "\r\n"
		} else if strings.HasSuffix(value, "\n") {
			eol = "\n"
		}
		value = strings.TrimRight(cut, " \t\r\n") + eol
	}
	spans := addressSpans(value)
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
