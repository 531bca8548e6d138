package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Enqueue reads content to EOF and queues it with env. It returns nil only
// once the message is durable: its record (and, for a large message, its
// file and that file's directory entry) are fsynced. If reading fails or
// the content exceeds MaxMessageSize (errors.Is(err, ErrMessageTooBig)),
// nothing is queued. env.ID is assigned when empty and env.Arrival when
// zero; the recipients' delivery state starts as given (normally Pending).
func (q *Queue) Enqueue(ctx context.Context, env *Envelope, content io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pending := 0
	for i := range env.Recipients {
		if env.Recipients[i].Status == Pending {
			pending++
		}
	}
	if pending == 0 {
		return fmt.Errorf("queue: enqueue: %w", ErrNoRecipients)
	}
	if env.ID == "" {
		env.ID = q.NewID()
	} else if err := checkID(env.ID); err != nil {
		return err
	}
	if env.Arrival.IsZero() {
		env.Arrival = q.now()
	}
	if err := q.checkSpace(0); err != nil {
		return err
	}
	inline, size, large, err := q.readContent(env.ID, content)
	if err != nil {
		return err
	}
	if err := q.checkSpace(size); err != nil {
		if large {
			os.Remove(q.largePath(env.ID))
		}
		return err
	}
	q.mu.Lock()
	_, dup := q.msgs[env.ID]
	q.mu.Unlock()
	if dup {
		if large {
			os.Remove(q.largePath(env.ID))
		}
		return fmt.Errorf("queue: enqueue: queue ID %s already in use", env.ID)
	}
	if err := q.put(ctx, env, inline, size, large); err != nil {
		// A large file left behind is removed at the next Open if its
		// record never made it.
		return err
	}
	if mid := findMessageID(inline); mid != "" {
		q.logf("cleanup", "%s: message-id=%s", env.ID, mid)
	}
	q.logf("qmgr", "%s: from=<%s>, size=%d, nrcpt=%d (queue active)", env.ID, clean(env.Sender), size, len(env.Recipients))
	return nil
}

// put commits a message record (used by Enqueue and for bounces). For a
// large message the content is already in its own durable file.
func (q *Queue) put(ctx context.Context, env *Envelope, inline []byte, size int64, large bool) error {
	p := q.messageRecord(env, inline, size, large)
	if len(p.data) > maxRecord/2 {
		return fmt.Errorf("queue: envelope of %d recipients too large to queue", len(env.Recipients))
	}
	return q.commit(ctx, []pending{p})
}

func (q *Queue) messageRecord(env *Envelope, inline []byte, size int64, large bool) pending {
	var flags uint64
	if large {
		flags |= flagLarge
		inline = nil
	}
	c := cloneEnvelope(env)
	data, coff := encodeMessage(env.ID, &c, flags, zeroTime(), size, inline)
	return pending{data: data, rec: &record{typ: recMessage, id: env.ID, env: c, flags: flags, size: size, contentOff: coff}}
}

// readContent reads the message. Up to LargeThreshold bytes stay in
// memory; a larger message is streamed to large/ID, fsynced with its
// directory entry. It returns the in-memory part (all of it, or the first
// LargeThreshold bytes of a large message, for header scanning).
func (q *Queue) readContent(id ID, r io.Reader) ([]byte, int64, bool, error) {
	limit := q.opts.MaxMessageSize
	var buf bytes.Buffer
	thr := q.opts.LargeThreshold
	if limit >= 0 && limit < thr {
		thr = limit
	}
	n, err := io.CopyN(&buf, r, thr+1)
	if err == io.EOF {
		return buf.Bytes(), n, false, nil
	}
	if err != nil {
		return nil, 0, false, fmt.Errorf("queue: read message: %w", err)
	}
	if limit >= 0 && n > limit {
		// The rest is left unread: skipping what the client still sends
		// is the protocol layer's business (RFC 5321 4.5.3.1.10).
		return nil, 0, false, fmt.Errorf("queue: message exceeds %d bytes: %w", limit, ErrMessageTooBig)
	}
	// Large message: its own file.
	path := q.largePath(id)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, 0, false, fmt.Errorf("queue: create %s: %w", path, err)
	}
	fail := func(err error) ([]byte, int64, bool, error) {
		f.Close()
		os.Remove(path)
		return nil, 0, false, err
	}
	head := buf.Bytes()
	if _, err := f.Write(head); err != nil {
		return fail(fmt.Errorf("queue: write %s: %w", path, err))
	}
	var src io.Reader = r
	if limit >= 0 {
		src = io.LimitReader(r, limit-n+1)
	}
	m, err := io.Copy(f, src)
	if err != nil {
		return fail(fmt.Errorf("queue: read message: %w", err))
	}
	total := n + m
	if limit >= 0 && total > limit {
		return fail(fmt.Errorf("queue: message exceeds %d bytes: %w", limit, ErrMessageTooBig))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("queue: sync %s: %w", path, err))
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, 0, false, fmt.Errorf("queue: close %s: %w", path, err)
	}
	if err := syncDir(q.largeDir()); err != nil {
		os.Remove(path)
		return nil, 0, false, fmt.Errorf("queue: %w", err)
	}
	return head, total, true, nil
}

// checkSpace refuses mail when the spool's file system has less than
// QueueMinFree bytes free (after adding size), as Postfix's smtpd does
// with queue_minfree.
func (q *Queue) checkSpace(size int64) error {
	if q.opts.QueueMinFree <= 0 {
		return nil
	}
	free, err := freeSpace(q.dir)
	if err != nil {
		return fmt.Errorf("queue: check free space: %w", err)
	}
	if free < q.opts.QueueMinFree+size {
		return fmt.Errorf("queue: %d bytes free, queue_minfree is %d: %w", free, q.opts.QueueMinFree, ErrInsufficientStorage)
	}
	return nil
}

// findMessageID returns the Message-ID header value (RFC 5322 3.6.4) from
// the header section at the start of msg, unfolded and trimmed, or "".
func findMessageID(msg []byte) string {
	const limit = 256 << 10
	if len(msg) > limit {
		msg = msg[:limit]
	}
	var val []byte
	in := false
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break // end of header section
		}
		if line[0] == ' ' || line[0] == '\t' {
			if in {
				val = append(val, ' ')
				val = append(val, bytes.TrimSpace(line)...)
			}
			continue
		}
		if in {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon > 0 && strings.EqualFold(string(bytes.TrimRight(line[:colon], " \t")), "Message-ID") {
			in = true
			val = append(val, bytes.TrimSpace(line[colon+1:])...)
		}
	}
	s := string(bytes.TrimSpace(val))
	if len(s) > 250 {
		s = s[:250]
	}
	return clean(s)
}

// clean makes s safe for one log line: control characters become '?'.
func clean(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] < 0x20 || b[j] == 0x7f {
					b[j] = '?'
				}
			}
			return string(b)
		}
	}
	return s
}

func zeroTime() time.Time { return time.Time{} }
