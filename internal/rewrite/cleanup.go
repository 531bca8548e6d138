package rewrite

import (
	"context"
	"fmt"
	"io"
	"strings"

	"postcote/internal/queue"
)

// Queue is where cleaned-up mail goes: internal/queue's Queue.
type Queue interface {
	NewID() queue.ID
	Enqueue(ctx context.Context, env *queue.Envelope, content io.Reader) error
}

// Cleanup is Postfix's cleanup(8) address processing between the mail
// sources (smtpd, pickup) and the queue: it implements their Queue
// interface by rewriting the envelope and the address headers and
// expanding virtual aliases, then handing the message to Next.
//
// Per envelope, in cleanup's order: the sender is qualified (Qualify)
// and canonicalized (sender_canonical_maps, canonical_maps); each
// recipient is qualified, canonicalized (recipient_canonical_maps,
// canonical_maps) and expanded through virtual_alias_maps, keeping the
// address the client gave as OrigAddress (orig_to=) and its DSN
// parameters; duplicate results are dropped. A table that cannot answer,
// or an alias loop or expansion over the limits, fails Enqueue and
// nothing is queued: the client gets a temporary error.
type Cleanup struct {
	Next  Queue
	Rules *Addresses
	// HeaderLimit is header_size_limit (DefaultHeaderLimit when zero).
	HeaderLimit int
	// RewriteHeaders says whether the headers of a message are rewritten:
	// Postfix rewrites headers only for local submissions and clients in
	// local_header_rewrite_clients (default permit_inet_interfaces). Nil
	// means always.
	RewriteHeaders func(env *queue.Envelope) bool
}

// NewID implements smtpd.Queue.
func (c *Cleanup) NewID() queue.ID { return c.Next.NewID() }

// Enqueue implements smtpd.Queue.
func (c *Cleanup) Enqueue(ctx context.Context, env *queue.Envelope, content io.Reader) error {
	if err := c.rewriteEnvelope(ctx, env); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	if c.hasHeaderMaps() && (c.RewriteHeaders == nil || c.RewriteHeaders(env)) {
		r, err := RewriteHeaders(ctx, content, c.HeaderLimit, c.headerAddress)
		if err != nil {
			return fmt.Errorf("cleanup: read message header: %w", err)
		}
		content = r
	}
	return c.Next.Enqueue(ctx, env, content)
}

// hasHeaderMaps tells whether any canonical map may apply to headers.
func (c *Cleanup) hasHeaderMaps() bool {
	r := c.Rules
	return r != nil && (r.Canonical != nil || r.SenderCanonical != nil || r.RecipientCanonical != nil)
}

// headerAddress rewrites one header address: qualified only when a map
// matches, so that addresses the maps do not know stay byte for byte.
func (c *Cleanup) headerAddress(ctx context.Context, class, addr string) (string, error) {
	q := c.Rules.Qualify(addr)
	na, err := c.Rules.Canonicalize(ctx, class, q)
	if err != nil || na == q {
		return addr, err
	}
	return na, nil
}

// rewriteEnvelope rewrites env in place.
func (c *Cleanup) rewriteEnvelope(ctx context.Context, env *queue.Envelope) error {
	r := c.Rules
	if r == nil {
		return nil
	}
	if env.Sender != "" {
		s, err := r.Canonicalize(ctx, EnvelopeSender, r.Qualify(env.Sender))
		if err != nil {
			return err
		}
		env.Sender = s
	}
	var out []queue.Recipient
	seen := map[string]bool{}
	for _, rc := range env.Recipients {
		if rc.OrigAddress == "" {
			rc.OrigAddress = rc.Address
		}
		if rc.Status != queue.Pending {
			out = append(out, rc)
			continue
		}
		addr, err := r.Canonicalize(ctx, EnvelopeRecipient, r.Qualify(rc.Address))
		if err != nil {
			return err
		}
		expanded, err := r.Expand(ctx, addr)
		if err != nil {
			return err
		}
		for _, a := range expanded {
			// cleanup's duplicate filter: one copy per address and
			// notification request.
			key := strings.ToLower(a) + "\x00" + rc.DSNNotify
			if seen[key] {
				continue
			}
			seen[key] = true
			n := rc
			n.Address = a
			out = append(out, n)
		}
	}
	env.Recipients = out
	return nil
}
