package transport

import (
	"bytes"
	"mime"
	"mime/quotedprintable"
	"strings"
)

// downgradeMIME converts 8-bit MIME parts to quoted-printable for a server
// without 8BITMIME (RFC 6152 3; Postfix's default,
// disable_mime_output_conversion = no). Multipart bodies are walked part
// by part (RFC 2046 5.1), message/rfc822 is converted inside (it may not
// be encoded itself, RFC 2046 5.2.1); an 8-bit leaf gets
// "Content-Transfer-Encoding: quoted-printable" and Postfix's
// X-MIME-Autoconverted note. Header fields are left as they are.
func downgradeMIME(msg []byte, hostname, queueID string) []byte {
	return downgradeEntity(msg, hostname, queueID, true, 0)
}

const maxMIMEDepth = 20

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// splitEntity cuts an entity into its header (with the final line break)
// and body, after the first empty line.
func splitEntity(e []byte) (hdr, sep, body []byte) {
	for i := 0; i < len(e); {
		j := bytes.IndexByte(e[i:], '\n')
		if j < 0 {
			return e, nil, nil
		}
		line := e[i : i+j+1]
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return e[:i], line, e[i+j+1:]
		}
		i += j + 1
	}
	return e, nil, nil
}

// headerFields splits a header into fields, continuation lines included.
func headerFields(hdr []byte) [][]byte {
	var out [][]byte
	for len(hdr) > 0 {
		j := bytes.IndexByte(hdr, '\n')
		line := hdr
		if j >= 0 {
			line = hdr[:j+1]
		}
		hdr = hdr[len(line):]
		if len(out) > 0 && (line[0] == ' ' || line[0] == '\t') {
			out[len(out)-1] = append(out[len(out)-1], line...)
			continue
		}
		out = append(out, append([]byte(nil), line...))
	}
	return out
}

func fieldName(f []byte) string {
	name, _, _ := strings.Cut(string(f), ":")
	return strings.ToLower(strings.TrimSpace(name))
}

func fieldValue(f []byte) string {
	_, v, _ := strings.Cut(string(f), ":")
	return strings.Join(strings.Fields(v), " ")
}

func downgradeEntity(e []byte, hostname, queueID string, top bool, depth int) []byte {
	if !has8bit(e) || depth > maxMIMEDepth {
		return e
	}
	hdr, sep, body := splitEntity(e)
	if sep == nil {
		return e // a header without a body: nothing to encode
	}
	fields := headerFields(hdr)
	ctype, cte := "", ""
	for _, f := range fields {
		switch fieldName(f) {
		case "content-type":
			ctype = fieldValue(f)
		case "content-transfer-encoding":
			cte = strings.ToLower(fieldValue(f))
		}
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil || ctype == "" {
		mt = "text/plain"
	}
	nl := "\n"
	if bytes.HasSuffix(sep, []byte("\r\n")) {
		nl = "\r\n"
	}
	setCTE := func(value string, note bool) []byte {
		var out bytes.Buffer
		seen := false
		for _, f := range fields {
			if fieldName(f) == "content-transfer-encoding" {
				if !seen {
					out.WriteString("Content-Transfer-Encoding: " + value + nl)
					seen = true
				}
				continue
			}
			out.Write(f)
		}
		if top && !hasField(fields, "mime-version") {
			out.WriteString("MIME-Version: 1.0" + nl)
		}
		if !seen {
			out.WriteString("Content-Transfer-Encoding: " + value + nl)
		}
		if note {
			out.WriteString("X-MIME-Autoconverted: from " + orStr(cte, "8bit") + " to " + value + " by " + hostname + " id " + queueID + nl)
		}
		out.Write(sep)
		return out.Bytes()
	}
	switch {
	case strings.HasPrefix(mt, "multipart/") && params["boundary"] != "":
		newBody := downgradeMultipart(body, params["boundary"], hostname, queueID, depth)
		if cte == "8bit" || cte == "binary" {
			return append(setCTE("7bit", false), newBody...)
		}
		return append(append(append([]byte(nil), hdr...), sep...), newBody...)
	case mt == "message/rfc822" || mt == "message/global":
		newBody := downgradeEntity(body, hostname, queueID, false, depth+1)
		if cte == "8bit" || cte == "binary" {
			return append(setCTE("7bit", false), newBody...)
		}
		return append(append(append([]byte(nil), hdr...), sep...), newBody...)
	case cte == "base64" || cte == "quoted-printable" || !has8bit(body):
		return e
	}
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write(body)
	w.Close()
	return append(setCTE("quoted-printable", true), qp.Bytes()...)
}

func hasField(fields [][]byte, name string) bool {
	for _, f := range fields {
		if fieldName(f) == name {
			return true
		}
	}
	return false
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// downgradeMultipart converts each body part between the boundary lines
// (RFC 2046 5.1.1), keeping the preamble, delimiters and epilogue.
func downgradeMultipart(body []byte, boundary, hostname, queueID string, depth int) []byte {
	delim := []byte("--" + boundary)
	var out bytes.Buffer
	var part []byte
	inPart, closed := false, false
	flush := func() {
		if inPart {
			// The line break before a delimiter belongs to it (RFC 2046 5.1.1).
			trail := []byte{}
			if bytes.HasSuffix(part, []byte("\r\n")) {
				part, trail = part[:len(part)-2], []byte("\r\n")
			} else if bytes.HasSuffix(part, []byte("\n")) {
				part, trail = part[:len(part)-1], []byte("\n")
			}
			out.Write(downgradeEntity(part, hostname, queueID, false, depth+1))
			out.Write(trail)
		} else {
			out.Write(part)
		}
		part = nil
	}
	for len(body) > 0 {
		j := bytes.IndexByte(body, '\n')
		line := body
		if j >= 0 {
			line = body[:j+1]
		}
		body = body[len(line):]
		trimmed := bytes.TrimRight(line, " \t\r\n")
		if !closed && bytes.HasPrefix(trimmed, delim) {
			rest := trimmed[len(delim):]
			if len(rest) == 0 || bytes.Equal(rest, []byte("--")) {
				flush()
				out.Write(line)
				inPart = len(rest) == 0
				closed = !inPart
				continue
			}
		}
		part = append(part, line...)
	}
	if inPart {
		out.Write(downgradeEntity(part, hostname, queueID, false, depth+1))
	} else {
		out.Write(part)
	}
	return out.Bytes()
}
