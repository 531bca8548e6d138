package smtpd

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"postcote/internal/queue"
	"strconv"
	"strings"
)

// ErrMessageTooBig is what the content reader returns once the message
// exceeds message_size_limit; the client then gets "552 5.3.4 Error:
// message file too big" after the rest of its data was read.
//
// It is the queue's own error, so a message that the queue finds too big
// (its limit counts the Received header too, as Postfix's cleanup does)
// gets the same 552 as one the size check here stopped.
var ErrMessageTooBig = queue.ErrMessageTooBig

var errTransactionAborted = errors.New("mail transaction aborted")

// cmdDATA: RFC 5321 4.1.1.4. The content streams to the queue as it
// arrives; 250 is sent only after Enqueue reports the message durable.
func (s *session) cmdDATA(ctx context.Context, arg string) Reply {
	if s.tx == nil {
		return Reply{503, "5.5.1", "Error: need RCPT command"}
	}
	if len(s.tx.env.Recipients) == 0 {
		return Reply{554, "5.5.1", "Error: no valid recipients"}
	}
	if arg != "" {
		return Reply{501, "5.5.4", "Syntax: DATA"}
	}
	if s.tx.bdat != nil {
		return Reply{503, "5.5.1", "Error: DATA after BDAT"}
	}
	if r, ok := s.dataCheck(ctx, "DATA"); !ok {
		return r
	}
	// RFC 2920 3.1: 354 is sent at once, whatever else is pending.
	s.send(Reply{354, "", "End data with <CR><LF>.<CR><LF>"})
	if err := s.flush(); err != nil {
		s.logf("lost connection after DATA from %s", s.namaddr())
		return Reply{}
	}
	env := s.envelope()
	dr := &dotReader{s: s, limit: s.opts.MessageSizeLimit, prevCRLF: true, lineStart: true}
	var eodReply Reply
	dr.atEnd = func() error {
		// smtpd_end_of_data_restrictions: a refusal fails the content
		// stream, so the queue keeps nothing.
		r, ok := s.eodCheck(ctx)
		if ok {
			return nil
		}
		eodReply = r
		return errEODRejected
	}
	err := s.srv.queue.Enqueue(ctx, env, io.MultiReader(strings.NewReader(s.received(env)), dr))
	if !dr.done && dr.connErr == nil {
		dr.drain()
	}
	if dr.tooBig {
		err = ErrMessageTooBig
	}
	if eodReply.Code != 0 && dr.connErr == nil {
		if err == nil {
			s.warnf("%s: queue accepted a message refused at end of data", env.ID)
		}
		s.tx = nil
		return eodReply
	}
	return s.finishMessage(env, err, dr.connErr, dr.done, "DATA")
}

// finishMessage turns the outcome of Enqueue into the reply: the client's
// read error ends the session, the size limit gives 552, a queue failure
// 451, success 250 with the queue ID.
func (s *session) finishMessage(env *queueEnvelope, err, connErr error, complete bool, cmd string) Reply {
	s.tx = nil
	switch {
	case connErr != nil:
		s.readFailed(connErr)
		return Reply{}
	case errors.Is(err, ErrMessageTooBig):
		s.logf("%s: reject: %s from %s: %s; from=<%s> proto=%s helo=<%s>", env.ID, cmd, s.namaddr(), replyTooBig.Line(), env.Sender, env.Protocol, s.helo)
		return replyTooBig
	case errors.Is(err, queue.ErrInsufficientStorage):
		// queue_minfree: Postfix's cleanup says the same.
		s.warnf("%s: not enough free space in the queue file system for message from %s: %v", env.ID, s.namaddr(), err)
		return replyInsufficientStorage
	case err != nil:
		if r, ok := cleanupReply(err); ok {
			// The cleanup stage refused the message with its own reply
			// (451 4.6.0 Alias expansion error, 554 5.4.0 too many
			// hops) and logged why: answer it as Postfix's smtpd
			// passes on cleanup's status.
			return r
		}
		s.warnf("%s: queue file write error for message from %s: %v", env.ID, s.namaddr(), err)
		return replyQueueError
	case !complete:
		// The queue returned success without reading to the end: what it
		// stored is cut short, so do not claim it was accepted.
		s.warnf("%s: queue did not read the whole message from %s", env.ID, s.namaddr())
		return replyQueueError
	}
	s.errors = 0 // the error limits count errors "without delivering mail"
	return reply(250, "2.0.0", "Ok: queued as %s", env.ID)
}

// cleanupReply returns the reply an error from the queue's front end
// carries (internal/rewrite's *Error: Postfix's cleanup status, such as
// "451 4.6.0 Alias expansion error"), if it carries one.
func cleanupReply(err error) (Reply, bool) {
	var r interface {
		SMTPReply() (code int, status, text string)
	}
	if !errors.As(err, &r) {
		return Reply{}, false
	}
	code, status, text := r.SMTPReply()
	if code < 400 || code > 599 {
		return Reply{}, false
	}
	return Reply{code, status, text}, true
}

// envelope completes the transaction's envelope for the queue.
func (s *session) envelope() *queueEnvelope {
	env := s.tx.env
	env.Recipients = append(env.Recipients[:0:0], s.tx.env.Recipients...)
	env.Arrival = s.opts.Now()
	env.ClientName = s.clientName
	env.ClientAddr = s.clientAddr.String()
	env.Helo = s.helo
	env.Protocol = s.protocol(env.SMTPUTF8)
	env.AuthUser = s.authUser
	return &env
}

// protocol is the "with" keyword of RFC 3848 (and RFC 6531 4.3 for
// UTF8SMTP): ESMTP plus S for TLS and A for authentication.
func (s *session) protocol(utf8 bool) string {
	if !s.esmtp {
		return "SMTP"
	}
	p := "ESMTP"
	if utf8 {
		p = "UTF8SMTP"
	}
	if s.tlsState != nil {
		p += "S"
	}
	if s.authUser != "" {
		p += "A"
	}
	return p
}

// received builds Postfix's Received header (RFC 5321 4.4):
//
//	Received: from helo (name [addr])
//		(using TLSv1.3 with cipher … (256/256 bits)
//		 key-exchange X25519MLKEM768)
//		(No client certificate requested)
//		(Authenticated sender: user)
//		by myhostname (postcote) with ESMTPSA id QUEUEID
//		for <rcpt>; date
func (s *session) received(env *queueEnvelope) string {
	var b strings.Builder
	helo := env.Helo
	if helo == "" {
		helo = env.ClientName
	}
	addr := s.clientAddr.String()
	if s.clientAddr.Is6() {
		addr = "IPv6:" + addr
	}
	fmt.Fprintf(&b, "Received: from %s (%s [%s])\r\n", sanitizeHeader(helo), sanitizeHeader(env.ClientName), addr)
	if s.tlsState != nil && s.opts.ReceivedHeaderTLS {
		fmt.Fprintf(&b, "\t(using %s", tlsSummary(s.tlsState))
		if s.tlsState.CurveID != 0 {
			fmt.Fprintf(&b, "\r\n\t key-exchange %s", s.tlsState.CurveID)
		}
		b.WriteString(")\r\n\t(No client certificate requested)\r\n")
	}
	if s.authUser != "" && s.opts.SASLAuthenticatedHeader {
		fmt.Fprintf(&b, "\t(Authenticated sender: %s)\r\n", sanitizeHeader(s.authUser))
	}
	fmt.Fprintf(&b, "\tby %s (postcote) with %s id %s", s.opts.Hostname, env.Protocol, env.ID)
	if len(env.Recipients) == 1 {
		fmt.Fprintf(&b, "\r\n\tfor <%s>", sanitizeHeader(env.Recipients[0].OrigAddress))
	}
	fmt.Fprintf(&b, "; %s\r\n", env.Arrival.Format("Mon, 2 Jan 2006 15:04:05 -0700 (MST)"))
	return b.String()
}

// sanitizeHeader keeps client-chosen text from breaking the header: no
// control characters, and at most 255 octets.
func sanitizeHeader(v string) string {
	if len(v) > 255 {
		v = v[:255]
	}
	return printable(v)
}

// tlsSummary describes a TLS session as Postfix logs it:
// "TLSv1.3 with cipher TLS_AES_128_GCM_SHA256 (128/128 bits)".
func tlsSummary(cs *tls.ConnectionState) string {
	version := strings.Replace(tls.VersionName(cs.Version), "TLS 1.", "TLSv1.", 1)
	name := tls.CipherSuiteName(cs.CipherSuite)
	bits := 128
	if strings.Contains(name, "AES_256") || strings.Contains(name, "CHACHA20") {
		bits = 256
	}
	return fmt.Sprintf("%s with cipher %s (%d/%d bits)", version, name, bits, bits)
}

// dotReader reads DATA content (RFC 5321 4.5.2): it removes the leading
// dot of stuffed lines, turns bare LF line ends into CRLF, stops at the
// end-of-data line, and counts bytes against message_size_limit. Like
// Postfix's smtpd_forbid_bare_newline = normal, only "." after a CRLF
// ends the data: "\n.\r\n" does not (SMTP smuggling). Lines longer than the
// read buffer pass through in pieces, so memory stays bounded.
type dotReader struct {
	s         *session
	limit     int64 // message_size_limit; <= 0 means none
	n         int64
	pending   []byte
	scratch   []byte
	lineStart bool         // the next chunk begins a line
	prevCRLF  bool         // the last line ended with CRLF
	lastCR    bool         // the last chunk (cut mid-line) ended with CR
	done      bool         // the end-of-data line was read
	atEnd     func() error // run once at the end of data; an error fails the stream
	endErr    error
	tooBig    bool
	connErr   error // reading from the client failed
}

func (d *dotReader) Read(p []byte) (int, error) {
	for len(d.pending) == 0 {
		switch {
		case d.tooBig:
			return 0, ErrMessageTooBig
		case d.connErr != nil:
			return 0, fmt.Errorf("read message from %s: %w", d.s.namaddr(), d.connErr)
		case d.done:
			if d.atEnd != nil {
				d.endErr, d.atEnd = d.atEnd(), nil
			}
			if d.endErr != nil {
				return 0, d.endErr
			}
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

// next reads one chunk from the client and returns its content bytes;
// it sets done at the end-of-data line and connErr on a read error.
func (d *dotReader) next() []byte {
	d.s.setReadDeadline(d.s.opts.Timeouts.Data)
	chunk, err := d.s.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		if d.lineStart && len(chunk) > 0 && chunk[0] == '.' {
			chunk = chunk[1:]
		}
		d.lineStart = false
		d.lastCR = len(chunk) > 0 && chunk[len(chunk)-1] == '\r'
		return chunk
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		d.connErr = err
		return nil
	}
	crlf := len(chunk) >= 2 && chunk[len(chunk)-2] == '\r' || len(chunk) == 1 && d.lastCR
	if d.lineStart {
		if d.prevCRLF && len(chunk) == 3 && chunk[0] == '.' && crlf {
			d.done = true
			return nil
		}
		if chunk[0] == '.' && len(chunk) > 1 && !(len(chunk) == 2 || (len(chunk) == 3 && crlf)) {
			chunk = chunk[1:] // RFC 5321 4.5.2 transparency
		}
	}
	d.lineStart, d.prevCRLF, d.lastCR = true, crlf, false
	if crlf {
		return chunk
	}
	// A bare LF line end becomes CRLF (Postfix stores lines, not bytes).
	d.scratch = append(append(d.scratch[:0], chunk[:len(chunk)-1]...), '\r', '\n')
	return d.scratch
}

// drain reads and drops the rest of the data (after the size limit or a
// queue failure), so the session stays in step with the client.
func (d *dotReader) drain() {
	for !d.done && d.connErr == nil {
		d.next()
	}
}

// bdatState carries a CHUNKING (RFC 3030) message across BDAT commands:
// the content goes through a pipe to an Enqueue running alongside.
type bdatState struct {
	env    *queueEnvelope
	pw     *io.PipeWriter
	result chan error
	n      int64
	lastCR bool
	failed Reply // a failed transaction answers every BDAT up to LAST
}

func (b *bdatState) abort(err error) {
	if b.pw != nil {
		b.pw.CloseWithError(err)
		<-b.result
		b.pw = nil
	}
}

// cmdBDAT: RFC 3030 2. Every chunk is read even when the command fails,
// so that the session stays in step (RFC 3030 4.2).
func (s *session) cmdBDAT(ctx context.Context, arg string) Reply {
	f := strings.Fields(arg)
	var size int64 = -1
	if len(f) > 0 && strings.Trim(f[0], "0123456789") == "" {
		if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
			size = n
		}
	}
	if size < 0 {
		// Without a size the chunk cannot be skipped and the session has
		// lost step with the client: say so and hang up (Postfix's 521).
		s.closing = true
		s.abortTx()
		return Reply{521, "5.5.4", "Syntax: BDAT count [LAST]"}
	}
	last := len(f) == 2 && strings.EqualFold(f[1], "LAST")
	var refusal Reply
	switch {
	case len(f) > 2 || len(f) == 2 && !last:
		refusal = Reply{501, "5.5.4", "Syntax: BDAT count [LAST]"}
	case size == 0 && !last:
		refusal = Reply{551, "5.7.1", "Null BDAT request"}
	case s.opts.TLSLevel == TLSEncrypt && s.tlsState == nil:
		refusal = replyNeedTLS
	case s.tx == nil:
		refusal = Reply{503, "5.5.1", "Error: need RCPT command"}
	case len(s.tx.env.Recipients) == 0:
		refusal = Reply{554, "5.5.1", "Error: no valid recipients"}
	case s.tx.bdat != nil && s.tx.bdat.failed.Code != 0:
		refusal = s.tx.bdat.failed
	}
	if refusal.Code != 0 {
		if err := s.discardChunk(size); err != nil {
			s.readFailed(err)
			return Reply{}
		}
		if last && s.tx != nil {
			s.abortTx()
		}
		return refusal
	}
	b := s.tx.bdat
	if b == nil {
		if r, ok := s.dataCheck(ctx, "BDAT"); !ok {
			// The rest of the message is refused chunk by chunk.
			s.tx.bdat = &bdatState{failed: r}
			if err := s.discardChunk(size); err != nil {
				s.readFailed(err)
				return Reply{}
			}
			if last {
				s.abortTx()
			}
			return r
		}
		b = &bdatState{env: s.envelope(), result: make(chan error, 1)}
		pr, pw := io.Pipe()
		b.pw = pw
		go func(env *queueEnvelope, hdr string) {
			err := s.srv.queue.Enqueue(ctx, env, io.MultiReader(strings.NewReader(hdr), pr))
			pr.CloseWithError(errTransactionAborted)
			b.result <- err
		}(b.env, s.received(b.env))
		s.tx.bdat = b
	}
	connErr := s.copyChunk(b, size)
	if connErr != nil {
		b.abort(connErr)
		s.tx = nil
		s.readFailed(connErr)
		return Reply{}
	}
	if b.failed.Code != 0 {
		if last {
			s.tx = nil
		}
		return b.failed
	}
	if !last {
		return reply(250, "2.0.0", "Ok: %d bytes", size)
	}
	if r, ok := s.eodCheck(ctx); !ok {
		b.abort(errEODRejected)
		s.tx = nil
		return r
	}
	b.pw.Close()
	err := <-b.result
	b.pw = nil
	return s.finishMessage(b.env, err, nil, true, "BDAT")
}

// copyChunk moves size bytes from the client into the queue's pipe,
// turning bare LF into CRLF and enforcing message_size_limit. Once the
// queue has stopped reading (it failed) the rest is read and dropped.
func (s *session) copyChunk(b *bdatState, size int64) error {
	buf := make([]byte, 0, 8192)
	in := make([]byte, 4096)
	for size > 0 {
		s.setReadDeadline(s.opts.Timeouts.Data)
		got, err := io.ReadFull(s.r, in[:min(int64(len(in)), size)])
		size -= int64(got)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if b.failed.Code != 0 {
			continue
		}
		buf = buf[:0]
		for _, c := range in[:got] {
			if c == '\n' && !b.lastCR {
				buf = append(buf, '\r')
			}
			buf = append(buf, c)
			b.lastCR = c == '\r'
		}
		b.n += int64(len(buf))
		if s.opts.MessageSizeLimit > 0 && b.n > s.opts.MessageSizeLimit {
			b.abort(ErrMessageTooBig)
			b.failed = replyChunkTooBig
			s.logf("%s: reject: BDAT from %s: %s; from=<%s> proto=%s helo=<%s>", b.env.ID, s.namaddr(), b.failed.Line(), b.env.Sender, b.env.Protocol, s.helo)
			continue
		}
		if _, err := b.pw.Write(buf); err != nil {
			// Enqueue gave up; its error comes with the result.
			qerr := <-b.result
			b.pw = nil
			b.failed = replyQueueError
			if errors.Is(qerr, ErrMessageTooBig) {
				b.failed = replyChunkTooBig
			}
			if r, ok := cleanupReply(qerr); ok {
				b.failed = r
				continue
			}
			s.warnf("%s: queue file write error for message from %s: %v", b.env.ID, s.namaddr(), qerr)
		}
	}
	return nil
}

func (s *session) discardChunk(size int64) error {
	for size > 0 {
		s.setReadDeadline(s.opts.Timeouts.Data)
		n, err := io.CopyN(io.Discard, s.r, min(size, 65536))
		size -= n
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}
