package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

// UserLookup finds the owner of a mailbox: the mailbox role's userdb.
// found is false for a user that does not exist; err means the back end
// could not answer.
type UserLookup interface {
	LookupUser(ctx context.Context, service, name string) (u mailstore.User, found bool, err error)
}

// Mailbox delivers into users' Maildirs through the mail store, as
// Dovecot's LMTP server and LDA do: the user is looked up in the userdb by
// the recipient address (and, with a recipient delimiter, by the address
// without its extension), and the message goes into INBOX with
// Return-Path and Delivered-To prepended.
type Mailbox struct {
	Users     UserLookup
	Store     mailstore.Deliverer
	Delimiter string // recipient_delimiter: "user+ext@d" is delivered to "user@d"
	Name      string // transport name for logs, e.g. "virtual"
}

// Deliver implements Agent.
func (m *Mailbox) Deliver(ctx context.Context, msg *queue.Message, rcpts []int, _ string) []queue.Result {
	results := make([]queue.Result, 0, len(rcpts))
	for _, i := range rcpts {
		start := time.Now()
		r := m.deliverOne(ctx, msg, msg.Envelope.Recipients[i].Address)
		r.Rcpt, r.Delay, r.Transport = i, time.Since(start), m.Name
		if r.Relay == "" {
			r.Relay = m.Name
		}
		results = append(results, r)
	}
	return results
}

func (m *Mailbox) deliverOne(ctx context.Context, msg *queue.Message, rcpt string) queue.Result {
	user, found, err := m.Lookup(ctx, rcpt)
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "temporary failure in user lookup: " + err.Error()}
	}
	if !found {
		return queue.Result{Status: queue.StatusBounced, DSN: "5.1.1", Reply: fmt.Sprintf("user unknown: <%s>", rcpt)}
	}
	body, err := msg.Open()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()}
	}
	defer body.Close()
	return m.DeliverUser(ctx, user, msg.Envelope.Sender, rcpt, body)
}

// DeliverUser stores one copy of a message for rcpt, whose mailbox owner
// Lookup found, into its INBOX with Return-Path and Delivered-To
// prepended. It is the one delivery path of the virtual transport and of
// the LMTP server; it returns when the copy is durable (the store fsyncs)
// or has failed: 2.0.0 sent, 5.2.2 bounced for a full mailbox, 4.2.0
// deferred for other store failures.
func (m *Mailbox) DeliverUser(ctx context.Context, user mailstore.User, sender, rcpt string, body io.Reader) queue.Result {
	var head bytes.Buffer
	// Postfix's virtual(8) and Dovecot's LMTP both prepend these two.
	fmt.Fprintf(&head, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", sender, rcpt)
	err := m.Store.Deliver(ctx, user, "INBOX", nil, io.MultiReader(&head, body))
	switch {
	case err == nil:
		return queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: "delivered to maildir"}
	case errors.Is(err, mailstore.ErrOverQuota):
		return queue.Result{Status: queue.StatusBounced, DSN: "5.2.2", Reply: "mailbox full"}
	}
	return queue.Result{Status: queue.StatusDeferred, DSN: "4.2.0", Reply: "cannot store message: " + err.Error()}
}

// Lookup finds the mailbox owner for rcpt, trying "user+ext@d" then
// "user@d" when a recipient delimiter is set (Postfix's
// recipient_delimiter; Dovecot's LMTP does the same). found is false for
// an unknown user; err means the userdb could not answer.
func (m *Mailbox) Lookup(ctx context.Context, rcpt string) (mailstore.User, bool, error) {
	u, found, err := m.Users.LookupUser(ctx, "lmtp", rcpt)
	if err != nil || found || m.Delimiter == "" {
		return u, found, err
	}
	local, domain := rewrite.SplitAddress(rcpt)
	if i := strings.IndexAny(local, m.Delimiter); i > 0 {
		base := local[:i]
		if domain != "" {
			base += "@" + domain
		}
		return m.Users.LookupUser(ctx, "lmtp", base)
	}
	return u, false, nil
}
