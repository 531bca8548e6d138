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
// hopcount_limit, and the address headers' rewriting within
// header_address_token_limit in one of trivial-rewrite's two contexts
// (cleanup_envelope.c, trivial-rewrite.c), as HeaderContext decides:
//
//   - local (local submissions, clients in local_header_rewrite_clients):
//     an address without a domain ("From: user") gets "@$myorigin"
//     appended, after bang path and percent swapping ("site!user" and
//     "user%site" become "user@site"), "user@host" gets ".$mydomain"
//     when append_dot_mydomain is on; then the canonical maps and
//     masquerading of the header classes apply;
//   - remote, with RemoteHeaderDomain (remote_header_rewrite_domain)
//     set: the same with RemoteHeaderDomain in place of both $myorigin
//     and $mydomain ("From: user" becomes "From: user@RemoteHeaderDomain",
//     "user@host" "user@host.RemoteHeaderDomain" with
//     append_dot_mydomain); canonical lookups still try the bare "user"
//     key only for $myorigin and mydestination domains;
//   - remote with RemoteHeaderDomain empty: no header is rewritten at
//     all (Postfix's default for strangers' mail).
//
// In either context the null address ("<>"), "@" alone and "user@" stay
// as they are, and only the address is replaced: display names,
// comments, groups and the header's folding are kept byte for byte
// (Postfix re-folds a header it rewrote; the addresses are the same).
//
// The body streams through.
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
	// HeaderContext says whether a message's headers are rewritten in
	// the local context (true): Postfix's smtpd_check_rewrite gives it
	// to local submissions and to clients in local_header_rewrite_clients
	// (default permit_inet_interfaces), the remote context to the rest.
	// An error (a check_address_map table that cannot answer) refuses
	// the message with a temporary failure. Nil means local always.
	HeaderContext func(ctx context.Context, env *queue.Envelope) (local bool, err error)
	// RemoteHeaderDomain is remote_header_rewrite_domain: the domain of
	// incomplete header addresses in the remote context. Empty means
	// remote clients' headers are not rewritten at all.
	RemoteHeaderDomain string
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
	local := true
	if c.HeaderContext != nil {
		var err error
		if local, err = c.HeaderContext(ctx, env); err != nil {
			// smtpd_check_rewrite's answer to a table that cannot
			// answer.
			return c.fail(env, &Error{Code: 451, Status: "4.3.0", Text: "Temporary lookup error",
				Log: fmt.Sprintf("local_header_rewrite_clients: %v -- message not accepted, try again later", err), Err: err})
		}
	}
	switch {
	case c.Rules == nil:
	case local:
		o.Rewrite = c.headerRewrite(c.Rules.Myorigin, c.Rules.Mydomain)
	case c.RemoteHeaderDomain != "":
		o.Rewrite = c.headerRewrite(c.RemoteHeaderDomain, c.RemoteHeaderDomain)
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

// headerRewrite returns the rewriting of one header address in a
// trivial-rewrite context whose origin and domain are given (the local
// context's $myorigin and $mydomain, the remote context's
// remote_header_rewrite_domain for both): qualified as rewrite_tree
// does, then the canonical maps and masquerading of the header classes,
// as Postfix's cleanup_rewrite_sender and cleanup_rewrite_recip do. An
// address nothing changes comes back as it was.
func (c *Cleanup) headerRewrite(origin, domain string) func(ctx context.Context, class, addr string) (string, error) {
	r := c.Rules
	return func(ctx context.Context, class, addr string) (string, error) {
		q := r.qualifyIn(addr, origin, domain)
		na, err := r.Canonicalize(ctx, class, q)
		if err != nil {
			return addr, err
		}
		return r.Masquerade.Apply(ctx, class, na)
	}
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
