package rewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"postcote/internal/maillog"
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
// Per envelope, in cleanup's order (cleanup_envelope.c): the sender is
// qualified (Qualify, which also swaps bang paths and the percent hack of
// an address without a domain), canonicalized (sender_canonical_maps,
// canonical_maps) and masqueraded (envelope_sender); each recipient is
// qualified, canonicalized (recipient_canonical_maps, canonical_maps),
// masqueraded when masquerade_classes has envelope_recipient, and
// expanded through virtual_alias_maps, keeping the address the client
// gave as OrigAddress (orig_to=) and its DSN parameters; when the client's
// address itself routes through a local domain ("user%remote@ourhost",
// which smtpd allows only to clients that may relay), each result goes
// through ResolveLocal, the routing trivial-rewrite's resolver applies;
// duplicate results are dropped.
//
// The primary header block goes through CleanHeaders: header_size_limit,
// hopcount_limit, and, for the messages RewriteHeaders allows, the same
// qualification, canonical maps and masquerading of the header classes
// within header_address_token_limit. The body streams through.
//
// Failures are *Error values with Postfix's replies: an alias loop or an
// expansion over the limits "451 4.6.0 Alias expansion error", a table
// that cannot answer "451 4.3.0 Error: queue file write error", too many
// Received headers "554 5.4.0 Error: too many hops". Cleanup logs
// Postfix's warning for each ("warning: QUEUEID: unreasonable
// virtual_alias_maps map nesting for a@b -- message not accepted, try
// again later") and nothing is queued.
type Cleanup struct {
	Next  Queue
	Rules *Addresses
	// HeaderLimit is header_size_limit (DefaultHeaderLimit when zero).
	HeaderLimit int
	// TokenLimit is header_address_token_limit (DefaultTokenLimit when
	// zero).
	TokenLimit int
	// HopLimit is hopcount_limit (DefaultHopLimit when zero).
	HopLimit int
	// RewriteHeaders says whether the headers of a message are rewritten:
	// Postfix rewrites headers only for local submissions and clients in
	// local_header_rewrite_clients (default permit_inet_interfaces). Nil
	// means always.
	RewriteHeaders func(env *queue.Envelope) bool
	// Log receives cleanup's warnings; nil logs nothing.
	Log *maillog.Logger
}

// NewID implements smtpd.Queue.
func (c *Cleanup) NewID() queue.ID { return c.Next.NewID() }

// Enqueue implements smtpd.Queue.
func (c *Cleanup) Enqueue(ctx context.Context, env *queue.Envelope, content io.Reader) error {
	if err := c.rewriteEnvelope(ctx, env); err != nil {
		return c.fail(env, err)
	}
	o := HeaderOptions{SizeLimit: c.HeaderLimit, TokenLimit: c.TokenLimit, HopLimit: c.HopLimit}
	if o.HopLimit <= 0 {
		o.HopLimit = DefaultHopLimit
	}
	if c.rewritesHeaders() && (c.RewriteHeaders == nil || c.RewriteHeaders(env)) {
		o.Rewrite = c.headerAddress
	}
	if err := c.Next.Enqueue(ctx, env, CleanHeaders(ctx, content, o)); err != nil {
		return c.fail(env, err)
	}
	return nil
}

// fail logs cleanup's warning for err and wraps it.
func (c *Cleanup) fail(env *queue.Envelope, err error) error {
	var ce *Error
	if errors.As(err, &ce) && ce.Log != "" {
		c.Log.Warnf("cleanup", "%s: %s", env.ID, ce.Log)
	}
	return fmt.Errorf("cleanup: %w", err)
}

// rewritesHeaders tells whether any header address may change: a
// canonical map, masquerading of a header class, or the bang path and
// percent rewriting of unqualified addresses.
func (c *Cleanup) rewritesHeaders() bool {
	r := c.Rules
	return r != nil && (r.Canonical != nil || r.SenderCanonical != nil || r.RecipientCanonical != nil ||
		r.Masquerade.Applies(HeaderSender) || r.Masquerade.Applies(HeaderRecipient) ||
		r.SwapBangpath || r.PercentHack)
}

// headerAddress rewrites one header address: qualified only when a map
// or masquerading changes it, so that other addresses stay byte for
// byte, bang paths and the percent hack aside ("From: site!user" becomes
// "From: user@site", as Postfix's cleanup writes it).
func (c *Cleanup) headerAddress(ctx context.Context, class, addr string) (string, error) {
	r := c.Rules
	routed, _ := r.routeUnqualified(addr)
	q := r.Qualify(addr)
	na, err := r.Canonicalize(ctx, class, q)
	if err != nil {
		return addr, err
	}
	if na, err = r.Masquerade.Apply(ctx, class, na); err != nil {
		return addr, err
	}
	if na == q {
		return routed, nil
	}
	return na, nil
}

// clientRoutes tells whether the recipient address the client gave
// (internal form, before rewriting) routes through one of our local
// domains ("user%remote@ourhost"): only
// then are the recipients it expands to resolved with ResolveLocal.
// smtpd refuses such an address from clients that may not relay, so the
// routing was allowed. Postfix resolves every recipient, which lets a
// stranger's "victim%elsewhere@virtual.example" relay through a catch-all
// "@virtual.example @ourhost" alias; postcote does not.
func (c *Cleanup) clientRoutes(ctx context.Context, orig string) (bool, error) {
	r := c.Rules
	q := r.Qualify(orig)
	res, err := r.ResolveLocal(ctx, q)
	if err != nil {
		return false, lookupError("mydestination", q, err)
	}
	return res != q, nil
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
		if s, err = r.Masquerade.Apply(ctx, EnvelopeSender, s); err != nil {
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
		// The client's own address, before any table rewrote it.
		routes, err := c.clientRoutes(ctx, rc.Address)
		if err != nil {
			return err
		}
		addr, err := r.Canonicalize(ctx, EnvelopeRecipient, r.Qualify(rc.Address))
		if err != nil {
			return err
		}
		if addr, err = r.Masquerade.Apply(ctx, EnvelopeRecipient, addr); err != nil {
			return err
		}
		expanded, err := r.Expand(ctx, addr)
		if err != nil {
			return err
		}
		for _, a := range expanded {
			if routes {
				if a, err = r.ResolveLocal(ctx, a); err != nil {
					return lookupError("mydestination", a, err)
				}
			}
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
