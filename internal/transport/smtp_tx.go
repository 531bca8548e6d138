package transport

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"postcote/internal/queue"
)

// content is the queued message and what a scan of it found.
type content struct {
	open       func() (io.ReadCloser, error)
	eightBit   bool // a byte >= 0x80 anywhere
	headerUTF8 bool // a byte >= 0x80 in the top-level header (SMTPUTF8 content)
}

// scanContent reads the message once to learn whether it has 8-bit data.
func scanContent(open func() (io.ReadCloser, error)) (*content, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	c := &content{open: open}
	br := bufio.NewReaderSize(rc, 64<<10)
	inHeader := true
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if inHeader && (len(bytes.TrimRight(line, "\r\n")) == 0) && line[len(line)-1] == '\n' {
				inHeader = false
			}
			for _, b := range line {
				if b >= 0x80 {
					c.eightBit = true
					if inHeader {
						c.headerUTF8 = true
					}
					break
				}
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			return c, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// transaction sends MAIL, RCPT and DATA (pipelined when the server offers
// PIPELINING, RFC 2920 3.1), the content, and maps the replies to one
// result per recipient: a RCPT reply for a refused recipient, the reply
// to the end of DATA for the accepted ones.
func (c *smtpConn) transaction(rcpts []int) []queue.Result {
	j := c.job
	env := j.env
	host := j.target.host()
	c.mailCode = 0
	results := make([]queue.Result, len(rcpts))
	done := make([]bool, len(rcpts))
	for i, rc := range rcpts {
		results[i].Rcpt = rc
	}
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
		r := queue.Result{DSN: rep.status(), RemoteReply: rep.String(), RemoteMTA: j.target.name,
			Reply: fmt.Sprintf("host %s said: %s (in reply to %s command)", host, rep, cmd)}
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
	lostResult := func(err error) queue.Result {
		r := errResult(err, "4.4.2")
		r.RemoteMTA = j.target.name
		return r
	}

	_, utf8ok := c.ext["SMTPUTF8"]
	if env.SMTPUTF8 && !utf8ok && (needsUTF8(env, rcpts) || j.content.headerUTF8) {
		// Postfix: bounce rather than mangle addresses or headers (RFC 6531 3.2).
		return finish(queue.Result{Status: queue.StatusBounced, DSN: "5.6.7", RemoteMTA: j.target.name,
			Reply: fmt.Sprintf("SMTPUTF8 is required, but was not offered by host %s", host)})
	}
	if arg, ok := c.ext["SIZE"]; ok {
		if limit, err := strconv.ParseInt(strings.TrimSpace(arg), 10, 64); err == nil && limit > 0 && j.size > limit {
			// RFC 1870 6: do not send what the server said it will refuse.
			return finish(queue.Result{Status: queue.StatusBounced, DSN: "5.3.4", RemoteMTA: j.target.name,
				Reply: fmt.Sprintf("message size %d exceeds size limit %d of server %s", j.size, limit, host)})
		}
	}
	_, has8 := c.ext["8BITMIME"]
	_, dsnOK := c.ext["DSN"]
	_, pipe := c.ext["PIPELINING"]
	downgrade := j.content.eightBit && !has8 && !j.s.DisableMIMEConversion

	mail := "MAIL FROM:<" + env.Sender + ">"
	if _, ok := c.ext["SIZE"]; ok && j.size > 0 {
		mail += fmt.Sprintf(" SIZE=%d", j.size)
	}
	if has8 && (env.BodyType == "8BITMIME" || j.content.eightBit) {
		mail += " BODY=8BITMIME"
	}
	if env.SMTPUTF8 && utf8ok {
		mail += " SMTPUTF8"
	}
	if dsnOK {
		if env.DSNRet != "" {
			mail += " RET=" + strings.ToUpper(env.DSNRet)
		}
		if env.DSNEnvID != "" {
			mail += " ENVID=" + xtext(env.DSNEnvID)
		}
	}
	cmds := []string{mail}
	for _, rc := range rcpts {
		r := env.Recipients[rc]
		line := "RCPT TO:<" + r.Address + ">"
		if dsnOK {
			if r.DSNNotify != "" {
				line += " NOTIFY=" + strings.ToUpper(r.DSNNotify)
			}
			if r.DSNORcpt != "" && validORCPT(r.DSNORcpt) {
				line += " ORCPT=" + r.DSNORcpt
			}
		}
		cmds = append(cmds, line)
	}
	cmds = append(cmds, "DATA")

	s := j.s
	timeouts := func(i int) time.Duration {
		switch {
		case i == 0:
			return orDuration(s.MailTimeout, 300*time.Second)
		case i == len(cmds)-1:
			return orDuration(s.DataInitTimeout, 120*time.Second)
		}
		return orDuration(s.RcptTimeout, 300*time.Second)
	}
	names := func(i int) string {
		switch {
		case i == 0:
			return "MAIL FROM"
		case i == len(cmds)-1:
			return "DATA"
		}
		return "RCPT TO"
	}
	// Send the group (all at once with PIPELINING, else one by one) and
	// read the replies in order.
	var mailRep, dataRep lmtpReply
	accepted := 0
	sent := 0
	send := func(upto int) error {
		for ; sent < upto; sent++ {
			c.w.WriteString(cmds[sent] + "\r\n")
		}
		return c.w.Flush()
	}
	for i := range cmds {
		c.deadline(timeouts(i))
		if pipe {
			if i == 0 {
				if err := send(len(cmds)); err != nil {
					return finish(lostResult(c.lost(err, "sending MAIL FROM")))
				}
			}
		} else if err := send(i + 1); err != nil {
			return finish(lostResult(c.lost(err, "sending "+names(i))))
		}
		rep, err := readSMTPReply(c.r)
		if err != nil {
			return finish(lostResult(c.lost(err, "receiving the "+names(i)+" reply")))
		}
		switch {
		case i == 0:
			mailRep = rep
			c.mailCode = rep.code
			if rep.code != 250 && !pipe {
				c.rset()
				return finish(fromReply(rep, "MAIL FROM"))
			}
		case i == len(cmds)-1:
			dataRep = rep
		default:
			k := i - 1
			if mailRep.code != 250 {
				continue // pipelined replies after a refused MAIL
			}
			if rep.code == 250 || rep.code == 251 {
				accepted++
				continue
			}
			results[k] = fromReply(rep, "RCPT TO")
			results[k].Rcpt = rcpts[k]
			done[k] = true
		}
		if !pipe && i > 0 && i == len(cmds)-2 && accepted == 0 {
			// Nothing accepted: no DATA (RFC 5321 3.3).
			c.rset()
			return results
		}
	}
	if mailRep.code != 250 {
		if dataRep.code == 354 {
			c.abortData()
		}
		return finish(fromReply(mailRep, "MAIL FROM"))
	}
	if accepted == 0 {
		if dataRep.code == 354 {
			// RFC 2920 3.1: DATA accepted without recipients is ended
			// with an empty message the server must refuse.
			c.abortData()
		}
		return results
	}
	if dataRep.code != 354 {
		return finish(fromReply(dataRep, "DATA"))
	}

	body, err := j.content.open()
	if err != nil {
		c.close()
		return finish(queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()})
	}
	defer body.Close()
	var src io.Reader = body
	if downgrade {
		data, err := io.ReadAll(body)
		if err != nil {
			c.close()
			return finish(queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()})
		}
		src = bytes.NewReader(downgradeMIME(data, s.HeloName, string(env.ID)))
	}
	dw := bufio.NewWriterSize(&deadlineWriter{c: c.c, d: orDuration(s.DataXferTimeout, 180*time.Second)}, 32<<10)
	if err := writeDotStuffed(dw, src); err != nil {
		if isReadSide(err) {
			c.close()
			return finish(queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()})
		}
		return finish(lostResult(c.lost(err, "sending message body")))
	}
	c.deadline(orDuration(s.DataDoneTimeout, 600*time.Second))
	rep, err := readSMTPReply(c.r)
	if err != nil {
		return finish(lostResult(c.lost(err, "sending end of data -- message may be sent more than once")))
	}
	r := fromReply(rep, "end of DATA")
	for i := range results {
		if done[i] {
			continue
		}
		rr := r
		rr.Rcpt = rcpts[i]
		if rr.Status == queue.StatusSent && strings.Contains(strings.ToUpper(env.Recipients[rcpts[i]].DSNNotify), "SUCCESS") {
			// RFC 3461 5.2: a DSN-capable server reports success itself;
			// otherwise the notice says "relayed".
			rr.DSNPassedOn, rr.Relayed = dsnOK, !dsnOK
		}
		results[i] = rr
		done[i] = true
	}
	return results
}

// rset ends a transaction that went nowhere.
func (c *smtpConn) rset() {
	c.deadline(orDuration(c.job.s.MailTimeout, 300*time.Second)) // smtp_rset_timeout's default is the same 300s
	if c.cmd("RSET") == nil {
		readSMTPReply(c.r)
	}
}

// abortData answers a 354 that came with no accepted recipient.
func (c *smtpConn) abortData() {
	c.deadline(orDuration(c.job.s.DataDoneTimeout, 600*time.Second))
	if c.cmd(".") == nil {
		readSMTPReply(c.r)
	}
}

// quit ends the session (RFC 5321 4.1.1.10).
func (c *smtpConn) quit() {
	c.deadline(orDuration(c.job.s.QuitTimeout, 300*time.Second))
	if c.cmd("QUIT") == nil {
		readSMTPReply(c.r)
	}
}

// deadlineWriter pushes the deadline forward before each write, so
// smtp_data_xfer_timeout bounds each write, not the whole transfer.
type deadlineWriter struct {
	c net.Conn
	d time.Duration
}

func (w *deadlineWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.d))
	return w.c.Write(p)
}

// xtext encodes an ENVID value (RFC 3461 4): '+', '=' and characters
// outside '!'..'~' become "+HH".
func xtext(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if ch < '!' || ch > '~' || ch == '+' || ch == '=' {
			fmt.Fprintf(&b, "+%02X", ch)
			continue
		}
		b.WriteByte(ch)
	}
	return b.String()
}

// validORCPT accepts "addr-type;xtext" with no spaces or control
// characters, so a stored value cannot inject a command.
func validORCPT(s string) bool {
	t, v, ok := strings.Cut(s, ";")
	if !ok || t == "" || v == "" || len(s) > 500 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
