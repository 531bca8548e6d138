package queue

import (
	"strings"
	"testing"
	"time"
)

// byAddress answers per recipient address: bounced, deferred with a
// given DSN, or sent.
func byAddress(bounce map[string]bool, deferDSN map[string]string) func(msg *Message, i int) Result {
	return func(msg *Message, i int) Result {
		addr := msg.Envelope.Recipients[i].Address
		switch {
		case bounce[addr]:
			return Result{Rcpt: i, Status: StatusBounced, DSN: "5.1.1", Reply: "unknown user: \"" + addr + "\"", Relay: "local", Transport: "local"}
		case deferDSN[addr] != "":
			return Result{Rcpt: i, Status: StatusDeferred, DSN: deferDSN[addr], Reply: "mail transport unavailable", Relay: "none", Transport: "local"}
		}
		return Result{Rcpt: i, Status: StatusSent, DSN: "2.0.0", Reply: "delivered to mailbox", Relay: "local", Transport: "local"}
	}
}

func notifyHarness(t *testing.T, classes []string, mod func(o *Options)) *harness {
	t.Helper()
	c, err := ParseNotifyClasses(classes)
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, func(o *Options) {
		o.Notify = Notify{Classes: c, DelayRecipient: "delays", Myorigin: "example.net"}
		if mod != nil {
			mod(o)
		}
	})
}

// TestDoubleBounce: the bounce to a sender that does not exist goes to
// the postmaster in full, from the double-bounce address; when that
// fails too, it is dropped with Postfix's warning, never returned.
func TestDoubleBounce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		classes []string
		double  bool
		want    int // deliveries: the message, the bounce, the double bounce, copies
	}{
		{"2bounce", []string{"2bounce"}, true, 3},
		{"bounce implies it", []string{"bounce"}, true, 4}, // and a copy of the first bounce
		{"Postfix default", []string{"resource", "software"}, false, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := notifyHarness(t, tc.classes, nil)
			a := newAgent(byAddress(map[string]bool{"bob@example.com": true, "ghost@example.org": true, "postmaster@example.net": true}, nil))
			stop := h.run(a)
			defer stop()
			id := h.enqueue("ghost@example.org", []string{"bob@example.com"}, "Subject: lost\r\n\r\nbody text\r\n")
			want := tc.want
			waitFor(t, "settled", func() bool { return h.queued() == 0 && len(a.deliveries()) >= want })
			stop()
			got := a.deliveries()
			if len(got) != want {
				t.Fatalf("%d deliveries, want %d:\n%s", len(got), want, h.logs.String())
			}
			logs := h.logs.String()
			if !tc.double {
				if !strings.Contains(logs, "sender is <>, undeliverable mail to <ghost@example.org> discarded") {
					t.Errorf("no discard line:\n%s", logs)
				}
				return
			}
			var db delivery
			for _, d := range got {
				if d.rcpt == "postmaster@example.net" && strings.Contains(d.content, "body text") {
					db = d // the double bounce returns the bounce in full
				}
			}
			if db.rcpt != "postmaster@example.net" || db.sender != "double-bounce@example.net" {
				t.Fatalf("double bounce %s from %s", db.rcpt, db.sender)
			}
			r := parseReport(t, db.content)
			if r.header.Get("Subject") != "Postmaster Copy: Undelivered Mail" || r.header.Get("Auto-Submitted") != "auto-generated" || r.header.Get("To") != "postmaster@example.net" {
				t.Errorf("header %v", r.header)
			}
			if strings.Contains(r.human, "I'm sorry") || !strings.Contains(r.human, "<ghost@example.org>: unknown user") {
				t.Errorf("human part %q", r.human)
			}
			// The returned original is the failed bounce, in full.
			if r.thirdType != "message/rfc822" || !strings.Contains(r.third, "Undelivered Mail Returned to Sender") || !strings.Contains(r.third, "body text") {
				t.Errorf("third part %q:\n%s", r.thirdType, r.third)
			}
			for _, want := range []string{string(id) + ": sender non-delivery notification: ", ": postmaster non-delivery notification: ",
				"warning: " + string(db.id) + ": undeliverable postmaster notification discarded"} {
				if !strings.Contains(logs, want) {
					t.Errorf("log lacks %q:\n%s", want, logs)
				}
			}
		})
	}
}

// TestBounceCopy: notify_classes = bounce sends the postmaster the
// headers of every bounced message, whatever the sender's NOTIFY.
func TestBounceCopy(t *testing.T) {
	h := notifyHarness(t, []string{"bounce"}, nil)
	a := newAgent(byAddress(map[string]bool{"bob@example.com": true}, nil))
	stop := h.run(a)
	defer stop()
	env := h.enqueue("alice@example.org", []string{"bob@example.com"}, "Subject: s\r\n\r\nsecret body\r\n")
	waitFor(t, "settled", func() bool { return h.queued() == 0 && len(a.deliveries()) >= 3 })
	stop()
	var sender, pm *delivery
	for _, d := range a.deliveries() {
		switch d.rcpt {
		case "alice@example.org":
			sender = &d
		case "postmaster@example.net":
			pm = &d
		}
	}
	if sender == nil || pm == nil {
		t.Fatalf("deliveries %+v", a.deliveries())
	}
	if sender.sender != "" || pm.sender != "double-bounce@example.net" {
		t.Errorf("senders %q %q", sender.sender, pm.sender)
	}
	r := parseReport(t, pm.content)
	if r.header.Get("Subject") != "Postmaster Copy: Undelivered Mail" || r.thirdType != "text/rfc822-headers" || strings.Contains(r.third, "secret body") {
		t.Errorf("copy: %v %q %q", r.header.Get("Subject"), r.thirdType, r.third)
	}
	if !strings.Contains(h.logs.String(), string(env)+": postmaster non-delivery notification: ") {
		t.Errorf("log:\n%s", h.logs.String())
	}
}

// TestDelayCopy: notify_classes = delay copies delay warnings to
// delay_notice_recipient (qualified with myorigin).
func TestDelayCopy(t *testing.T) {
	h := notifyHarness(t, []string{"delay"}, func(o *Options) { o.DelayWarningTime = time.Hour })
	a := newDeferAgent(h.clock)
	stop := h.run(a)
	defer stop()
	id := h.enqueue("alice@example.org", []string{"bob@example.com"}, "Subject: slow\r\n\r\nbody\r\n")
	for n := 1; n <= 8; n++ {
		s, _ := h.settled(a, id, n)
		h.clock.Advance(s.NextRetry.Sub(h.clock.Now()))
		h.q.kick()
	}
	waitFor(t, "warnings", func() bool { return len(a.noticeList()) >= 1 })
	// The postmaster copy is from double-bounce, so deferAgent (which
	// delivers only mail from <>) defers it: it shows in the queue.
	var found bool
	for _, s := range h.q.List() {
		if s.Sender == "double-bounce@example.net" && s.Recipients[0].Address == "delays@example.net" {
			found = true
		}
	}
	if !found || len(a.noticeList()) != 1 {
		t.Errorf("postmaster copy queued %v, sender warnings %d", found, len(a.noticeList()))
	}
	if !strings.Contains(h.logs.String(), string(id)+": postmaster delay notification: ") {
		t.Errorf("log:\n%s", h.logs.String())
	}
}

// TestErrorNotice: mail deferred for a software or resource problem is
// reported to error_notice_recipient once, not at every retry; remote
// and ordinary deferrals are not.
func TestErrorNotice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		classes []string
		dsn     string
		subject string
	}{
		{"software", []string{"software"}, "4.3.0", "Postmaster Warning: Delayed Mail (software problem)"},
		{"resource", []string{"resource", "software"}, "4.3.1", "Postmaster Warning: Delayed Mail (resource problem)"},
		{"not a class", []string{"resource", "software"}, "4.4.1", ""},
		{"class off", []string{"bounce"}, "4.3.0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := notifyHarness(t, tc.classes, func(o *Options) { o.MinimalBackoff, o.MaximalBackoff = time.Second, time.Second })
			a := newAgent(byAddress(nil, map[string]string{"bob@example.com": tc.dsn}))
			stop := h.run(a)
			defer stop()
			id := h.enqueue("alice@example.org", []string{"bob@example.com"}, "Subject: s\r\n\r\nbody\r\n")
			for n := 1; n <= 3; n++ {
				waitFor(t, "attempt", func() bool {
					c := 0
					for _, d := range a.deliveries() {
						if d.id == id {
							c++
						}
					}
					return c >= n
				})
				waitFor(t, "recorded", func() bool {
					for _, s := range h.q.List() {
						if s.ID == id {
							return s.Recipients[0].Attempts >= n
						}
					}
					return false
				})
				h.clock.Advance(2 * time.Second)
				h.q.kick()
			}
			stop()
			var notices []delivery
			for _, d := range a.deliveries() {
				if d.rcpt == "postmaster@example.net" {
					notices = append(notices, d)
				}
			}
			if tc.subject == "" {
				if len(notices) != 0 {
					t.Fatalf("%d error notices, want none", len(notices))
				}
				return
			}
			if len(notices) != 1 {
				t.Fatalf("%d error notices, want 1:\n%s", len(notices), h.logs.String())
			}
			r := parseReport(t, notices[0].content)
			if r.header.Get("Subject") != tc.subject || r.perRcpt[0].Get("Status") != tc.dsn || notices[0].sender != "double-bounce@example.net" {
				t.Errorf("notice %v %v from %q", r.header, r.perRcpt, notices[0].sender)
			}
			if !strings.Contains(h.logs.String(), string(id)+": postmaster error notification: ") {
				t.Errorf("log:\n%s", h.logs.String())
			}
		})
	}
}

func TestParseNotifyClasses(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want NotifyClass
		err  bool
	}{
		{[]string{"resource", "software"}, NotifyResource | NotifySoftware, false},
		{[]string{"Bounce", "2bounce", "delay", "policy", "protocol", "data"}, NotifyBounce | Notify2Bounce | NotifyDelay, false},
		{nil, 0, false},
		{[]string{"bounces"}, 0, true},
	} {
		got, err := ParseNotifyClasses(tc.in)
		if got != tc.want || (err != nil) != tc.err {
			t.Errorf("ParseNotifyClasses(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// TestNullSenderDelay: a notice that stays deferred warns the
// 2bounce_notice_recipient when notify_classes has 2bounce, and a
// postmaster notice that stays deferred warns nobody.
func TestNullSenderDelay(t *testing.T) {
	for _, tc := range []struct {
		name, sender string
		want         bool
	}{
		{"bounce delayed", "", true},
		{"postmaster notice delayed", "double-bounce@example.net", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := notifyHarness(t, []string{"2bounce"}, func(o *Options) {
				o.DelayWarningTime = time.Minute
				o.MinimalBackoff, o.MaximalBackoff = time.Minute, time.Minute
			})
			a := newAgent(byAddress(nil, map[string]string{"slow@example.com": "4.4.1"}))
			stop := h.run(a)
			defer stop()
			id := h.enqueue(tc.sender, []string{"slow@example.com"}, "Subject: s\r\n\r\nbody\r\n")
			for n := 1; n <= 2; n++ {
				waitFor(t, "attempt", func() bool {
					for _, s := range h.q.List() {
						if s.ID == id {
							return s.Recipients[0].Attempts >= n
						}
					}
					return false
				})
				h.clock.Advance(2 * time.Minute)
				h.q.kick()
			}
			if tc.want {
				waitFor(t, "warning", func() bool {
					for _, d := range a.deliveries() {
						if d.rcpt == "postmaster@example.net" && d.sender == "double-bounce@example.net" {
							return true
						}
					}
					return false
				})
				// The notice is queued in the attempt's commit, so it
				// may be delivered before that attempt's log lines
				// are written: wait for them too.
				waitFor(t, "log line", func() bool {
					return strings.Contains(h.logs.String(), string(id)+": postmaster delay notification: ")
				})
				return
			}
			stop()
			// A notice would be queued in the same commit as the attempt.
			for _, s := range h.q.List() {
				if s.ID != id {
					t.Errorf("a warning about a postmaster notice was queued: %+v", s)
				}
			}
			for _, d := range a.deliveries() {
				if d.rcpt == "postmaster@example.net" {
					t.Fatalf("a warning about a postmaster notice: %+v", d)
				}
			}
		})
	}
}
