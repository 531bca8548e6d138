// Package lookup owns Postfix's lookup tables: one small interface,
// Table.Lookup(ctx, key) ([]string, error), and one file per table type.
// A key that is absent gives nil and no error; a back end that cannot
// answer gives an error wrapping ErrLookup (Postfix's "table lookup
// problem"), on which the MTA defers rather than rejects.
//
// Tables are named "type:name" as in main.cf. Open opens one; a
// Registry opens each "type:name" once and shares it among the
// parameters that name it (one parse, one connection pool). Keys of
// fixed-string tables (hash, texthash, inline, unix, ldap, mysql, pgsql,
// sqlite) are folded to lower case before the lookup, as Postfix's
// DICT_FLAG_FOLD_FIX does (Options.NoFold is postmap -f); regexp and
// pcre tables see the key as given and match it with the pattern's
// flags; static ignores it.
//
// Types:
//
//   - hash:FILE and texthash:FILE read postmap(1)'s text format: "key
//     whitespace value", "#" comment lines, blank lines, and lines that
//     start with whitespace continuing the previous one; a key holding
//     whitespace is written "in double quotes" with backslash escapes.
//     The first of duplicate keys wins (with a warning). FILE in the
//     aliases(5) syntax ("name: value, value", ":include:", "|command"
//     and "/file" kept as written: the delivery side decides what is
//     allowed) is read the same way by postalias/newaliases; the value
//     is the text after the colon, which SplitList cuts on commas.
//     texthash: reads the text on open. hash: reads FILE.pcdb, the
//     index `postcote postmap FILE` (or `postalias FILE`) writes.
//   - regexp:FILE (regexp_table(5)) and pcre:FILE (pcre_table(5)):
//     "/pattern/flags result", "!/pattern/ result", "if /pattern/" …
//     "endif" blocks (nested), $1 / ${1} substitution, "$$" for "$".
//     regexp: patterns are POSIX extended syntax, case-insensitive unless
//     the i flag toggles it, matched leftmost-longest by Go's RE2; pcre:
//     patterns go to RE2 when it accepts them (linear time) and to
//     github.com/dlclark/regexp2 otherwise (backreferences, lookaround,
//     the x flag), with a 100 ms limit per match so a pathological
//     pattern cannot hang delivery. Errors name file:line.
//   - inline:{ key=value, { key = text, with commas } }, static:value,
//     static:{ text with spaces }, proxy:TYPE:NAME (the inner table: one
//     process shares tables without proxymap), unix:passwd.byname and
//     unix:group.byname (the files read directly, the whole entry as
//     the value, as dict_unix gives it).
//   - ldap:FILE (ldap_table(5), through internal/ldapx), mysql:FILE,
//     pgsql:FILE, sqlite:FILE (mysql_table(5) and friends, through
//     internal/sqlx). The %s %u %d %S %U %D %1-%9 expansions (expand.go)
//     are escaped per RFC 4515 in filters and RFC 4514 in search_base;
//     SQL values are bound as parameters, never pasted. Several
//     attribute values, rows or columns give several results, in order.
//
// The hash: index. Postfix's FILE.db is Berkeley DB; postcote writes its
// own format to FILE.pcdb so neither program misreads the other's file:
//
//	"PCDB"                 4 bytes magic
//	version, format, flags 1 byte each (version 1; format 0 map, 1 aliases;
//	                       flags bit 0: keys folded), 1 byte zero
//	source size            8 bytes big-endian
//	source mtime           8 bytes big-endian, nanoseconds since 1970
//	count                  4 bytes big-endian
//	count records          uvarint key length, key, uvarint value length,
//	                       value; sorted by key, keys unique
//	CRC-32C                4 bytes big-endian, of all the bytes before
//
// The whole index is loaded into a map on open (lookups never touch the
// disk). Stale index policy: the index is a cache of its source, as
// Dovecot's indexes are of the mails. When the source's size or mtime
// differ from those recorded (an edit without `postcote postmap`), or
// the index is missing or corrupt, the table transparently re-reads the
// source, serves it, and rewrites the index atomically (temporary file,
// fsync, rename), logging a warning that names the command to run; if
// the folder is not writable it still serves the source. An index whose
// source is gone is served as is. Open tables look at their source at
// most once a second and reload it when it changed (size, mtime or
// file identity), where Postfix daemons would restart; a source changed
// less than a second ago (by its ctime) or rewritten while being read
// is left for the next check, so a file half written is never served.
//
// Cache (cache.go) wraps any table with a bounded LRU of results kept
// for a TTL; errors are never cached.
package lookup
