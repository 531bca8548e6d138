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
	user, found, err := m.lookup(ctx, rcpt)
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
	var head bytes.Buffer
	// Postfix's virtual(8) and Dovecot's LMTP both prepend these two.
	fmt.Fprintf(&head, "Return-Path: <%s>\r\nDelivered-To: %s\r\n", msg.Envelope.Sender, rcpt)
	err = m.Store.Deliver(ctx, user, "INBOX", nil, io.MultiReader(&head, body))
	switch {
	case err == nil:
		return queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: "delivered to maildir"}
	case errors.Is(err, mailstore.ErrOverQuota):
		return queue.Result{Status: queue.StatusBounced, DSN: "5.2.2", Reply: "mailbox full"}
	}
	return queue.Result{Status: queue.StatusDeferred, DSN: "4.2.0", Reply: "cannot store message: " + err.Error()}
}

// lookup finds the user for rcpt, trying "user+ext@d" then "user@d" when
// a recipient delimiter is set.
func (m *Mailbox) lookup(ctx context.Context, rcpt string) (mailstore.User, bool, error) {
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
