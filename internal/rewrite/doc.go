// Package rewrite owns what Postfix's trivial-rewrite, cleanup and the
// alias part of local decide about addresses:
//
//   - address classes (ADDRESS_CLASS_README: local, virtual alias,
//     virtual mailbox, relay, default) from domain lists that may name
//     lookup tables (Domains, DomainList);
//   - rewriting (ADDRESS_REWRITING_README): qualifying bare local parts
//     with $myorigin and append_dot_mydomain, canonical_maps,
//     sender_canonical_maps and recipient_canonical_maps per canonical
//     class, and recursive virtual_alias_maps expansion (Addresses);
//   - sender-specified routing as trivial-rewrite honours it for mail
//     that was allowed to relay: swap_bangpath and allow_percent_hack for
//     addresses without a domain (Qualify), and for recipients in our
//     local domains with resolve_dequoted_address (ResolveLocal, route.go);
//   - masquerade_domains, masquerade_classes and masquerade_exceptions
//     (Masquerade);
//   - Cleanup, the stage between smtpd/pickup and the queue that applies
//     those rewrites to the envelope and, streaming one header at a time
//     (CleanHeaders), to the address headers of the message, with
//     header_size_limit, header_address_token_limit and hopcount_limit
//     as Postfix's cleanup enforces them. Headers are rewritten in
//     trivial-rewrite's local context for local submissions and clients
//     in local_header_rewrite_clients, in its remote context
//     (remote_header_rewrite_domain completes incomplete addresses) for
//     other clients, and not at all for them when that domain is empty. Its failures are *Error values
//     carrying Postfix's reply ("451 4.6.0 Alias expansion error", "554
//     5.4.0 Error: too many hops") for smtpd to give;
//   - recipient validation at RCPT (Recipients), as
//     smtpd_reject_unlisted_recipient does per class;
//   - aliases(5) expansion for the local transport (ExpandAliases).
//
// Lookup keys follow canonical(5) and virtual(5): "user+ext@domain",
// then "user@domain", then "user" (only for $myorigin and mydestination
// domains), then "@domain". Domains are compared the way Postfix compares
// them: case-insensitively, with one trailing dot ignored; the domain part
// of a key is lower case, the local part as given (tables that fold case
// do so themselves). A list element ".example.com" matches subdomains;
// relay_domains elements match their subdomains too, as
// parent_domain_matches_subdomains says by default.
//
// Tables are anything with Lookup(ctx, key); internal/lookup provides
// them. A table that cannot answer is a temporary failure everywhere in
// this package, never "not found".
package rewrite
