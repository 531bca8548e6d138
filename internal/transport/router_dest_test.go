package transport

import (
	"context"
	"testing"

	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

// TestRouterAsQueueRouter: Route gives the destination the queue
// schedules by, Limits passes LimitsFor through, DeliverTo hands one
// destination's recipients to its agent.
func TestRouterAsQueueRouter(t *testing.T) {
	virt := &recorder{}
	r := &Router{
		Domains: &rewrite.Domains{
			Local:          rewrite.NewDomainList([]string{"localhost"}, false),
			VirtualMailbox: rewrite.NewDomainList([]string{"example.jp"}, false),
			VirtualAlias:   rewrite.NewDomainList([]string{"alias.example"}, false),
		},
		VirtualTransport: "virtual",
		LocalTransport:   "local:mail.example.jp",
		DefaultTransport: "smtp",
		Relayhost:        "[relay.example]:587",
		Agents:           map[string]Agent{"virtual": virt},
		LimitsFor: func(t string) queue.Limits {
			if t == "local" {
				return queue.Limits{Concurrency: 2, Recipients: 1}
			}
			return queue.Limits{Concurrency: 20, Recipients: 50}
		},
	}
	var _ queue.Router = r
	for _, tc := range []struct {
		rcpt string
		want queue.Destination
	}{
		{"a@EXAMPLE.JP", queue.Destination{Transport: "virtual", Nexthop: "example.jp"}},
		{"root@localhost", queue.Destination{Transport: "local", Nexthop: "mail.example.jp"}},
		{"x@elsewhere.example", queue.Destination{Transport: "smtp", Nexthop: "[relay.example]:587"}},
		{"y@alias.example", queue.Destination{Transport: "error", Nexthop: "User unknown in virtual alias table"}},
	} {
		got, err := r.Route(context.Background(), tc.rcpt)
		if err != nil || got != tc.want {
			t.Errorf("Route(%s) = %+v, %v; want %+v", tc.rcpt, got, err, tc.want)
		}
	}
	if l := r.Limits("local"); l.Concurrency != 2 || l.Recipients != 1 {
		t.Errorf("Limits(local) = %+v", l)
	}
	msg := &queue.Message{Envelope: queue.Envelope{Recipients: []queue.Recipient{{Address: "a@example.jp"}, {Address: "b@example.jp"}}}}
	res := r.DeliverTo(context.Background(), queue.Destination{Transport: "virtual", Nexthop: "example.jp"}, msg, []int{0, 1})
	if len(res) != 2 || len(virt.got) != 1 || virt.nexthop[0] != "example.jp" {
		t.Errorf("DeliverTo: %+v, agent got %v %v", res, virt.got, virt.nexthop)
	}
	res = r.DeliverTo(context.Background(), queue.Destination{Transport: "pipe", Nexthop: "x"}, msg, []int{1})
	if len(res) != 1 || res[0].Rcpt != 1 || res[0].Status != queue.StatusDeferred || res[0].DSN != "4.3.0" {
		t.Errorf("DeliverTo an unknown transport: %+v", res)
	}
	if (&Router{}).Limits("smtp") != (queue.Limits{}) {
		t.Errorf("Limits without LimitsFor is not zero")
	}
}
