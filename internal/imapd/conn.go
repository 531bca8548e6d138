package imapd

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// deadlineConn refreshes the write deadline before every write, so a
// client that stops reading cannot hold a session forever.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
	now     func() time.Time
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(c.now().Add(c.timeout))
	return c.Conn.Write(b)
}

// countReader and countWriter count the octets of the IMAP stream for the
// "in=… out=…" of the logout log line.
type countReader struct {
	r io.Reader
	n *int64
}

func (c countReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	*c.n += int64(n)
	return n, err
}

type countWriter struct {
	w io.Writer
	n *int64
}

func (c countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	*c.n += int64(n)
	return n, err
}

// respWriter writes IMAP response syntax (RFC 3501 7 and 9) to a
// buffered writer; the session flushes it when a command completes.
type respWriter struct {
	*bufio.Writer
}

// quoteSafe reports whether s can be sent as a quoted string: 7-bit
// TEXT-CHARs only (RFC 3501 9 quoted).
func quoteSafe(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' || c == 0 || c >= 0x80 {
			return false
		}
	}
	return true
}

// str writes s as a quoted string, or as a literal when it cannot be
// quoted.
func (w respWriter) str(s string) {
	if !quoteSafe(s) {
		w.literal(s)
		return
	}
	w.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			w.WriteByte('\\')
		}
		w.WriteByte(s[i])
	}
	w.WriteByte('"')
}

// nstr writes s, or NIL when s is empty.
func (w respWriter) nstr(s string) {
	if s == "" {
		w.WriteString("NIL")
		return
	}
	w.str(s)
}

func isAtomString(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAtomChar(s[i]) {
			return false
		}
	}
	return true
}

// literal writes "{n}" CRLF and the octets.
func (w respWriter) literal(s string) {
	w.WriteByte('{')
	w.WriteString(strconv.Itoa(len(s)))
	w.WriteString("}\r\n")
	w.WriteString(s)
}

func (w respWriter) literalBytes(b []byte) {
	w.WriteByte('{')
	w.WriteString(strconv.Itoa(len(b)))
	w.WriteString("}\r\n")
	w.Write(b)
}

// flags writes a parenthesised flag list.
func (w respWriter) flags(flags []string) {
	w.WriteByte('(')
	for i, f := range flags {
		if i > 0 {
			w.WriteByte(' ')
		}
		w.WriteString(f)
	}
	w.WriteByte(')')
}

func (w respWriter) uint(n uint32) { w.WriteString(strconv.FormatUint(uint64(n), 10)) }

// untagged writes "* " and a formatted line.
func (w respWriter) untagged(format string, args ...any) {
	w.WriteString("* ")
	fmt.Fprintf(w, format, args...)
	w.WriteString("\r\n")
}
