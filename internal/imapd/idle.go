package imapd

import (
	"strings"
	"time"
)

// cmdIdle is RFC 2177. Deliveries and other sessions' changes wake the
// session through Mailbox.Changes; changes by other programs are found
// by polling every PollInterval; "* OK Still here" goes out every
// IdleKeepalive so that NAT boxes keep the connection.
func (s *session) cmdIdle(c *command, p *parser) (status, error) {
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	ctx := s.ctx
	s.w.WriteString("+ idling\r\n")
	// Changes that arrived before IDLE are reported at once.
	if s.sel != nil {
		if err := s.sendUpdates(ctx, true); err != nil {
			s.opts.Logger.Printf(s.logName(), "Mailbox sync failed: %v", err)
		}
	}
	if err := s.w.Flush(); err != nil {
		return status{}, err
	}

	type lineResult struct {
		line string
		err  error
	}
	done := make(chan lineResult, 1)
	// The client may stay idle up to the autologout time (RFC 2177 3).
	s.rawConn.SetReadDeadline(s.opts.Now().Add(s.opts.IdleTimeout))
	go func() {
		p.reset(s.opts.MaxLineLength)
		line, err := p.readWhile(func(b byte) bool { return b != '\r' && b != '\n' })
		if err == nil {
			err = p.crlf()
		}
		done <- lineResult{line, err}
	}()

	var changes <-chan struct{}
	if s.sel != nil {
		changes = s.sel.mbox.Changes()
	}
	poll := time.NewTicker(s.opts.PollInterval)
	defer poll.Stop()
	keepalive := time.NewTicker(s.opts.IdleKeepalive)
	defer keepalive.Stop()
	for {
		select {
		case r := <-done:
			if r.err != nil {
				return status{}, r.err
			}
			if !strings.EqualFold(r.line, "DONE") {
				return bad("Expected DONE."), nil
			}
			return ok("Idle completed."), nil
		case <-changes:
			if err := s.sendUpdates(ctx, true); err != nil {
				s.opts.Logger.Printf(s.logName(), "Mailbox sync failed: %v", err)
			}
		case <-poll.C:
			if s.sel != nil {
				if err := s.sendUpdates(ctx, true); err != nil {
					s.opts.Logger.Printf(s.logName(), "Mailbox sync failed: %v", err)
				}
			}
		case <-keepalive.C:
			s.w.WriteString("* OK Still here\r\n")
		case <-s.interrupted:
			// Shutdown: the reader goroutine ends when the connection
			// closes.
			s.bye("Server shutting down.")
			s.conn.Close()
			<-done
			return status{}, errShutdown
		}
		if err := s.w.Flush(); err != nil {
			s.conn.Close()
			<-done
			return status{}, err
		}
	}
}
