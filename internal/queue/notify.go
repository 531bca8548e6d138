package queue

import (
	"fmt"
	"strings"
	"time"
)

// NotifyClass is a set of Postfix's notify_classes: the problems the
// postmaster hears about.
type NotifyClass uint8

// The notify_classes of postconf(5) that concern the queue. "policy"
// and "protocol" are SMTP-session transcripts (smtpd's business) and
// are accepted by ParseNotifyClasses without effect here; "data" too
// (Postfix 3.8: dump of message content on software errors).
const (
	NotifyBounce   NotifyClass = 1 << iota // a copy of each bounce, headers only, to bounce_notice_recipient
	Notify2Bounce                          // undeliverable bounces, in full, to 2bounce_notice_recipient
	NotifyDelay                            // a copy of each delay warning, headers only, to delay_notice_recipient
	NotifyResource                         // mail deferred for a resource problem, to error_notice_recipient
	NotifySoftware                         // mail deferred for a software problem, to error_notice_recipient
)

// ParseNotifyClasses reads the notify_classes list. Unknown names are
// an error, as postconf(5) lists a fixed set.
func ParseNotifyClasses(list []string) (NotifyClass, error) {
	var c NotifyClass
	for _, name := range list {
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "bounce":
			c |= NotifyBounce
		case "2bounce":
			c |= Notify2Bounce
		case "delay":
			c |= NotifyDelay
		case "resource":
			c |= NotifyResource
		case "software":
			c |= NotifySoftware
		case "policy", "protocol", "data", "":
			// smtpd session transcripts: not the queue's.
		default:
			return 0, fmt.Errorf("notify_classes: unknown class %q (want bounce, 2bounce, data, delay, policy, protocol, resource, software)", name)
		}
	}
	return c, nil
}

// Notify is who the queue tells about problems besides the sender
// (Postfix's bounce(8) postmaster notices). The zero value sends none;
// the server fills it from main.cf, whose notify_classes default is
// "resource, software".
type Notify struct {
	Classes NotifyClass
	// The recipients (bounce_notice_recipient, 2bounce_notice_recipient,
	// delay_notice_recipient, error_notice_recipient), each "postmaster"
	// when empty; a name without a domain gets Myorigin.
	BounceRecipient, DoubleBounceRecipient, DelayRecipient, ErrorRecipient string
	// DoubleBounceSender is double_bounce_sender ("double-bounce"), the
	// sender of postmaster notices: when such a notice cannot be
	// delivered it is dropped, never returned (no mail loops).
	DoubleBounceSender string
	// Myorigin qualifies bare names; default the queue's Hostname.
	Myorigin string
}

// qualify gives a bare name the domain myorigin, as cleanup would.
func (q *Queue) qualify(name, def string) string {
	name = strings.TrimSpace(name)
	if name == "" {
		name = def
	}
	if strings.Contains(name, "@") {
		return name
	}
	origin := q.opts.Notify.Myorigin
	if origin == "" {
		origin = q.opts.Hostname
	}
	return name + "@" + origin
}

// doubleBounceAddr is the sender of postmaster notices.
func (q *Queue) doubleBounceAddr() string {
	return q.qualify(q.opts.Notify.DoubleBounceSender, "double-bounce")
}

// isDoubleBounce tells whether sender is the double-bounce address,
// with or without its domain.
func (q *Queue) isDoubleBounce(sender string) bool {
	if sender == "" {
		return false
	}
	if strings.EqualFold(sender, q.doubleBounceAddr()) {
		return true
	}
	local, _, _ := strings.Cut(q.doubleBounceAddr(), "@")
	return strings.EqualFold(sender, local)
}

// postmasterSpec is a postmaster notice (Postfix's POSTMASTER_COPY) to
// rcpt ("postmaster" when empty), from the double-bounce address.
func (q *Queue) postmasterSpec(kind noticeKind, rcpt string, ret retMode) noticeSpec {
	return noticeSpec{kind: kind, to: q.qualify(rcpt, "postmaster"), from: q.doubleBounceAddr(), postmaster: true, ret: ret}
}

// addNotice builds the notice spec describes about the recipients which
// and appends it to recs, with its log line "ID: what notification:
// NEWID" to after.
func (q *Queue) addNotice(spec noticeSpec, what string, env *Envelope, which []int, msg *Message, now time.Time, recs []pending, after []logLine) ([]pending, []logLine) {
	p := q.makeNotice(spec, env, which, msg, now, nil)
	return append(recs, *p), append(after, logLine{"bounce", fmt.Sprintf("%s: %s notification: %s", env.ID, what, p.rec.id)})
}

// failureNotices makes the notices for recipients that failed for good
// in one attempt, as Postfix's bounce(8) does (bounce_notify_service.c):
//
//   - mail from the double-bounce address (a postmaster notice) is
//     dropped with a warning: never a notice about a postmaster notice;
//   - mail from <> (a notice itself) goes, when notify_classes has
//     "bounce" or "2bounce", in full to 2bounce_notice_recipient from the
//     double-bounce address (a double bounce); else it is dropped;
//   - other mail gets the sender's notice (NOTIFY and RET as the sender
//     asked) and, with "bounce", a copy with the headers only to
//     bounce_notice_recipient, listing every failed recipient.
func (q *Queue) failureNotices(env *Envelope, failed []int, msg *Message, now time.Time, recs []pending, after []logLine) ([]pending, []logLine) {
	if len(failed) == 0 {
		return recs, after
	}
	n := &q.opts.Notify
	switch {
	case q.isDoubleBounce(env.Sender):
		after = append(after, logLine{"bounce", fmt.Sprintf("warning: %s: undeliverable postmaster notification discarded", env.ID)})
	case env.Sender == "" && n.Classes&(NotifyBounce|Notify2Bounce) == 0:
		// Postfix with its default notify_classes: logged and dropped.
		after = append(after, logLine{"bounce", fmt.Sprintf("%s: sender is <>, undeliverable mail to <%s> discarded", env.ID, clean(env.Recipients[failed[0]].Address))})
	case env.Sender == "":
		recs, after = q.addNotice(q.postmasterSpec(noticeFailure, n.DoubleBounceRecipient, retFull), "postmaster non-delivery", env, failed, msg, now, recs, after)
	default:
		if p := q.failureNotice(env, failed, msg, now); p != nil {
			recs = append(recs, *p)
			after = append(after, logLine{"bounce", fmt.Sprintf("%s: sender non-delivery notification: %s", env.ID, p.rec.id)})
		}
		if n.Classes&NotifyBounce != 0 {
			recs, after = q.addNotice(q.postmasterSpec(noticeFailure, n.BounceRecipient, retHeaders), "postmaster non-delivery", env, failed, msg, now, recs, after)
		}
	}
	return recs, after
}

// delayNotices makes the delay warnings for deferred recipients, as
// Postfix's bounce_warn_service.c: the sender's warning (NOTIFY as
// asked) and, with "delay", a headers-only copy to
// delay_notice_recipient; for mail from <>, a warning to
// 2bounce_notice_recipient when notify_classes has "bounce" or
// "2bounce"; none for postmaster notices.
func (q *Queue) delayNotices(env *Envelope, deferred []int, msg *Message, now time.Time, recs []pending, after []logLine) ([]pending, []logLine) {
	if len(deferred) == 0 || q.isDoubleBounce(env.Sender) {
		return recs, after
	}
	n := &q.opts.Notify
	if env.Sender == "" {
		if n.Classes&(NotifyBounce|Notify2Bounce) != 0 {
			recs, after = q.addNotice(q.postmasterSpec(noticeDelay, n.DoubleBounceRecipient, retHeaders), "postmaster delay", env, deferred, msg, now, recs, after)
		}
		return recs, after
	}
	if p := q.delayNotice(env, deferred, msg, now); p != nil {
		recs = append(recs, *p)
		after = append(after, logLine{"bounce", fmt.Sprintf("%s: sender delay notification: %s", env.ID, p.rec.id)})
	}
	if n.Classes&NotifyDelay != 0 {
		recs, after = q.addNotice(q.postmasterSpec(noticeDelay, n.DelayRecipient, retHeaders), "postmaster delay", env, deferred, msg, now, recs, after)
	}
	return recs, after
}

// problemClass says whether a deferral is a resource or a software
// problem of this mail system (RFC 3463 3.5 "Mail System Status"): X.3.1
// (system full) is a resource problem; X.3.0 (transport unavailable, an
// agent that gave no answer, a command that crashed) and X.3.5 (system
// incorrectly configured) are software problems. Verdicts of remote
// servers are theirs, not ours.
func problemClass(rc *Recipient) NotifyClass {
	if rc.RemoteMTA != "" || strings.HasPrefix(rc.Diagnostic, "smtp;") {
		return 0
	}
	switch {
	case strings.HasPrefix(rc.DSN, "4.3.1"):
		return NotifyResource
	case rc.DSN == "4.3.0", rc.DSN == "4.3.5":
		return NotifySoftware
	}
	return 0
}

// errorNotices tells error_notice_recipient about recipients deferred
// for a resource or software problem (notify_classes "resource",
// "software"), once per problem: a recipient that was already deferred
// with the same class before this attempt is not reported again, so a
// transport that stays unavailable does not send a notice per retry.
// before is the envelope as it was before the attempt.
func (q *Queue) errorNotices(env, before *Envelope, deferred []int, msg *Message, now time.Time, recs []pending, after []logLine) ([]pending, []logLine) {
	classes := q.opts.Notify.Classes & (NotifyResource | NotifySoftware)
	if classes == 0 || len(deferred) == 0 || env.Sender == "" || q.isDoubleBounce(env.Sender) {
		return recs, after
	}
	var which []int
	var found NotifyClass
	for _, i := range deferred {
		c := problemClass(&env.Recipients[i])
		if c&classes == 0 {
			continue
		}
		if i < len(before.Recipients) && before.Recipients[i].Attempts > 0 && problemClass(&before.Recipients[i]) == c {
			continue // reported when it started
		}
		which = append(which, i)
		found |= c
	}
	if len(which) == 0 {
		return recs, after
	}
	spec := q.postmasterSpec(noticeDelay, q.opts.Notify.ErrorRecipient, retHeaders)
	spec.subject = "Postmaster Warning: Delayed Mail (software problem)"
	if found&NotifyResource != 0 {
		spec.subject = "Postmaster Warning: Delayed Mail (resource problem)"
	}
	return q.addNotice(spec, "postmaster error", env, which, msg, now, recs, after)
}
