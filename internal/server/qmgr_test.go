package server

import (
	"strings"
	"testing"
	"time"

	"postcote/internal/config/postfixconf"
	"postcote/internal/queue"
)

func TestTransportLimits(t *testing.T) {
	main := `default_destination_concurrency_limit = 7
smtp_destination_recipient_limit = 3
dovecot_destination_recipient_limit = 1
relay_destination_rate_delay = 2s
initial_destination_concurrency = 4
default_process_limit = 60
`
	master := `smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       5       smtp
dovecot   unix  -       n       n       -       -       pipe flags=DRhu user=vmail argv=/usr/lib/dovecot/deliver
`
	m, err := postfixconf.ParseMainBytes("main.cf", []byte(main))
	if err != nil {
		t.Fatal(err)
	}
	mc, err := postfixconf.ParseMasterBytes("master.cf", []byte(master))
	if err != nil {
		t.Fatal(err)
	}
	limits, err := transportLimits(m, mc)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		transport string
		want      queue.Limits
	}{
		// $default_destination_concurrency_limit, smtp's own recipient limit.
		{"smtp", queue.Limits{Concurrency: 7, Recipients: 3, Process: 60, Initial: 4, FailedCohorts: 1}},
		// maxproc 5 from master.cf, relay's own rate delay.
		{"relay", queue.Limits{Concurrency: 7, Recipients: 50, Process: 5, Initial: 4, FailedCohorts: 1, RateDelay: 2 * time.Second}},
		// Postfix's local defaults: 2 deliveries per recipient.
		{"local", queue.Limits{Concurrency: 2, Recipients: 1, Process: 60, Initial: 4, FailedCohorts: 1}},
		{"virtual", queue.Limits{Concurrency: 7, Recipients: 50, Process: 60, Initial: 4, FailedCohorts: 1}},
		// A master.cf service's per-transport setting.
		{"dovecot", queue.Limits{Concurrency: 7, Recipients: 1, Process: 60, Initial: 4, FailedCohorts: 1}},
		// Not in master.cf: the defaults.
		{"nosuch", queue.Limits{Concurrency: 7, Recipients: 50, Process: 60, Initial: 4, FailedCohorts: 1}},
	} {
		if got := limits(tc.transport); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.transport, got, tc.want)
		}
	}

	for _, tc := range []struct{ main, want string }{
		{"lmtp_destination_concurrency_limit = -1\n", "main.cf:1: lmtp_destination_concurrency_limit = -1: must not be negative"},
		{"smtp_destination_rate_delay = soon\n", "smtp_destination_rate_delay"},
		{"default_destination_recipient_limit = many\n", "default_destination_recipient_limit"},
	} {
		bad, err := postfixconf.ParseMainBytes("main.cf", []byte(tc.main))
		if err != nil {
			t.Fatal(err)
		}
		if _, err = transportLimits(bad, mc); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.main, err, tc.want)
		}
	}
}
