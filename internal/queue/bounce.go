package queue

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

type noticeKind int

const (
	noticeFailure noticeKind = iota // RFC 3464 Action: failed
	noticeDelay                     // RFC 3464 Action: delayed
	noticeSuccess                   // RFC 3464 Action: delivered or relayed
)

// wantsNotice applies RFC 3461 4.1 NOTIFY: NEVER means no notice at all;
// a list names the events wanted; without NOTIFY, failures are reported
// and, as Postfix does, delays too (when delay_warning_time is set), but
// never successes.
func wantsNotice(notify string, kind noticeKind) bool {
	if notify == "" {
		return kind != noticeSuccess
	}
	want := "FAILURE"
	switch kind {
	case noticeDelay:
		want = "DELAY"
	case noticeSuccess:
		want = "SUCCESS"
	}
	for _, k := range strings.Split(notify, ",") {
		k = strings.ToUpper(strings.TrimSpace(k))
		if k == "NEVER" {
			return false
		}
		if k == want {
			return true
		}
	}
	return false
}

// failureNotice builds the non-delivery report for the recipients in
// failed, or returns nil when none is due (null sender, NOTIFY).
func (q *Queue) failureNotice(env *Envelope, failed []int, msg *Message, now time.Time) *pending {
	return q.notice(noticeFailure, env, failed, msg, now, nil)
}

// delayNotice builds a delay warning for the recipients in deferred.
func (q *Queue) delayNotice(env *Envelope, deferred []int, msg *Message, now time.Time) *pending {
	return q.notice(noticeDelay, env, deferred, msg, now, nil)
}

// successNotice builds a delivery report (RFC 3461 NOTIFY=SUCCESS) for
// the recipients in sent; relayed[i] marks those handed to an MTA that
// does not do DSN (Action: relayed, RFC 3464 2.3.3), the others were
// delivered (Action: delivered).
func (q *Queue) successNotice(env *Envelope, sent []int, relayed map[int]bool, msg *Message, now time.Time) *pending {
	return q.notice(noticeSuccess, env, sent, msg, now, relayed)
}

func (q *Queue) notice(kind noticeKind, env *Envelope, idx []int, msg *Message, now time.Time, relayed map[int]bool) *pending {
	if env.Sender == "" {
		return nil // never a notice about a notice (RFC 3461 6.2, RFC 5321 4.5.5)
	}
	var which []int
	for _, i := range idx {
		if wantsNotice(env.Recipients[i].DSNNotify, kind) {
			which = append(which, i)
		}
	}
	if len(which) == 0 {
		return nil
	}
	return q.makeNotice(noticeSpec{kind: kind, to: env.Sender}, env, which, msg, now, relayed)
}

// noticeSpec says who a notice goes to and how it reads.
type noticeSpec struct {
	kind noticeKind
	to   string // envelope recipient and To: header
	// from is the envelope sender: "" for a notice to the sender, the
	// double-bounce address for postmaster notices (Postfix: so that a
	// postmaster notice that fails is recognised and dropped).
	from string
	// postmaster is Postfix's POSTMASTER_COPY: the postmaster subject,
	// no boiler-plate text, Auto-Submitted: auto-generated.
	postmaster bool
	subject    string // overrides the subject of kind
	ret        retMode
}

// retMode is how much of the original a notice returns.
type retMode int

const (
	retDefault retMode = iota // by kind and the sender's RET (RFC 3461 4.3)
	retFull                   // message/rfc822 (within bounce_size_limit)
	retHeaders                // text/rfc822-headers
)

// makeNotice queues nothing yet: it builds the notice record about the
// recipients which of env, for the caller's commit.
func (q *Queue) makeNotice(spec noticeSpec, env *Envelope, which []int, msg *Message, now time.Time, relayed map[int]bool) *pending {
	id := q.NewID()
	content, eightBit := q.buildNotice(spec, id, env, which, msg, now, relayed)
	benv := &Envelope{
		ID:         id,
		Sender:     spec.from,
		Recipients: []Recipient{{Address: spec.to, OrigAddress: spec.to}},
		Arrival:    now,
		ClientName: "localhost",
		ClientAddr: "127.0.0.1",
		Helo:       q.opts.Hostname,
		Protocol:   "local",
		SMTPUTF8:   env.SMTPUTF8,
	}
	if eightBit {
		benv.BodyType = "8BITMIME"
	}
	p := q.messageRecord(benv, content, int64(len(content)), false)
	p.logs = []logLine{
		{"cleanup", fmt.Sprintf("%s: message-id=%s", id, noticeMessageID(id, now, q.opts.Hostname))},
		{"qmgr", fmt.Sprintf("%s: from=<%s>, size=%d, nrcpt=1 (queue active)", id, clean(spec.from), len(content))},
	}
	return &p
}

func noticeMessageID(id ID, now time.Time, host string) string {
	return fmt.Sprintf("<%s.%s@%s>", now.UTC().Format("20060102150405"), id, host)
}

// buildNotice writes an RFC 3464 report: multipart/report with a human
// part in Postfix's wording, a message/delivery-status part, and the
// original message (message/rfc822) or its header (text/rfc822-headers,
// for RET=HDRS, delay warnings, or originals over bounce_size_limit).
func (q *Queue) buildNotice(spec noticeSpec, id ID, env *Envelope, which []int, msg *Message, now time.Time, relayed map[int]bool) ([]byte, bool) {
	kind := spec.kind
	host := q.opts.Hostname
	orig, full, crlf := q.originalForNotice(kind, spec.ret, env, msg)
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	eightBit := has8bit(orig)
	for _, i := range which {
		if has8bit([]byte(env.Recipients[i].LastErr)) {
			eightBit = true
		}
	}
	cte := "7bit"
	if eightBit {
		cte = "8bit"
	}
	boundary := fmt.Sprintf("%s.%d/%s", id, now.Unix(), host)
	var b bytes.Buffer
	w := func(format string, args ...any) {
		fmt.Fprintf(&b, format, args...)
		b.WriteString(nl)
	}
	subject := "Undelivered Mail Returned to Sender"
	switch kind {
	case noticeDelay:
		subject = "Delayed Mail (still being retried)"
	case noticeSuccess:
		subject = "Successful Mail Delivery Report"
	}
	if spec.postmaster {
		// Postfix's bounce templates, Postmaster-Subject.
		subject = "Postmaster Copy: Undelivered Mail"
		if kind == noticeDelay {
			subject = "Postmaster Warning: Delayed Mail"
		}
	}
	if spec.subject != "" {
		subject = spec.subject
	}
	auto := "auto-replied"
	if spec.postmaster {
		auto = "auto-generated" // RFC 3834 5: not a reply to the message
	}
	w("Date: %s", now.Format("Mon, 2 Jan 2006 15:04:05 -0700 (MST)"))
	w("From: MAILER-DAEMON@%s (Mail Delivery System)", host)
	w("Subject: %s", subject)
	w("To: %s", headerAddr(spec.to))
	w("Auto-Submitted: %s", auto)
	w("MIME-Version: 1.0")
	w("Content-Type: multipart/report; report-type=delivery-status;")
	w("\tboundary=\"%s\"", boundary)
	w("Content-Transfer-Encoding: %s", cte)
	w("Message-Id: %s", noticeMessageID(id, now, host))
	w("")
	w("This is a MIME-encapsulated message.")
	w("")
	w("--%s", boundary)
	w("Content-Description: Notification")
	w("Content-Type: text/plain; charset=us-ascii")
	w("")
	if !spec.postmaster {
		q.boilerplate(w, kind)
	}
	for _, i := range which {
		rc := &env.Recipients[i]
		w("")
		who := "<" + oneLine(rc.Address) + ">"
		if rc.OrigAddress != "" && rc.OrigAddress != rc.Address {
			who += " (expanded from <" + oneLine(rc.OrigAddress) + ">)"
		}
		w("%s: %s", who, oneLine(rc.LastErr))
	}
	w("")
	w("--%s", boundary)
	w("Content-Description: Delivery report")
	w("Content-Type: message/delivery-status")
	w("")
	// RFC 3464 2.2: per-message fields.
	if env.DSNEnvID != "" {
		w("Original-Envelope-Id: %s", oneLine(xtextDecode(env.DSNEnvID)))
	}
	w("Reporting-MTA: dns; %s", host)
	w("X-Postfix-Queue-ID: %s", env.ID)
	w("X-Postfix-Sender: rfc822; %s", oneLine(env.Sender))
	w("Arrival-Date: %s", env.Arrival.Format("Mon, 2 Jan 2006 15:04:05 -0700 (MST)"))
	// RFC 3464 2.3: per-recipient fields, one block each.
	for _, i := range which {
		rc := &env.Recipients[i]
		w("")
		w("Final-Recipient: rfc822; %s", oneLine(rc.Address))
		if rc.DSNORcpt != "" {
			w("Original-Recipient: %s", oneLine(xtextDecode(rc.DSNORcpt)))
		}
		switch {
		case kind == noticeDelay:
			w("Action: delayed")
			w("Status: %s", defaultDSN(rc.DSN, '4'))
		case kind == noticeSuccess && relayed[i]:
			w("Action: relayed")
			w("Status: %s", defaultDSN(rc.DSN, '2'))
		case kind == noticeSuccess:
			w("Action: delivered")
			w("Status: %s", defaultDSN(rc.DSN, '2'))
		default:
			w("Action: failed")
			w("Status: %s", defaultDSN(rc.DSN, '5'))
		}
		if rc.RemoteMTA != "" {
			w("Remote-MTA: dns; %s", oneLine(rc.RemoteMTA))
		}
		diag := rc.Diagnostic
		if diag == "" {
			diag = "X-Postfix; " + rc.LastErr
		}
		w("Diagnostic-Code: %s", oneLine(diag))
		if kind == noticeDelay {
			w("Will-Retry-Until: %s", env.Arrival.Add(q.opts.MaximalQueueLifetime).Format("Mon, 2 Jan 2006 15:04:05 -0700 (MST)"))
		}
	}
	w("")
	w("--%s", boundary)
	if full {
		w("Content-Description: Undelivered Message")
		w("Content-Type: message/rfc822")
	} else {
		w("Content-Description: Undelivered Message Headers")
		w("Content-Type: text/rfc822-headers")
	}
	w("Content-Transfer-Encoding: %s", cte)
	w("")
	b.Write(orig)
	if len(orig) > 0 && orig[len(orig)-1] != '\n' {
		b.WriteString(nl)
	}
	w("")
	w("--%s--", boundary)
	return b.Bytes(), eightBit
}

// boilerplate writes the human text of a notice to the sender, in
// Postfix's wording (bounce.cf.default templates).
func (q *Queue) boilerplate(w func(format string, args ...any), kind noticeKind) {
	w("This is the mail system at host %s.", q.opts.Hostname)
	w("")
	switch kind {
	case noticeDelay:
		w("####################################################################")
		w("# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #")
		w("####################################################################")
		w("")
		w("Your message could not be delivered for %s.", plural(q.opts.DelayWarningTime.Hours(), "hour"))
		w("It will be retried until it is %s old.", plural(q.opts.MaximalQueueLifetime.Hours()/24, "day"))
	case noticeSuccess:
		w("Your message was successfully delivered to the destination(s)")
		w("listed below. If the message was delivered to mailbox you will")
		w("receive no further notifications. Otherwise you may still receive")
		w("notifications of mail delivery errors from other systems.")
	default:
		w("I'm sorry to have to inform you that your message could not")
		w("be delivered to one or more recipients. It's attached below.")
	}
	if kind != noticeSuccess {
		w("")
		w("For further assistance, please send mail to postmaster.")
		w("")
		w("If you do so, please include this problem report. You can")
		w("delete your own text from the attached returned message.")
	}
	w("")
	w("                   The mail system")
}

// originalForNotice reads what to return of the original: all of it
// (message/rfc822) or its header section (text/rfc822-headers). It also
// reports whether the original uses CRLF line ends, so the notice matches.
func (q *Queue) originalForNotice(kind noticeKind, ret retMode, env *Envelope, msg *Message) (data []byte, full, crlf bool) {
	rc, err := msg.Open()
	if err != nil {
		q.logf("bounce", "warning: %s: cannot read original for notice: %v", msg.ID, err)
		return nil, false, false
	}
	defer rc.Close()
	// RFC 3461 4.3: RET=HDRS asks for headers only, RET=FULL for the whole
	// message; without RET, Postfix returns the whole message with a
	// failure and headers otherwise.
	switch kind {
	case noticeFailure:
		full = !strings.EqualFold(env.DSNRet, "HDRS")
	case noticeSuccess:
		full = strings.EqualFold(env.DSNRet, "FULL")
	}
	switch ret {
	case retFull:
		full = true
	case retHeaders:
		full = false
	}
	full = full && msg.Size <= q.opts.BounceSizeLimit
	if full {
		data, err = io.ReadAll(io.LimitReader(rc, q.opts.BounceSizeLimit))
		if err != nil {
			q.logf("bounce", "warning: %s: read original: %v", msg.ID, err)
			return nil, false, false
		}
		return data, true, bytes.Contains(firstLine(data), []byte("\r\n"))
	}
	br := bufio.NewReader(io.LimitReader(rc, q.opts.BounceSizeLimit))
	var out bytes.Buffer
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 && len(line) > 0 {
			break // the empty line that ends the header section
		}
		out.Write(line)
		if err != nil {
			break
		}
	}
	data = out.Bytes()
	return data, false, bytes.Contains(firstLine(data), []byte("\r\n"))
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i+1]
	}
	return b
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// oneLine keeps a value on one header line: CR, LF and other controls
// (but tab) become spaces, and the length is capped.
func oneLine(s string) string {
	const max = 900
	if len(s) > max {
		s = s[:max]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// headerAddr renders an envelope address for a To: header, bare as
// Postfix writes it (RFC 5322 3.4 addr-spec).
func headerAddr(addr string) string {
	return oneLine(addr)
}

// xtextDecode undoes RFC 3461 4 xtext ("+2B" is '+'); malformed escapes
// are kept as they are.
func xtextDecode(s string) string {
	if !strings.Contains(s, "+") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '+' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// plural prints "4 hour(s)" as Postfix's templates do.
func plural(v float64, unit string) string {
	return fmt.Sprintf("%d %s(s)", int64(v), unit)
}
