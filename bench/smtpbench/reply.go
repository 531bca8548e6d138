package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// Limits on what the load generator reads from a server. RFC 5321 4.5.3.1.5
// limits a reply line to 512 octets; servers in the wild exceed it a
// little, so the limit here is generous but finite, as is the number of
// continuation lines a reply may have.
const (
	maxReplyLine  = 4096
	maxReplyLines = 100
)

// reply is one SMTP reply (RFC 5321 4.2): a three-digit code and the text
// of its lines joined by "\n".
type reply struct {
	Code int
	Text string
}

func (r reply) String() string {
	return fmt.Sprintf("%03d %s", r.Code, strings.ReplaceAll(r.Text, "\n", " / "))
}

// errBadReply marks a reply that is not RFC 5321 syntax.
var errBadReply = errors.New("malformed SMTP reply")

// readReply reads one possibly multi-line reply. Per RFC 5321 4.2.1 every
// line starts with the same three-digit code, followed by "-" on all lines
// but the last, which has a space (or nothing) after the code.
func readReply(br *bufio.Reader) (reply, error) {
	var r reply
	var text []string
	for n := 0; ; n++ {
		if n == maxReplyLines {
			return r, fmt.Errorf("%w: more than %d lines", errBadReply, maxReplyLines)
		}
		line, err := readLine(br)
		if err != nil {
			return r, err
		}
		if len(line) < 3 || !isDigit(line[0]) || !isDigit(line[1]) || !isDigit(line[2]) {
			return r, fmt.Errorf("%w: %q", errBadReply, truncate(line))
		}
		code := int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
		if line[0] < '2' || line[0] > '5' {
			return r, fmt.Errorf("%w: code %d out of range: %q", errBadReply, code, truncate(line))
		}
		if n > 0 && code != r.Code {
			return r, fmt.Errorf("%w: code changed from %d to %d within one reply", errBadReply, r.Code, code)
		}
		r.Code = code
		more := false
		rest := line[3:]
		if len(rest) > 0 {
			switch rest[0] {
			case '-':
				more = true
			case ' ':
			default:
				return r, fmt.Errorf("%w: %q", errBadReply, truncate(line))
			}
			rest = rest[1:]
		}
		text = append(text, string(rest))
		if !more {
			r.Text = strings.Join(text, "\n")
			return r, nil
		}
	}
}

// readLine reads one line ending in LF (CRLF per RFC 5321 2.3.8; a bare LF
// is tolerated) and returns it without the line ending.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxReplyLine {
			return nil, fmt.Errorf("%w: line longer than %d bytes", errBadReply, maxReplyLine)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return nil, err
	}
	line = bytes.TrimSuffix(line, []byte("\n"))
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "…"
	}
	return string(b)
}
