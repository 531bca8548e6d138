package server

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"postcote/internal/config/postfixconf"
	"postcote/internal/maillog"
	"postcote/internal/pickup"
	"postcote/internal/qctl"
	"postcote/internal/queue"
)

// Local-submission paths under queue_directory, shared with the
// sendmail, postqueue and postsuper commands.

// MaildropDir is where `postcote sendmail` leaves messages for pickup.
func MaildropDir(m *postfixconf.Main) string { return filepath.Join(queueDir(m), "maildrop") }

// PickupSocket is the datagram socket that wakes pickup.
func PickupSocket(m *postfixconf.Main) string {
	return filepath.Join(m.Get("queue_directory"), "public", "pickup")
}

// ControlSocket is the queue's control socket (package qctl).
func ControlSocket(m *postfixconf.Main) string {
	return filepath.Join(m.Get("queue_directory"), "public", "qmgr")
}

// QueueDir is the spool the server owns, $queue_directory/postcote.
func QueueDir(m *postfixconf.Main) string { return queueDir(m) }

// Site returns what pickup's cleanup needs from main.cf.
func Site(m *postfixconf.Main) (pickup.Site, error) {
	origin, err := m.FileValue("myorigin")
	if err != nil {
		return pickup.Site{}, err
	}
	from, err := pickup.ParseFromFormat(m.Get("header_from_format"))
	if err != nil {
		return pickup.Site{}, fmt.Errorf("%s: %w", m.Pos("header_from_format"), err)
	}
	return pickup.Site{MyHostname: m.Get("myhostname"), MyOrigin: origin, HeaderFrom: from}, nil
}

// ctlQueue is the queue as the control socket serves it: postsuper -r
// queues the message again through pickup's queue, the current
// generation's cleanup, so its addresses are rewritten as new mail's are.
type ctlQueue struct {
	*queue.Queue
	resubmit pickup.Queue
}

// Requeue implements qctl.Queue.
func (c ctlQueue) Requeue(id queue.ID) (int, error) {
	return c.Queue.RequeueVia(context.Background(), id, c.resubmit.Enqueue)
}

// startLocal starts pickup (maildrop into the queue) and the queue's
// control socket; the function it returns stops both and waits for them.
//
// Pickup enqueues through pq (the current generation's cleanup); the
// control socket works on the queue itself, but requeues through pq.
func startLocal(l *loaded, q *queue.Queue, pq pickup.Queue, log *maillog.Logger) (func(), error) {
	m := l.postfix.Main
	site, err := Site(m)
	if err != nil {
		return nil, err
	}
	size, err := m.Size("message_size_limit")
	if err != nil {
		return nil, err
	}
	p, err := pickup.New(pickup.Options{
		Dir: MaildropDir(m), CorruptDir: filepath.Join(queueDir(m), "corrupt"),
		WakeSocket: PickupSocket(m), Site: site, Queue: pq, Logger: log, MaxSize: size,
	})
	if err != nil {
		return nil, fmt.Errorf("pickup: %w", err)
	}
	ctl, err := qctl.Listen(ControlSocket(m), ctlQueue{q, pq}, log)
	if err != nil {
		// Run has not started: close pickup's socket by running it on a
		// context that is already done.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		p.Run(ctx)
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		p.Run(ctx)
	}()
	go func() {
		defer wg.Done()
		if err := ctl.Serve(ctx); err != nil {
			log.Warnf("master", "queue control socket: %v", err)
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}, nil
}
