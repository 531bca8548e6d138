package transport

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

// VirtualMaps is Postfix's virtual(8) delivery agent driven by
// virtual_mailbox_maps (VIRTUAL_README, virtual(8)): the recipient is
// looked up ("user+ext@domain", "user@domain", "@domain"), the result is
// a path under MailboxBase, a path ending in "/" is a Maildir, and files
// are owned by the uid and gid virtual_uid_maps and virtual_gid_maps
// give. Delivery goes through Mailbox.DeliverUser, the one delivery path
// shared with the userdb-driven virtual transport and LMTP.
type VirtualMaps struct {
	Mailbox *Mailbox // owner of DeliverUser: the store and the transport name
	// MailboxMaps, UIDMaps and GIDMaps are virtual_mailbox_maps,
	// virtual_uid_maps and virtual_gid_maps ("static:5000" is a table
	// too).
	MailboxMaps, UIDMaps, GIDMaps rewrite.Table
	// MailboxBase is virtual_mailbox_base, prepended to every result.
	MailboxBase string
	// MinimumUID is virtual_minimum_uid (default 100).
	MinimumUID int
	// Delimiter is recipient_delimiter.
	Delimiter string
}

// Deliver implements Agent.
func (v *VirtualMaps) Deliver(ctx context.Context, msg *queue.Message, rcpts []int, _ string) []queue.Result {
	name := v.Mailbox.Name
	if name == "" {
		name = "virtual"
	}
	results := make([]queue.Result, 0, len(rcpts))
	for _, i := range rcpts {
		start := time.Now()
		r := v.deliverOne(ctx, msg, msg.Envelope.Recipients[i].Address)
		r.Rcpt, r.Delay, r.Transport = i, time.Since(start), name
		if r.Relay == "" {
			r.Relay = name
		}
		results = append(results, r)
	}
	return results
}

// configError is a deferral for a setting that must be fixed (RFC 3463
// 4.3.5, as Postfix's virtual(8) reports map problems).
func configError(format string, args ...any) queue.Result {
	return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.5", Reply: fmt.Sprintf(format, args...)}
}

func (v *VirtualMaps) deliverOne(ctx context.Context, msg *queue.Message, rcpt string) queue.Result {
	user, res := v.Lookup(ctx, rcpt)
	if res != nil {
		return *res
	}
	body, err := msg.Open()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()}
	}
	defer body.Close()
	return v.Mailbox.DeliverUser(ctx, user, msg.Envelope.Sender, rcpt, body)
}

// Lookup finds rcpt's mailbox and owner. A non-nil result is the
// verdict when delivery cannot go ahead: unknown user (5.1.1), a table
// that cannot answer (4.3.0), or a configuration problem (4.3.5).
func (v *VirtualMaps) Lookup(ctx context.Context, rcpt string) (mailstore.User, *queue.Result) {
	fail := func(r queue.Result) (mailstore.User, *queue.Result) { return mailstore.User{}, &r }
	paths, found, err := rewrite.LookupAddress(ctx, v.MailboxMaps, rcpt, v.Delimiter)
	if err != nil {
		return fail(queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "temporary failure in virtual_mailbox_maps lookup: " + err.Error()})
	}
	if !found {
		return fail(queue.Result{Status: queue.StatusBounced, DSN: "5.1.1", Reply: fmt.Sprintf("unknown user: \"%s\"", rcpt)})
	}
	rel := paths[0]
	if !strings.HasSuffix(rel, "/") {
		// virtual(8) would append to an mbox file; postcote stores
		// Maildirs only. Defer so nothing is lost while the map is fixed.
		return fail(configError("mailbox %q for %s in virtual_mailbox_maps is an mbox file (no trailing \"/\"); postcote delivers to Maildir only", rel, rcpt))
	}
	if strings.Contains("/"+rel, "/../") {
		return fail(configError("mailbox %q for %s in virtual_mailbox_maps contains \"..\"", rel, rcpt))
	}
	path := filepath.Join(v.MailboxBase, rel)
	uid, res := v.id(ctx, v.UIDMaps, "virtual_uid_maps", rcpt)
	if res != nil {
		return fail(*res)
	}
	if uid < v.MinimumUID {
		return fail(configError("recipient %s: bad uid %d in virtual_uid_maps (below virtual_minimum_uid %d)", rcpt, uid, v.MinimumUID))
	}
	gid, res := v.id(ctx, v.GIDMaps, "virtual_gid_maps", rcpt)
	if res != nil {
		return fail(*res)
	}
	if gid <= 0 {
		return fail(configError("recipient %s: bad gid %d in virtual_gid_maps", rcpt, gid))
	}
	return mailstore.User{Name: rcpt, Home: path, MailLocation: "maildir:" + path, UID: uid, GID: gid}, nil
}

// id looks up a numeric uid or gid.
func (v *VirtualMaps) id(ctx context.Context, t rewrite.Table, param, rcpt string) (int, *queue.Result) {
	if t == nil {
		r := configError("recipient %s: %s is not set", rcpt, param)
		return 0, &r
	}
	vals, found, err := rewrite.LookupAddress(ctx, t, rcpt, v.Delimiter)
	if err != nil {
		r := queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("temporary failure in %s lookup: %v", param, err)}
		return 0, &r
	}
	if !found {
		r := configError("recipient %s: uid not found in %s", rcpt, param)
		if param == "virtual_gid_maps" {
			r = configError("recipient %s: gid not found in %s", rcpt, param)
		}
		return 0, &r
	}
	n, err := strconv.Atoi(strings.TrimSpace(vals[0]))
	if err != nil || n < 0 {
		r := configError("recipient %s: bad value %q in %s", rcpt, vals[0], param)
		return 0, &r
	}
	return n, nil
}
