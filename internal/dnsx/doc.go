// Package dnsx owns the DNS that postcote's MTA side asks: the smtp
// client (MX and address lookups, RFC 5321 5.1) and the SMTP server (the
// client's PTR and forward-confirmed name, reject_unknown_*_domain,
// reject_unknown_helo_hostname, and the DNS lists of reject_rbl_client
// and reject_rhsbl_*).
//
// Resolver is the small interface both use; *net.Resolver satisfies it.
// WithTimeout bounds every query (Postfix gives up on a name server after
// its resolver's timeout and treats that as a temporary failure). The
// outcome of a failed query falls in one of two classes, as Postfix's
// dns_lookup distinguishes DNS_NOTFOUND from DNS_RETRY: IsNotFound (the
// name or the record does not exist: NXDOMAIN or NODATA), or IsTemporary
// (SERVFAIL, timeout, no answer). Callers must not treat a temporary
// failure as a definite "no".
//
// StaticResolver answers from fixed tables and never sends a packet: the
// unit tests use it, and so do binaries built with the postcote_testdns
// tag (see internal/server). Its file format, read by ParseStaticResolver,
// is one record a line, zone-file like:
//
//	example.org       MX    10 mx.example.org
//	null.example      MX    0 .                  # RFC 7505 null MX
//	mx.example.org    A     127.0.0.2
//	v6.example.org    AAAA  ::1
//	127.0.0.2         PTR   mx.example.org       # keyed by the address
//	2.0.0.127.zen.example TXT "listed; see https://zen.example/"
//	broken.example    SERVFAIL                   # every query fails, temporarily
//
// A name with no record of the asked type does not exist for that query
// (NXDOMAIN, or NODATA when it has other records: both are "not found").
// Names compare without case and without the trailing dot. '#' starts a
// comment outside a quoted TXT string.
package dnsx
