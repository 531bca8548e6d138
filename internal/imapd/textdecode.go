package imapd

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/charset"
)

// maxDecodedText bounds how much decoded text one part contributes to a
// SEARCH, so a huge attachment cannot exhaust memory.
const maxDecodedText = 32 << 20

var wordDecoder = &mime.WordDecoder{CharsetReader: charsetReader}

// charsetReader converts text in a named charset to UTF-8 (all charsets
// x/text knows, ISO-2022-JP and Shift_JIS included).
func charsetReader(name string, r io.Reader) (io.Reader, error) {
	switch strings.ToLower(name) {
	case "", "utf-8", "utf8", "us-ascii", "ascii":
		return r, nil
	}
	return charset.Reader(name, r)
}

// decodeHeaderValue decodes RFC 2047 encoded-words; undecodable input is
// returned as it is.
func decodeHeaderValue(v string) string {
	if !strings.Contains(v, "=?") {
		return v
	}
	d, err := wordDecoder.DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}

// decodeBody returns a leaf part's text with its transfer encoding
// (RFC 2045 6) and charset undone.
func decodeBody(data []byte, p *part) string {
	var r io.Reader = bytes.NewReader(data[p.bodyStart:p.end])
	enc, _ := p.headerValue(data, "Content-Transfer-Encoding")
	switch strings.ToLower(strings.TrimSpace(enc)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, &base64Cleaner{r: r})
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	}
	if cs := p.param("charset"); cs != "" {
		if cr, err := charsetReader(cs, r); err == nil {
			r = cr
		}
	}
	b, _ := io.ReadAll(io.LimitReader(r, maxDecodedText))
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(b)
}

// base64Cleaner drops the line breaks and other non-alphabet bytes
// between base64 characters.
type base64Cleaner struct{ r io.Reader }

func (c *base64Cleaner) Read(b []byte) (int, error) {
	for {
		n, err := c.r.Read(b)
		k := 0
		for _, x := range b[:n] {
			if (x >= 'A' && x <= 'Z') || (x >= 'a' && x <= 'z') || (x >= '0' && x <= '9') || x == '+' || x == '/' || x == '=' {
				b[k] = x
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}

// foldCase is the case folding SEARCH uses: i;unicode-casemap-like
// lower-casing.
func foldCase(s string) string { return strings.ToLower(s) }

// parseMessageDate parses an RFC 5322 Date header value.
func parseMessageDate(v string) (t time.Time, err error) {
	return mail.ParseDate(stripComments(v))
}
