// Package rewrite owns what Postfix's trivial-rewrite and cleanup decide
// about an address: its address class (ADDRESS_CLASS_README: local,
// virtual alias, virtual mailbox, relay, default), whether a recipient of
// one of our domains exists, and, as later work adds them, canonical,
// virtual and alias rewriting with the recipient delimiter.
//
// Domains are compared the way Postfix compares them: case-insensitively,
// with one trailing dot ignored ("Example.COM." is "example.com"). A list
// element ".example.com" matches subdomains; relay_domains elements match
// their subdomains too, as parent_domain_matches_subdomains says by
// default.
package rewrite
