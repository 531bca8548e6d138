package transport

import (
	"fmt"
	"io"
	"time"

	"postcote/internal/queue"
)

// transaction sends MAIL, RCPT and DATA (pipelined when the server offers
// PIPELINING, RFC 2920), the message, and reads one reply per accepted
// recipient after the final dot (RFC 2033 4.2), then says QUIT.
func (c *lmtpConn) transaction(env *queue.Envelope, size int64, body io.Reader, rcpts []int) []queue.Result {
	results := make([]queue.Result, len(rcpts))
	done := make([]bool, len(rcpts))
	for i, rc := range rcpts {
		results[i].Rcpt = rc
	}
	// finish gives every recipient without a verdict the same one.
	finish := func(r queue.Result) []queue.Result {
		for i := range results {
			if !done[i] {
				rc := results[i].Rcpt
				results[i] = r
				results[i].Rcpt = rc
			}
		}
		return results
	}
	fromReply := func(rep lmtpReply, cmd string) queue.Result {
		r := queue.Result{DSN: rep.status(), RemoteReply: rep.String(), RemoteMTA: c.dest.host,
			Reply: fmt.Sprintf("host %s said: %s (in reply to %s command)", c.dest.host, rep, cmd)}
		switch {
		case rep.code >= 500:
			r.Status = queue.StatusBounced
		case rep.code >= 400:
			r.Status = queue.StatusDeferred
		default:
			r.Status = queue.StatusSent
			r.Reply = rep.String()
		}
		return r
	}

	_, utf8ok := c.ext["SMTPUTF8"]
	if env.SMTPUTF8 && !utf8ok && needsUTF8(env, rcpts) {
		return finish(queue.Result{Status: queue.StatusBounced, DSN: "5.6.7",
			Reply: fmt.Sprintf("SMTPUTF8 is required, but was not offered by host %s", c.dest.host)})
	}
	mail := "MAIL FROM:<" + env.Sender + ">"
	if _, ok := c.ext["SIZE"]; ok && size > 0 {
		mail += fmt.Sprintf(" SIZE=%d", size)
	}
	if _, ok := c.ext["8BITMIME"]; ok && env.BodyType == "8BITMIME" {
		mail += " BODY=8BITMIME"
	}
	if env.SMTPUTF8 && utf8ok {
		mail += " SMTPUTF8"
	}
	cmds := []string{mail}
	names := []string{"MAIL FROM"}
	for _, rc := range rcpts {
		cmds = append(cmds, "RCPT TO:<"+env.Recipients[rc].Address+">")
		names = append(names, "RCPT TO")
	}
	cmds = append(cmds, "DATA")
	names = append(names, "DATA")

	cmdTimeout := orDuration(c.l.CommandTimeout, 300*time.Second)
	_, pipelining := c.ext["PIPELINING"]
	// Without PIPELINING each command waits for its reply; with it, all
	// go in one write and the replies are read in order.
	var accepted []int
	var mailFailed *lmtpReply
	sent := 0
	send := func(upTo int) error {
		for ; sent < upTo; sent++ {
			c.w.WriteString(cmds[sent] + "\r\n")
		}
		c.deadline(cmdTimeout)
		return c.w.Flush()
	}
	var dataRep lmtpReply
	for i := range cmds {
		if !pipelining || i == 0 {
			upTo := i + 1
			if pipelining {
				upTo = len(cmds)
			}
			if err := send(upTo); err != nil {
				return finish(errResult(c.lost(err, "sending "+names[i]), "4.4.2"))
			}
		}
		c.deadline(cmdTimeout)
		rep, err := c.readReply()
		if err != nil {
			return finish(errResult(c.lost(err, "receiving the "+names[i]+" reply"), "4.4.2"))
		}
		switch {
		case i == 0:
			if rep.code != 250 {
				mailFailed = &rep
				if !pipelining {
					c.quit()
					return finish(fromReply(rep, "MAIL FROM"))
				}
			}
		case i < len(cmds)-1:
			if mailFailed != nil {
				continue
			}
			if rep.code == 250 || rep.code == 251 {
				accepted = append(accepted, i-1)
			} else {
				results[i-1] = fromReply(rep, "RCPT TO")
				results[i-1].Rcpt = rcpts[i-1]
				done[i-1] = true
			}
			if !pipelining && i == len(cmds)-2 && len(accepted) == 0 {
				c.quit()
				return results
			}
		default:
			dataRep = rep
		}
	}
	if mailFailed != nil {
		c.abortData(dataRep)
		return finish(fromReply(*mailFailed, "MAIL FROM"))
	}
	if len(accepted) == 0 {
		c.abortData(dataRep)
		return results
	}
	if dataRep.code != 354 {
		c.quit()
		return finish(fromReply(dataRep, "DATA"))
	}
	c.deadline(orDuration(c.l.DataTimeout, 600*time.Second))
	if err := writeDotStuffed(c.w, body); err != nil {
		if isReadSide(err) {
			// The queue file failed us: the server gets nothing complete.
			c.c.Close()
			return finish(queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()})
		}
		return finish(errResult(c.lost(err, "sending message body"), "4.4.2"))
	}
	for _, i := range accepted {
		c.deadline(orDuration(c.l.DataTimeout, 600*time.Second))
		rep, err := c.readReply()
		if err != nil {
			return finish(errResult(c.lost(err, "receiving the end of DATA reply"), "4.4.2"))
		}
		results[i] = fromReply(rep, "end of DATA")
		results[i].Rcpt = rcpts[i]
		done[i] = true
	}
	c.quit()
	return results
}

// abortData ends a transaction whose DATA the server accepted although no
// recipient was: an empty message ends it, then RSET and QUIT.
func (c *lmtpConn) abortData(dataRep lmtpReply) {
	if dataRep.code == 354 {
		c.cmd(".")
		c.readReply()
	}
	c.quit()
}

func (c *lmtpConn) quit() {
	c.deadline(orDuration(c.l.CommandTimeout, 300*time.Second))
	if c.cmd("QUIT") == nil {
		c.readReply()
	}
}

// needsUTF8 says whether the envelope has a non-ASCII address.
func needsUTF8(env *queue.Envelope, rcpts []int) bool {
	ascii := func(s string) bool {
		for i := 0; i < len(s); i++ {
			if s[i] >= 0x80 {
				return false
			}
		}
		return true
	}
	if !ascii(env.Sender) {
		return true
	}
	for _, rc := range rcpts {
		if !ascii(env.Recipients[rc].Address) {
			return true
		}
	}
	return false
}

// readErr marks an error reading the message content.
type readErr struct{ err error }

func (e readErr) Error() string { return e.err.Error() }
func (e readErr) Unwrap() error { return e.err }

func isReadSide(err error) bool {
	_, ok := err.(readErr)
	return ok
}

// writeDotStuffed sends the content with "." doubled at line starts and
// bare LF made CRLF (RFC 5321 4.5.2), then the end-of-data line.
func writeDotStuffed(w interface {
	io.Writer
	WriteByte(byte) error
	Flush() error
}, body io.Reader) error {
	buf := make([]byte, 32<<10)
	lineStart, prevCR := true, false
	for {
		n, err := body.Read(buf)
		for _, b := range buf[:n] {
			if lineStart && b == '.' {
				if werr := w.WriteByte('.'); werr != nil {
					return werr
				}
			}
			if b == '\n' && !prevCR {
				if werr := w.WriteByte('\r'); werr != nil {
					return werr
				}
			}
			if werr := w.WriteByte(b); werr != nil {
				return werr
			}
			lineStart, prevCR = b == '\n', b == '\r'
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return readErr{err}
		}
	}
	end := ".\r\n"
	if !lineStart {
		end = "\r\n.\r\n"
	}
	if _, err := io.WriteString(w, end); err != nil {
		return err
	}
	return w.Flush()
}
