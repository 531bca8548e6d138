package rewrite

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// UserChecker tells whether a mailbox user of the Dovecot userdb exists
// (the mailbox role's users).
type UserChecker interface {
	UserExists(ctx context.Context, name string) (bool, error)
}

// Recipients answers smtpd's questions about recipients (its Addresses
// interface) as Postfix's smtpd_reject_unlisted_recipient does
// (smtpd_check.c check_rcpt_maps, LOCAL_RECIPIENT_README,
// VIRTUAL_README) for the address as trivial-rewrite resolves it
// (ResolveLocal): an address that canonical_maps,
// recipient_canonical_maps or virtual_alias_maps know is a known
// recipient; otherwise the table of its address class decides, and an
// address of no class of ours is left to the relay restrictions.
type Recipients struct {
	Domains *Domains
	// Rules holds the canonical and virtual alias maps and the recipient
	// delimiter; nil means none.
	Rules *Addresses
	// LocalRecipientMaps is local_recipient_maps; nil means local
	// recipients are not checked (Postfix's empty setting) unless
	// Passwd is set.
	LocalRecipientMaps Table
	// Passwd is a passwd(5) file searched for local users when
	// LocalRecipientMaps is nil: the built-in reading of the default
	// "proxy:unix:passwd.byname $alias_maps".
	Passwd string
	// VirtualMailboxMaps is virtual_mailbox_maps; when nil, Users decides
	// (the Dovecot userdb), and with no Users either the next hop does.
	VirtualMailboxMaps Table
	Users              UserChecker
	// RelayRecipientMaps is relay_recipient_maps; nil accepts every
	// recipient of relay_domains.
	RelayRecipientMaps Table
}

// Classify implements smtpd.Addresses.
func (r *Recipients) Classify(ctx context.Context, domain string) (Class, error) {
	return r.Domains.ClassifyContext(ctx, domain)
}

// KnownRecipient implements smtpd.Addresses. found is false for an
// unknown user; err is for a table that could not answer, which smtpd
// turns into a temporary 451 4.3.0.
func (r *Recipients) KnownRecipient(ctx context.Context, address string) (bool, error) {
	rules := r.Rules
	if rules == nil {
		rules = &Addresses{Domains: r.Domains}
	}
	// smtpd_check.c checks the address trivial-rewrite resolves to:
	// "user%remote@ourhost" (which only clients that may relay get past
	// the relay restrictions) is user@remote, not a local user.
	if res, err := rules.ResolveLocal(ctx, address); err != nil {
		return false, err
	} else if res != address {
		return r.KnownRecipient(ctx, res)
	}
	for _, t := range []Table{rules.RecipientCanonical, rules.Canonical, rules.VirtualAlias} {
		_, found, err := rules.mapAddress(ctx, t, address, false)
		if err != nil || found {
			return found, err
		}
	}
	local, domain := SplitAddress(address)
	class, err := r.Domains.ClassifyContext(ctx, domain)
	if err != nil {
		return false, err
	}
	switch class {
	case Local:
		// RFC 5321 4.5.1: postmaster must be accepted.
		if strings.EqualFold(local, "postmaster") {
			return true, nil
		}
		if r.LocalRecipientMaps != nil {
			_, found, err := rules.mapAddress(ctx, r.LocalRecipientMaps, address, false)
			return found, err
		}
		if r.Passwd != "" {
			base, _ := splitExtension(local, rules.Delimiter)
			return systemUserExists(r.Passwd, strings.ToLower(base))
		}
		return true, nil
	case VirtualAlias:
		// Not in virtual_alias_maps (checked above).
		return false, nil
	case VirtualMailbox:
		if r.VirtualMailboxMaps != nil {
			_, found, err := rules.mapAddress(ctx, r.VirtualMailboxMaps, address, false)
			return found, err
		}
		if r.Users == nil {
			// No mailbox role here: like Postfix with an empty
			// virtual_mailbox_maps, the next hop decides.
			return true, nil
		}
		ok, err := r.Users.UserExists(ctx, address)
		if err != nil || ok {
			return ok, err
		}
		if base, ext := splitExtension(local, rules.Delimiter); ext != "" {
			return r.Users.UserExists(ctx, base+"@"+domain)
		}
		return false, nil
	case Relay:
		if r.RelayRecipientMaps != nil {
			_, found, err := rules.mapAddress(ctx, r.RelayRecipientMaps, address, false)
			return found, err
		}
	}
	return true, nil
}

// systemUserExists looks name up in a passwd(5) file.
func systemUserExists(passwd, name string) (bool, error) {
	data, err := os.ReadFile(passwd)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", passwd, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if n, _, ok := strings.Cut(line, ":"); ok && n == name {
			return true, nil
		}
	}
	return false, nil
}
