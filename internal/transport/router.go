package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

// Agent delivers msg to the recipients rcpts (indexes into its envelope)
// through one transport; nexthop is the part after "name:" of the
// transport setting. It returns one result per recipient.
type Agent interface {
	Deliver(ctx context.Context, msg *queue.Message, rcpts []int, nexthop string) []queue.Result
}

// Router implements queue.Agent: it resolves each recipient's transport
// and hands the recipients, grouped by transport and next hop, to the
// agents.
type Router struct {
	Domains *rewrite.Domains
	// The main.cf settings, already $-expanded.
	VirtualTransport string // virtual_transport, default "virtual"
	LocalTransport   string // local_transport, default "local:$myhostname"
	RelayTransport   string // relay_transport, default "relay"
	DefaultTransport string // default_transport, default "smtp"
	Relayhost        string // relayhost: the next hop for default_transport when set
	DeferTransports  map[string]bool
	Agents           map[string]Agent // by transport name
	// LimitsFor returns a transport's scheduling limits (main.cf's
	// <transport>_destination_* settings, master.cf's maxproc); nil
	// means no limits.
	LimitsFor func(transport string) queue.Limits
}

// Route implements queue.Router: the transport (master.cf service name)
// and next hop of a recipient. A domain table that cannot answer is an
// error (the queue defers the recipient), never the default transport.
func (r *Router) Route(ctx context.Context, rcpt string) (queue.Destination, error) {
	name, nexthop := r.route(ctx, rcpt)
	if name == lookupFailed {
		return queue.Destination{}, errors.New(nexthop)
	}
	return queue.Destination{Transport: name, Nexthop: nexthop}, nil
}

// Limits implements queue.Router.
func (r *Router) Limits(transport string) queue.Limits {
	if r.LimitsFor == nil {
		return queue.Limits{}
	}
	return r.LimitsFor(transport)
}

// DeliverTo implements queue.Router: rcpts all go to dest.
func (r *Router) DeliverTo(ctx context.Context, dest queue.Destination, msg *queue.Message, rcpts []int) []queue.Result {
	switch agent := r.Agents[dest.Transport]; {
	case r.DeferTransports[dest.Transport]:
		// defer_transports: hold until a flush or a later configuration.
		return each(rcpts, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.2",
			Reply: "deferred transport", Relay: "none", Transport: dest.Transport})
	case agent == nil:
		return each(rcpts, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0",
			Reply: fmt.Sprintf("mail transport unavailable: transport %q is not supported by this postcote yet", dest.Transport),
			Relay: "none", Transport: dest.Transport})
	default:
		return agent.Deliver(ctx, msg, rcpts, dest.Nexthop)
	}
}

// lookupFailed is the route of a recipient whose address class could
// not be decided (a domain table did not answer): it is deferred, never
// sent to the default transport.
const lookupFailed = "\x00lookup"

// route returns the transport name and next hop for a recipient.
func (r *Router) route(ctx context.Context, rcpt string) (name, nexthop string) {
	_, domain := rewrite.SplitAddress(rcpt)
	var setting string
	class, err := r.Domains.ClassifyContext(ctx, domain)
	if err != nil {
		return lookupFailed, err.Error()
	}
	switch class {
	case rewrite.Local:
		setting = r.LocalTransport
	case rewrite.VirtualMailbox:
		setting = r.VirtualTransport
	case rewrite.Relay:
		setting = r.RelayTransport
	case rewrite.VirtualAlias:
		// Aliases are expanded before the queue; one left here has no
		// mailbox of its own (Postfix: "User unknown in virtual alias table").
		return "error", "User unknown in virtual alias table"
	default:
		setting = r.DefaultTransport
	}
	name, nexthop, _ = strings.Cut(setting, ":")
	name = strings.TrimSpace(name)
	if nexthop == "" {
		nexthop = rewrite.Canonical(domain)
		if r.Relayhost != "" && setting == r.DefaultTransport {
			nexthop = r.Relayhost
		}
	}
	return name, nexthop
}

type routeKey struct{ name, nexthop string }

// Deliver implements queue.Agent: every recipient of msg, grouped by
// destination, one destination after the other (the queue's scheduler
// calls Route and DeliverTo instead, to run destinations in parallel).
func (r *Router) Deliver(ctx context.Context, msg *queue.Message, rcpts []int) []queue.Result {
	groups := map[routeKey][]int{}
	var order []routeKey
	for _, i := range rcpts {
		k := routeKey{}
		k.name, k.nexthop = r.route(ctx, msg.Envelope.Recipients[i].Address)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	var results []queue.Result
	for _, k := range order {
		idx := groups[k]
		if k.name == lookupFailed {
			results = append(results, each(idx, queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0",
				Reply: "address resolver failure: " + k.nexthop, Relay: "none", Transport: "none"})...)
			continue
		}
		results = append(results, r.DeliverTo(ctx, queue.Destination{Transport: k.name, Nexthop: k.nexthop}, msg, idx)...)
	}
	return results
}

// each repeats one verdict for several recipients.
func each(rcpts []int, r queue.Result) []queue.Result {
	out := make([]queue.Result, len(rcpts))
	for i, rc := range rcpts {
		out[i] = r
		out[i].Rcpt = rc
	}
	return out
}

// Error is Postfix's error(8): every recipient bounces with the next hop
// text as the reason ("error: Local delivery only!").
type Error struct{}

// Deliver implements Agent.
func (Error) Deliver(_ context.Context, _ *queue.Message, rcpts []int, nexthop string) []queue.Result {
	text := strings.TrimSpace(nexthop)
	if text == "" {
		text = "delivery refused"
	}
	return each(rcpts, queue.Result{Status: queue.StatusBounced, DSN: "5.0.0", Reply: text, Relay: "none", Transport: "error"})
}

// Discard is Postfix's discard(8): every recipient counts as delivered and
// the message goes nowhere.
type Discard struct{}

// Deliver implements Agent.
func (Discard) Deliver(_ context.Context, _ *queue.Message, rcpts []int, nexthop string) []queue.Result {
	text := strings.TrimSpace(nexthop)
	if text == "" {
		text = "discarded"
	}
	return each(rcpts, queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: text, Relay: "none", Transport: "discard", Delay: time.Duration(0)})
}
