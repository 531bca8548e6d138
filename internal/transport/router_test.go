package transport

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

// recorder is an Agent that remembers what it was given.
type recorder struct {
	got     [][]int
	nexthop []string
}

func (r *recorder) Deliver(_ context.Context, _ *queue.Message, rcpts []int, nexthop string) []queue.Result {
	r.got = append(r.got, rcpts)
	r.nexthop = append(r.nexthop, nexthop)
	return each(rcpts, queue.Result{Status: queue.StatusSent, DSN: "2.0.0"})
}

func TestRouterPicksTransportPerClass(t *testing.T) {
	virt, smtp := &recorder{}, &recorder{}
	r := &Router{
		Domains: &rewrite.Domains{
			Local:          rewrite.NewDomainList([]string{"localhost"}, false),
			VirtualMailbox: rewrite.NewDomainList([]string{"example.jp"}, false),
		},
		VirtualTransport: "virtual",
		LocalTransport:   "local:mail.example.jp",
		DefaultTransport: "smtp",
		Relayhost:        "[relay.example]:587",
		DeferTransports:  map[string]bool{"local": true},
		Agents:           map[string]Agent{"virtual": virt, "smtp": smtp},
	}
	msg := &queue.Message{Envelope: queue.Envelope{Recipients: []queue.Recipient{
		{Address: "a@example.jp"}, {Address: "root@localhost"}, {Address: "x@elsewhere.example"}, {Address: "b@EXAMPLE.JP"},
	}}}
	res := r.Deliver(context.Background(), msg, []int{0, 1, 2, 3})
	if len(res) != 4 {
		t.Fatalf("got %d results, want 4", len(res))
	}
	byRcpt := map[int]queue.Result{}
	for _, x := range res {
		byRcpt[x.Rcpt] = x
	}
	if len(virt.got) != 1 || len(virt.got[0]) != 2 {
		t.Errorf("virtual got %v, want one call with recipients 0 and 3", virt.got)
	}
	if byRcpt[1].Status != queue.StatusDeferred || byRcpt[1].Reply != "deferred transport" {
		t.Errorf("defer_transports: got %+v", byRcpt[1])
	}
	if len(smtp.nexthop) != 1 || smtp.nexthop[0] != "[relay.example]:587" {
		t.Errorf("relayhost not used as next hop: %v", smtp.nexthop)
	}
}

func TestRouterUnknownTransportDefers(t *testing.T) {
	r := &Router{Domains: &rewrite.Domains{}, DefaultTransport: "smtp", Agents: map[string]Agent{}}
	msg := &queue.Message{Envelope: queue.Envelope{Recipients: []queue.Recipient{{Address: "x@elsewhere.example"}}}}
	res := r.Deliver(context.Background(), msg, []int{0})
	if len(res) != 1 || res[0].Status != queue.StatusDeferred || res[0].DSN != "4.3.0" {
		t.Errorf("got %+v, want a 4.3.0 deferral", res)
	}
}

func TestErrorAndDiscard(t *testing.T) {
	res := Error{}.Deliver(context.Background(), nil, []int{0, 1}, " Local delivery only!")
	if len(res) != 2 || res[1].Rcpt != 1 || res[0].Status != queue.StatusBounced || res[0].Reply != "Local delivery only!" {
		t.Errorf("error transport: %+v", res)
	}
	res = Discard{}.Deliver(context.Background(), nil, []int{2}, "")
	if len(res) != 1 || res[0].Rcpt != 2 || res[0].Status != queue.StatusSent {
		t.Errorf("discard transport: %+v", res)
	}
}

type fakeUsers map[string]mailstore.User

func (f fakeUsers) LookupUser(_ context.Context, _, name string) (mailstore.User, bool, error) {
	u, ok := f[name]
	return u, ok, nil
}

// TestMailboxDelivers runs a real queue and the real Maildir store: the
// message lands in the user's INBOX with Return-Path and Delivered-To,
// an unknown user bounces with 5.1.1, and user+ext finds user.
func TestMailboxDelivers(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	users := fakeUsers{"info@example.jp": {Name: "info@example.jp", Home: home, MailLocation: "maildir:~/Maildir", UID: -1, GID: -1}}
	q, err := queue.Open(filepath.Join(dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	env := &queue.Envelope{Sender: "s@elsewhere.example", Recipients: []queue.Recipient{
		{Address: "info@example.jp"}, {Address: "nobody@example.jp"}, {Address: "info+lists@example.jp"},
	}}
	if err := q.Enqueue(context.Background(), env, strings.NewReader("Subject: hi\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	agent := &Mailbox{Users: users, Store: mailstore.NewStore(mailstore.Options{}), Delimiter: "+", Name: "virtual"}
	results := make(chan []queue.Result, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go q.Run(ctx, queue.AgentFunc(func(ctx context.Context, msg *queue.Message, rcpts []int) []queue.Result {
		r := agent.Deliver(ctx, msg, rcpts, "")
		results <- r
		return r
	}))
	var res []queue.Result
	select {
	case res = <-results:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
	}
	cancel()
	status := map[int]queue.Result{}
	for _, r := range res {
		status[r.Rcpt] = r
	}
	if status[0].Status != queue.StatusSent || status[2].Status != queue.StatusSent {
		t.Errorf("deliveries to info and info+lists: %+v, %+v", status[0], status[2])
	}
	if status[1].Status != queue.StatusBounced || status[1].DSN != "5.1.1" {
		t.Errorf("unknown user: %+v, want bounced 5.1.1", status[1])
	}
	entries, err := os.ReadDir(filepath.Join(home, "Maildir", "new"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("INBOX has %d new messages, want 2", len(entries))
	}
	f, err := os.Open(filepath.Join(home, "Maildir", "new", entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	// Dovecot keeps Maildir files with bare LF line ends (mail_save_crlf = no).
	if !strings.HasPrefix(string(b), "Return-Path: <s@elsewhere.example>\nDelivered-To: info") {
		t.Errorf("delivered message starts %q", string(b[:60]))
	}
}
