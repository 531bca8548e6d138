package lmtpd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/textproto"
	"os"
	"strings"
	"time"

	"postcote/internal/queue"
)

// memLimit is how much of a message is kept in memory; the rest spills
// to a temporary file.
const memLimit = 1 << 20

var errTooBig = errors.New("message too big")

// cmdDATA reads the message and answers once per accepted recipient, in
// RCPT order, after that recipient's copy is durable (RFC 2033 4.2). It
// returns true when the connection must end.
func (s *session) cmdDATA(ctx context.Context, arg string) bool {
	switch {
	case s.tx == nil:
		s.send(replyNeedMail)
		return false
	case arg != "":
		s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid parameters"})
		return false
	case len(s.tx.rcpts) == 0:
		s.send(replyNoRcpts)
		return false
	case s.tx.chunks != nil:
		s.send(reply{Code: 503, Enhanced: "5.5.1", Text: "DATA cannot be used with BDAT"})
		return false
	}
	s.send(reply{Code: 354, Text: "OK"})
	if s.flush() != nil {
		return true
	}
	s.state = "DATA"
	tx := s.tx
	s.tx = nil
	s.transCount++
	sp := &spool{dir: s.opts.SpoolDir}
	defer sp.close()
	dr := &dotReader{r: s.r, limit: s.opts.MaxMessageSize, setDeadline: func() {
		s.conn().SetReadDeadline(time.Now().Add(s.opts.Timeout))
	}}
	_, err := io.Copy(sp, dr)
	if dr.connErr != nil {
		s.logf("Disconnect from %s during DATA: %v", s.peer(), dr.connErr)
		return true
	}
	var fail *reply
	switch {
	case errors.Is(err, errTooBig):
		dr.drain()
		if dr.connErr != nil {
			return true
		}
		fail = &reply{Code: 552, Enhanced: "5.3.4", Text: "Message size exceeds administrative limit"}
	case err != nil:
		dr.drain()
		if dr.connErr != nil {
			return true
		}
		s.logf("cannot spool message: %v", err)
		fail = &reply{Code: 451, Enhanced: "4.3.0", Text: "Temporary internal failure"}
	}
	return s.finish(ctx, tx, sp, fail)
}

// finish answers the end of a message (DATA's dot or BDAT LAST): with
// fail, that reply for every recipient; else each recipient's delivery
// verdict, in RCPT order (RFC 2033 4.2). It returns true when the
// connection must end.
func (s *session) finish(ctx context.Context, tx *transaction, sp *spool, fail *reply) bool {
	s.state = "READY"
	if fail != nil {
		for _, rc := range tx.rcpts {
			r := *fail
			r.Text = "<" + rc.addr + "> " + r.Text
			s.send(r)
		}
		return false
	}
	msgid := messageID(sp.reader())
	for i, rc := range tx.rcpts {
		s.send(s.deliver(ctx, tx, rc, msgid, sp))
		// Each reply goes out as soon as its copy is stored, so a slow
		// later delivery does not hold back the earlier verdicts.
		if i < len(tx.rcpts)-1 && s.flush() != nil {
			return true
		}
	}
	return false
}

// deliver stores one recipient's copy and returns its reply.
func (s *session) deliver(ctx context.Context, tx *transaction, rc recipient, msgid string, sp *spool) reply {
	var body io.Reader = sp.reader()
	if s.opts.AddReceived {
		body = io.MultiReader(strings.NewReader(s.received(tx, rc.addr)), body)
	}
	res := s.srv.delivery.DeliverUser(ctx, rc.user, tx.sender, rc.addr, body)
	prefix := fmt.Sprintf("lmtp(%s)<%d><%s>: msgid=%s", rc.user.Name, os.Getpid(), s.id, msgidLog(msgid))
	switch res.Status {
	case queue.StatusSent:
		s.opts.Logger.Printf("lmtp", "%s: saved mail to INBOX", prefix)
		return reply{Code: 250, Enhanced: "2.0.0", Text: fmt.Sprintf("<%s> %s Saved", rc.addr, s.id)}
	case queue.StatusBounced:
		s.opts.Logger.Printf("lmtp", "%s: save failed to INBOX: %s", prefix, res.Reply)
		text := res.Reply
		if res.DSN == "5.2.2" {
			text = "Quota exceeded (mailbox for user is full)"
		}
		return reply{Code: 552, Enhanced: orDefault(res.DSN, "5.2.0"), Text: fmt.Sprintf("<%s> %s", rc.addr, text)}
	}
	s.opts.Logger.Printf("lmtp", "%s: save failed to INBOX: %s", prefix, res.Reply)
	return reply{Code: 451, Enhanced: orDefault(res.DSN, "4.2.0"), Text: fmt.Sprintf("<%s> Temporary internal error", rc.addr)}
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// received is Dovecot's LMTP trace header (RFC 5321 4.4), one per
// recipient because of the "for" clause.
func (s *session) received(tx *transaction, rcpt string) string {
	from := s.lhlo
	if s.remoteIP != "" {
		from += " ([" + s.remoteIP + "])"
	}
	with := "LMTP"
	switch {
	case tx.utf8 && s.tls:
		with = "UTF8LMTPS"
	case tx.utf8:
		with = "UTF8LMTP"
	case s.tls:
		with = "LMTPS"
	}
	return fmt.Sprintf("Received: from %s\r\n\tby %s with %s id %s\r\n\t(envelope-from <%s>)\r\n\tfor <%s>; %s\r\n",
		from, s.opts.Hostname, with, s.id, tx.sender, rcpt, time.Now().Format(time.RFC1123Z))
}

// messageID returns the Message-ID header of the message, or "".
func messageID(r io.Reader) string {
	h, err := textproto.NewReader(bufio.NewReader(io.LimitReader(r, 256<<10))).ReadMIMEHeader()
	if err != nil && len(h) == 0 {
		return ""
	}
	return strings.TrimSpace(h.Get("Message-Id"))
}

// msgidLog renders a Message-ID for a log line: printable, bounded.
func msgidLog(id string) string {
	if id == "" {
		return "<>"
	}
	if len(id) > 200 {
		id = id[:200] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, id)
}

// dotReader reads DATA content (RFC 5321 4.5.2): it removes the extra dot
// of stuffed lines, turns bare LF line ends into CRLF, stops at the
// end-of-data line and counts bytes against limit. Lines longer than the
// read buffer pass through in pieces, so memory stays bounded.
type dotReader struct {
	r           *bufio.Reader
	limit       int64
	setDeadline func()
	n           int64
	pending     []byte
	scratch     []byte
	midLine     bool // the last chunk did not end a line
	done        bool
	tooBig      bool
	connErr     error
}

func (d *dotReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		switch {
		case d.connErr != nil:
			return 0, fmt.Errorf("read message: %w", d.connErr)
		case d.tooBig:
			return 0, errTooBig
		case d.done:
			return 0, io.EOF
		}
		out := d.next()
		if d.limit > 0 && d.n+int64(len(out)) > d.limit {
			d.tooBig = true
			continue
		}
		d.n += int64(len(out))
		d.pending = out
	}
	n := copy(p, d.pending)
	d.pending = d.pending[n:]
	return n, nil
}

// next reads one line (or one buffer-full of a long line).
func (d *dotReader) next() []byte {
	if d.setDeadline != nil {
		d.setDeadline()
	}
	chunk, err := d.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		if !d.midLine && len(chunk) > 0 && chunk[0] == '.' {
			chunk = chunk[1:]
		}
		d.midLine = true
		return chunk
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		d.connErr = err
		return nil
	}
	start := !d.midLine
	d.midLine = false
	if start && chunk[0] == '.' {
		if string(chunk) == ".\r\n" || string(chunk) == ".\n" {
			d.done = true
			return nil
		}
		chunk = chunk[1:]
	}
	if len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' {
		return chunk
	}
	// A bare LF line end becomes CRLF; the store writes LF again.
	d.scratch = append(append(d.scratch[:0], chunk[:len(chunk)-1]...), '\r', '\n')
	return d.scratch
}

// drain reads the rest of the data so the session stays in step.
func (d *dotReader) drain() {
	for !d.done && d.connErr == nil {
		d.next()
	}
}

// spool holds one message while it is delivered: in memory up to
// memLimit, then in an unlinked temporary file.
type spool struct {
	dir string
	mem bytes.Buffer
	f   *os.File
	n   int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.f == nil && s.mem.Len()+len(p) > memLimit {
		f, err := os.CreateTemp(s.dir, "lmtp-spool-*")
		if err != nil {
			return 0, fmt.Errorf("spool message: %w", err)
		}
		os.Remove(f.Name()) // unlinked: gone when closed, even after a crash
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			f.Close()
			return 0, fmt.Errorf("spool message: %w", err)
		}
		s.f = f
		s.mem = bytes.Buffer{}
	}
	if s.f != nil {
		n, err := s.f.Write(p)
		s.n += int64(n)
		if err != nil {
			return n, spoolError{err}
		}
		return n, nil
	}
	s.n += int64(len(p))
	return s.mem.Write(p)
}

// spoolError is a failure to store the message locally (not the
// client's fault).
type spoolError struct{ err error }

func (e spoolError) Error() string { return "spool message: " + e.err.Error() }
func (e spoolError) Unwrap() error { return e.err }

// reader returns a new reader of the whole message.
func (s *spool) reader() io.Reader {
	if s.f != nil {
		return io.NewSectionReader(s.f, 0, s.n)
	}
	return bytes.NewReader(s.mem.Bytes())
}

func (s *spool) close() {
	if s.f != nil {
		s.f.Close()
	}
}
