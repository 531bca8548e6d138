package main

import (
	"context"
	"fmt"
	"time"
)

// target is one server under test, started for one run and stopped
// after it, so each run begins with an empty queue and an empty Maildir.
type target struct {
	key     string // "postcote", "postfix" or "postfix+dovecot"
	label   string // row label
	setup   string // one line on how it was set up, printed above the tables
	addr    string // SMTP listener, 127.0.0.1:port
	maildir string // where accepted mail lands; "" when the target discards it
	logs    string // where the server's log is, for error messages
	stop    func(ctx context.Context) error
}

// measure is one run's figures.
type measure struct {
	accepted, failed int
	errors           []string
	acceptRate       float64 // messages/s, first connection → last 250
	p50, p99         time.Duration
	deliverRate      float64 // messages/s, first connection → last file in Maildir; 0 when not measured
	note             string  // why a figure is missing
}

// runOnce sends one load to t and measures acceptance and, for a
// delivering target, delivery into its Maildir. timeout bounds the whole
// run, delivery included.
func runOnce(ctx context.Context, t *target, load Load, timeout time.Duration) (measure, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var m measure
	var w *maildirWatch
	if t.maildir != "" {
		var err error
		if w, err = watchMaildir(t.maildir); err != nil {
			return m, err
		}
		defer w.Close()
	}
	load.Addr = t.addr
	res, err := load.Run(ctx)
	if err != nil {
		return m, err
	}
	m.accepted, m.failed, m.errors = res.Accepted, res.Failed, res.Errors
	m.acceptRate = res.AcceptRate()
	m.p50, m.p99 = res.Percentile(50), res.Percentile(99)
	if res.TimedOut {
		m.note = fmt.Sprintf("timed out after %d of %d messages", res.Tried, load.Messages)
	}
	if w == nil || res.Accepted == 0 {
		return m, nil
	}
	at, err := w.WaitFor(ctx, w.initial+res.Accepted)
	if err != nil {
		m.note = fmt.Sprintf("delivery incomplete: %v (log: %s)", err, t.logs)
		return m, nil
	}
	m.deliverRate = float64(res.Accepted) / at.Sub(res.Start).Seconds()
	return m, nil
}
