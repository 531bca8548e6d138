package server

import (
	"context"
	"errors"
	"fmt"

	"postcote/internal/config/postfixconf"
	"postcote/internal/queue"
	"postcote/internal/transport"
)

// transportLimits reads the queue manager's scheduling settings per
// transport, as Postfix's qmgr does: <transport>_destination_concurrency_limit,
// _destination_recipient_limit, _initial_destination_concurrency,
// _destination_concurrency_failed_cohort_limit and
// _destination_rate_delay, each falling back to its default_ (or
// initial_destination_concurrency) parameter, and the maxproc of the
// transport's master.cf service ("-": default_process_limit). qmgr reads
// main.cf only: a master.cf -o on the transport's service does not apply.
func transportLimits(m *postfixconf.Main, master *postfixconf.Master) (func(string) queue.Limits, error) {
	maxproc := map[string]int{}
	for _, svc := range master.Services {
		if svc.Type == postfixconf.TypeUnix {
			maxproc[svc.Name] = svc.MaxProc
		}
	}
	names := []string{"smtp", "relay", "lmtp", "local", "virtual", "error", "discard", "retry"}
	for n := range maxproc {
		names = append(names, n)
	}
	def, err := readLimits(m, "", -1)
	if err != nil {
		return nil, err
	}
	table := map[string]queue.Limits{}
	for _, n := range names {
		mp, ok := maxproc[n]
		if !ok {
			mp = -1
		}
		if table[n], err = readLimits(m, n, mp); err != nil {
			return nil, err
		}
	}
	return func(t string) queue.Limits {
		if l, ok := table[t]; ok {
			return l
		}
		return def
	}, nil
}

// readLimits reads one transport's limits ("" for the defaults); maxproc
// is its master.cf process limit, -1 for "-".
func readLimits(m *postfixconf.Main, transport string, maxproc int) (queue.Limits, error) {
	name := func(suffix, fallback string) string {
		if transport != "" {
			p := transport + suffix
			if _, known := postfixconf.Lookup(p); known || m.IsSet(p) {
				return p
			}
		}
		return fallback
	}
	var errs []error
	num := func(param string) int {
		n, err := m.Int(param)
		if err == nil && n < 0 {
			err = fmt.Errorf("%s: %s = %d: must not be negative", m.Pos(param), param, n)
		}
		if err != nil {
			errs = append(errs, err)
		}
		return n
	}
	var l queue.Limits
	l.Concurrency = num(name("_destination_concurrency_limit", "default_destination_concurrency_limit"))
	l.Recipients = num(name("_destination_recipient_limit", "default_destination_recipient_limit"))
	l.Initial = num(name("_initial_destination_concurrency", "initial_destination_concurrency"))
	l.FailedCohorts = num(name("_destination_concurrency_failed_cohort_limit", "default_destination_concurrency_failed_cohort_limit"))
	delay, err := m.Duration(name("_destination_rate_delay", "default_destination_rate_delay"))
	if err != nil {
		errs = append(errs, err)
	}
	l.RateDelay = delay
	l.Process = maxproc
	if maxproc < 0 {
		l.Process = num("default_process_limit")
	}
	if len(errs) > 0 {
		return l, joinErrors(errs)
	}
	return l, nil
}

// queueAgent is what the queue delivers through: the current
// generation's router, so a reload changes routing and limits for the
// next messages.
type queueAgent struct{ s *runner }

func (a queueAgent) router() *transport.Router {
	if g := a.s.current(); g != nil {
		if r, ok := g.agent.(*transport.Router); ok {
			return r
		}
	}
	return nil
}

// Deliver implements queue.Agent.
func (a queueAgent) Deliver(ctx context.Context, msg *queue.Message, rcpts []int) []queue.Result {
	return a.s.deliver(ctx, msg, rcpts)
}

// Route implements queue.Router.
func (a queueAgent) Route(ctx context.Context, rcpt string) (queue.Destination, error) {
	r := a.router()
	if r == nil {
		return queue.Destination{}, errors.New("mail system configuration error: no delivery agents")
	}
	return r.Route(ctx, rcpt)
}

// Limits implements queue.Router.
func (a queueAgent) Limits(transport string) queue.Limits {
	if r := a.router(); r != nil {
		return r.Limits(transport)
	}
	return queue.Limits{}
}

// DeliverTo implements queue.Router.
func (a queueAgent) DeliverTo(ctx context.Context, dest queue.Destination, msg *queue.Message, rcpts []int) []queue.Result {
	if r := a.router(); r != nil {
		return r.DeliverTo(ctx, dest, msg, rcpts)
	}
	return a.s.deliver(ctx, msg, rcpts) // defers them: no agents
}
