package smtpd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"postcote/internal/queue"
)

// cmdHELO: RFC 5321 4.1.1.1. HELO (and EHLO) also abort a transaction.
func (s *session) cmdHELO(ctx context.Context, arg string) Reply {
	if arg == "" {
		return Reply{501, "5.5.4", "Syntax: HELO hostname"}
	}
	if r, ok := s.heloCheck(ctx, arg); !ok {
		return r
	}
	s.abortTx()
	s.helo, s.esmtp = printable(arg), false
	return Reply{250, "", s.opts.Hostname}
}

// cmdEHLO: RFC 5321 4.1.1.1, with the extension list of Postfix's order.
func (s *session) cmdEHLO(ctx context.Context, arg string) Reply {
	if arg == "" {
		return Reply{501, "5.5.4", "Syntax: EHLO hostname"}
	}
	if r, ok := s.heloCheck(ctx, arg); !ok {
		return r
	}
	s.abortTx()
	s.helo, s.esmtp = printable(arg), true
	lines := []string{s.opts.Hostname, "PIPELINING"}
	if s.opts.MessageSizeLimit > 0 {
		lines = append(lines, "SIZE "+strconv.FormatInt(s.opts.MessageSizeLimit, 10))
	} else {
		lines = append(lines, "SIZE")
	}
	if !s.opts.DisableVRFY {
		lines = append(lines, "VRFY")
	}
	if s.tlsState == nil && s.opts.TLS != nil && s.opts.TLSLevel != TLSNone {
		lines = append(lines, "STARTTLS")
	}
	if s.authOffered() {
		mechs := strings.Join(s.mechanisms(s.tlsState != nil), " ")
		lines = append(lines, "AUTH "+mechs)
		if s.opts.BrokenSASLAuthClients {
			lines = append(lines, "AUTH="+mechs)
		}
	}
	lines = append(lines, "ENHANCEDSTATUSCODES", "8BITMIME", "DSN", "SMTPUTF8", "CHUNKING")
	return Reply{250, "", strings.Join(lines, "\n")}
}

// heloCheck evaluates smtpd_helo_restrictions at HELO time when
// smtpd_delay_reject = no.
func (s *session) heloCheck(ctx context.Context, helo string) (Reply, bool) {
	if !s.opts.NoDelayReject {
		return Reply{}, true
	}
	st := s.checkState(nil)
	st.helo = printable(helo)
	d, err := s.srv.policy.evaluate(ctx, st, stageHelo)
	if err != nil {
		s.warnf("%s: %v", s.namaddr(), err)
	}
	if d.verdict == deny {
		s.rejectLog(s.lastCmd, d.reply, nil)
		return d.reply, false
	}
	return Reply{}, true
}

// cmdMAIL: RFC 5321 4.1.1.2 with the parameters of SIZE (RFC 1870),
// BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET/ENVID (RFC 3461) and AUTH
// (RFC 4954 5).
func (s *session) cmdMAIL(ctx context.Context, arg string) Reply {
	if s.opts.TLSLevel == TLSEncrypt && s.tlsState == nil {
		return replyNeedTLS
	}
	if s.opts.HeloRequired && s.helo == "" {
		return Reply{503, "5.5.1", "Error: send HELO/EHLO first"}
	}
	if s.tx != nil && s.tx.bdat != nil {
		return Reply{503, "5.5.1", "Error: MAIL after BDAT"}
	}
	if s.tx != nil {
		return Reply{503, "5.5.1", "Error: nested MAIL command"}
	}
	if r, over := s.mailRateExceeded(); over {
		return r
	}
	path, params, err := parseMailArg(arg, "FROM")
	if err == errPathSyntax {
		s.warnf("Illegal address syntax from %s in MAIL command: %.100s", s.namaddr(), printable(arg))
		return Reply{501, "5.1.7", "Bad sender address syntax"}
	}
	if err != nil {
		return Reply{501, "5.5.4", "Syntax: MAIL FROM:<address>"}
	}
	tx := &transaction{sender: path}
	seen := map[string]bool{}
	for _, p := range params {
		if seen[p.Key] {
			return reply(501, "5.5.4", "Error: duplicate %s parameter", p.Key)
		}
		seen[p.Key] = true
		switch p.Key {
		case "SIZE": // RFC 1870 6
			n, err := strconv.ParseInt(p.Value, 10, 64)
			if err != nil || n < 0 {
				return Reply{501, "5.5.4", "Bad message size syntax"}
			}
			tx.declared = n
		case "BODY": // RFC 6152 2
			switch v := strings.ToUpper(p.Value); v {
			case "7BIT", "8BITMIME":
				tx.env.BodyType = v
			default:
				return Reply{501, "5.5.4", "Unsupported BODY parameter value"}
			}
		case "SMTPUTF8": // RFC 6531 3.4
			if p.HasValue {
				return Reply{501, "5.5.4", "Bad SMTPUTF8 parameter syntax"}
			}
			tx.env.SMTPUTF8 = true
		case "RET": // RFC 3461 4.3
			switch v := strings.ToUpper(p.Value); v {
			case "FULL", "HDRS":
				tx.env.DSNRet = v
			default:
				return Reply{501, "5.5.4", "Bad RET parameter syntax"}
			}
		case "ENVID": // RFC 3461 4.4
			v, err := decodeXtext(p.Value)
			if err != nil || v == "" || len(v) > 100 {
				return Reply{501, "5.5.4", "Bad ENVID parameter syntax"}
			}
			tx.env.DSNEnvID = v
		case "AUTH": // RFC 4954 5: accepted; the submitter is not trusted
			if _, err := decodeXtext(p.Value); err != nil || !p.HasValue {
				return Reply{501, "5.5.4", "Bad AUTH parameter syntax"}
			}
		default:
			return reply(555, "5.5.4", "Unsupported option: %s", p.Key)
		}
	}
	if !path.ASCII() && !tx.env.SMTPUTF8 {
		return Reply{553, "5.6.7", "Must declare SMTPUTF8 to send unicode address"}
	}
	if s.opts.MessageSizeLimit > 0 && tx.declared > s.opts.MessageSizeLimit {
		return Reply{552, "5.3.4", "Message size exceeds fixed limit"}
	}
	if s.opts.NoDelayReject {
		st := s.checkState(nil)
		st.sender = &tx.sender
		d, err := s.srv.policy.evaluate(ctx, st, stageSender)
		if err != nil {
			s.warnf("%s: %v", s.namaddr(), err)
		}
		if d.verdict == deny {
			s.tx = tx // for the from= of the log line only
			s.rejectLog("MAIL", d.reply, nil)
			s.tx = nil
			return d.reply
		}
	}
	tx.env.Sender = path.Address()
	s.tx = tx
	return Reply{250, "2.1.0", "Ok"}
}

// cmdRCPT: RFC 5321 4.1.1.3 with NOTIFY and ORCPT (RFC 3461 4.1, 4.2).
// Restrictions run here (smtpd_delay_reject), then the implicit
// smtpd_reject_unlisted_recipient check.
func (s *session) cmdRCPT(ctx context.Context, arg string) Reply {
	if s.tx == nil {
		return Reply{503, "5.5.1", "Error: need MAIL command"}
	}
	if s.tx.bdat != nil {
		// RFC 3030 2: the envelope is complete once BDAT begins.
		return Reply{503, "5.5.1", "Error: RCPT after BDAT"}
	}
	path, params, err := parseMailArg(arg, "TO")
	if err == errPathSyntax || (err == nil && path.Null) {
		s.warnf("Illegal address syntax from %s in RCPT command: %.100s", s.namaddr(), printable(arg))
		return Reply{501, "5.1.3", "Bad recipient address syntax"}
	}
	if err != nil {
		return Reply{501, "5.5.4", "Syntax: RCPT TO:<address>"}
	}
	var rcpt = struct{ notify, orcpt string }{}
	seen := map[string]bool{}
	for _, p := range params {
		if seen[p.Key] {
			return reply(501, "5.5.4", "Error: duplicate %s parameter", p.Key)
		}
		seen[p.Key] = true
		switch p.Key {
		case "NOTIFY":
			v, err := parseNotify(p.Value)
			if err != nil {
				return Reply{501, "5.5.4", "Error: Bad NOTIFY parameter syntax"}
			}
			rcpt.notify = v
		case "ORCPT":
			v, err := parseORCPT(p.Value)
			if err != nil {
				return Reply{501, "5.5.4", "Error: Bad ORCPT parameter syntax"}
			}
			rcpt.orcpt = v
		default:
			return reply(555, "5.5.4", "Unsupported option: %s", p.Key)
		}
	}
	if !path.ASCII() && !s.tx.env.SMTPUTF8 {
		return Reply{553, "5.6.7", "Must declare SMTPUTF8 to send unicode address"}
	}
	if len(s.tx.env.Recipients) >= s.opts.RecipientLimit {
		return Reply{452, "4.5.3", "Error: too many recipients"}
	}
	if r, over := s.rcptRateExceeded(); over {
		return r
	}
	if r, ok := s.recipientCheck(ctx, &path); !ok {
		s.rejectLog("RCPT", r, &path)
		return r
	}
	if s.tx.env.ID == "" {
		// Postfix creates the queue file at the first accepted recipient.
		s.tx.env.ID = s.srv.queue.NewID()
		msg := fmt.Sprintf("%s: client=%s", s.tx.env.ID, s.namaddr())
		if s.authUser != "" {
			msg += fmt.Sprintf(", sasl_method=%s, sasl_username=%s", s.authMech, s.authUser)
		}
		s.logf("%s", msg)
	}
	s.tx.env.Recipients = append(s.tx.env.Recipients, queue.Recipient{
		Address: path.Address(), OrigAddress: path.Raw, DSNNotify: rcpt.notify, DSNORcpt: rcpt.orcpt,
	})
	return Reply{250, "2.1.5", "Ok"}
}

// recipientCheck runs the restriction lists for one recipient and the
// unlisted-recipient check; the reply is the refusal when ok is false.
func (s *session) recipientCheck(ctx context.Context, path *Path) (Reply, bool) {
	st := s.checkState(path)
	stages := []stage{stageRelay, stageRecipient}
	if !s.opts.NoDelayReject {
		stages = []stage{stageClient, stageHelo, stageSender, stageRelay, stageRecipient}
	}
	p := s.srv.policy
	d, err := p.evaluate(ctx, st, stages...)
	if err == nil && d.verdict != deny && p.implicitUnlisted {
		d, err = p.unlistedRecipient(ctx, st)
		if err != nil {
			d = decision{verdict: deny, reply: tempLookupFailure(st, stageRecipient)}
		}
	}
	if err != nil {
		s.warnf("%s: %v", s.namaddr(), err)
	}
	if d.verdict == deny {
		return d.reply, false
	}
	return Reply{}, true
}

// cmdRSET: RFC 5321 4.1.1.5.
func (s *session) cmdRSET(_ context.Context, arg string) Reply {
	if arg != "" {
		return Reply{501, "5.5.4", "Syntax: RSET"}
	}
	s.abortTx()
	return replyOK
}

// cmdNOOP: RFC 5321 4.1.1.9 (a parameter is allowed and ignored).
func (s *session) cmdNOOP(context.Context, string) Reply { return replyOK }

// cmdQUIT: RFC 5321 4.1.1.10.
func (s *session) cmdQUIT(context.Context, string) Reply {
	s.closing = true
	return Reply{221, "2.0.0", "Bye"}
}

// cmdVRFY: RFC 5321 4.1.1.6 and 3.5.3. Like Postfix (disable_vrfy_command
// = no) it runs the recipient checks and answers 252 for an address it
// would accept, without confirming a mailbox.
func (s *session) cmdVRFY(ctx context.Context, arg string) Reply {
	if s.opts.DisableVRFY {
		return Reply{502, "5.5.1", "VRFY command is disabled"}
	}
	if s.opts.TLSLevel == TLSEncrypt && s.tlsState == nil {
		return replyNeedTLS
	}
	if arg == "" {
		return Reply{501, "5.5.4", "Syntax: VRFY address"}
	}
	raw := arg
	if strings.HasPrefix(raw, "<") && strings.HasSuffix(raw, ">") {
		raw = raw[1 : len(raw)-1]
	}
	path, err := parsePath(raw)
	if err != nil || path.Null {
		return Reply{501, "5.1.3", "Bad recipient address syntax"}
	}
	if r, ok := s.recipientCheck(ctx, &path); !ok {
		s.rejectLog("VRFY", r, &path)
		return r
	}
	return Reply{252, "2.0.0", arg}
}
