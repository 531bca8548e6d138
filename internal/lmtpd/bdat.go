package lmtpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// cmdBDAT takes one chunk (RFC 3030 2): "BDAT size [LAST]" followed by
// exactly size octets, binary and without dot-stuffing. Every chunk's
// octets are read even when the command fails, so the session stays in
// step. A chunk before LAST gets one reply; LAST gets one reply per
// recipient, as DATA's dot does (RFC 2033 4.2). It returns true when the
// connection must end.
func (s *session) cmdBDAT(ctx context.Context, arg string) bool {
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 || (len(f) == 2 && !strings.EqualFold(f[1], "LAST")) {
		// Without a size the chunk cannot be skipped: end the session
		// rather than read message content as commands.
		s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid BDAT parameters"})
		return true
	}
	size, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || size < 0 {
		s.send(reply{Code: 501, Enhanced: "5.5.4", Text: "Invalid BDAT size"})
		return true
	}
	last := len(f) == 2
	var refuse *reply
	switch {
	case s.tx == nil:
		refuse = &replyNeedMail
	case len(s.tx.rcpts) == 0:
		refuse = &replyNoRcpts
	}
	if refuse != nil {
		if err := s.skip(size); err != nil {
			return true
		}
		s.send(*refuse)
		return false
	}
	tx := s.tx
	if tx.chunks == nil {
		tx.chunks = &spool{dir: s.opts.SpoolDir}
		s.state = "DATA"
	}
	switch {
	case tx.chunkErr != nil:
		if err := s.skip(size); err != nil {
			return true
		}
	case s.opts.MaxMessageSize > 0 && tx.chunks.n+size > s.opts.MaxMessageSize:
		if err := s.skip(size); err != nil {
			return true
		}
		tx.chunkErr = &reply{Code: 552, Enhanced: "5.3.4", Text: "Message size exceeds administrative limit"}
	default:
		n, err := io.Copy(tx.chunks, io.LimitReader(deadlineReader{s}, size))
		if err == nil && n < size {
			err = io.ErrUnexpectedEOF
		}
		var se spoolError
		if errors.As(err, &se) {
			s.logf("cannot spool message: %v", err)
			tx.chunkErr = &reply{Code: 451, Enhanced: "4.3.0", Text: "Temporary internal failure"}
			if err := s.skip(size - n); err != nil {
				return true
			}
		} else if err != nil {
			s.logf("Disconnect from %s during BDAT: %v", s.peer(), err)
			return true
		}
	}
	if !last {
		if tx.chunkErr != nil {
			s.send(*tx.chunkErr)
		} else {
			s.send(reply{Code: 250, Enhanced: "2.0.0", Text: fmt.Sprintf("Added %d octets", size)})
		}
		return false
	}
	s.tx = nil
	s.transCount++
	defer tx.chunks.close()
	return s.finish(ctx, tx, tx.chunks, tx.chunkErr)
}

// skip reads and drops n octets of a refused chunk.
func (s *session) skip(n int64) error {
	_, err := io.CopyN(io.Discard, deadlineReader{s}, n)
	if err != nil {
		s.logf("Disconnect from %s during BDAT: %v", s.peer(), err)
	}
	return err
}

// deadlineReader reads from the session's buffered reader, renewing the
// read deadline before each read.
type deadlineReader struct{ s *session }

func (r deadlineReader) Read(p []byte) (int, error) {
	r.s.conn().SetReadDeadline(time.Now().Add(r.s.opts.Timeout))
	return r.s.r.Read(p)
}
