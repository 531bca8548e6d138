package smtpd

// smtpd_data_restrictions and smtpd_end_of_data_restrictions (Postfix's
// smtpd_check_data and smtpd_check_eod). Both see the envelope; the
// recipient only when there is exactly one, since the verdict applies to
// all recipients alike. A refusal at end of data makes the content reader
// fail, so the queue stores nothing.

import (
	"context"
	"errors"
)

// errEODRejected ends the content stream of a message that
// smtpd_end_of_data_restrictions refused.
var errEODRejected = errors.New("message refused by smtpd_end_of_data_restrictions")

// dataState is the check state of the DATA and end-of-data stages.
func (s *session) dataState() *checkState {
	st := s.checkState(s.singleRcpt())
	st.atRCPT = false
	return st
}

// singleRcpt is the transaction's recipient when it has exactly one.
func (s *session) singleRcpt() *Path {
	if s.tx == nil || len(s.tx.env.Recipients) != 1 {
		return nil
	}
	p, err := parsePath(s.tx.env.Recipients[0].OrigAddress)
	if err != nil {
		return nil
	}
	return &p
}

// stageCheck evaluates the DATA or end-of-data list; cmd names the
// command in the reject log line. The reply is the refusal when ok is
// false.
func (s *session) stageCheck(ctx context.Context, sg stage, cmd string) (Reply, bool) {
	p := s.srv.policy
	if len(p.lists[sg]) == 0 {
		return Reply{}, true
	}
	st := s.dataState()
	if cmd == "DATA" && s.r.Buffered() > 0 {
		// Content sent before the 354 (RFC 2920 3.1: DATA ends a
		// pipelined group): reject_unauth_pipelining refuses it even
		// from a client that was offered PIPELINING. (BDAT data
		// follows its command by design.)
		st.pipelined = true
	}
	d, err := p.evaluate(ctx, st, sg)
	if err != nil {
		s.warnf("%s: %v", s.namaddr(), err)
	}
	if d.verdict != deny {
		return Reply{}, true
	}
	s.rejectLog(cmd, d.reply, st.rcpt)
	return d.reply, false
}

// dataCheck runs smtpd_data_restrictions for DATA or the first BDAT.
func (s *session) dataCheck(ctx context.Context, cmd string) (Reply, bool) {
	return s.stageCheck(ctx, stageData, cmd)
}

// eodCheck runs smtpd_end_of_data_restrictions once the content is in.
func (s *session) eodCheck(ctx context.Context) (Reply, bool) {
	return s.stageCheck(ctx, stageEOD, "END-OF-MESSAGE")
}
