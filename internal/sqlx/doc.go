// Package sqlx is the SQL plumbing shared by the sql passdb/userdb
// (internal/userdb) and, later, the MTA's mysql:/pgsql:/sqlite: lookup
// tables. It owns three things:
//
//   - Connection settings. Dovecot's connect string
//     ("host=db1 host=db2 dbname=mail user=dovecot password=secret
//     port=3306 ssl_ca=/etc/ssl/ca.pem ...", see
//     https://doc.dovecot.org/2.3/configuration_manual/authentication/sql/)
//     is read by ParseConnect; Postfix's mysql_table(5)/pgsql_table(5)
//     parameters (hosts = unix:/path inet:host:port host, user,
//     password, dbname, tls_*) by FromPostfix. Both give a Config, which
//     Open turns into one connection pool per host. Values may be quoted
//     with single quotes as libpq allows ('a b', \' and \\ inside).
//     For sqlite the connect string is the database file's path; the
//     file is opened read-only (query_only) and never created.
//
//   - Query templates. Dovecot and Postfix build their queries by pasting
//     the user name into the text after escaping it with the driver's
//     escape function (mysql_real_escape_string, PQescapeStringConn,
//     sqlite's quote doubling). postcote does not paste: Build cuts the
//     template into SQL code, string literals, quoted identifiers and
//     comments, and turns every variable into a bound parameter. A
//     literal holding variables ('%n@%d') becomes one parameter whose
//     value is the literal's expanded text; a variable written outside
//     quotes (username = %u) becomes a parameter too. No user-controlled
//     byte ever reaches the SQL parser, so the result does not depend on
//     the server's modes (MySQL's NO_BACKSLASH_ESCAPES, PostgreSQL's
//     standard_conforming_strings), on the connection's character set, or
//     on the template author having written the quotes. Placeholders are
//     "?" for MySQL and SQLite and "$1, $2, ..." for PostgreSQL. For
//     MySQL the driver runs with interpolateParams=true: go-sql-driver
//     quotes the parameters itself on the client, honouring the
//     NO_BACKSLASH_ESCAPES flag the server reports in every reply, which
//     saves the prepare/close round trips of server-side statements.
//     Variables inside comments are left alone; variables inside quoted
//     identifiers are refused (an identifier cannot be a parameter).
//     A value holding NUL or invalid UTF-8 cannot match any row of a
//     text column and is refused with ErrInvalidValue before any query.
//
//   - Failures. Every query runs under a deadline (Config.QueryTimeout).
//     A server that cannot be reached, a dropped connection or a deadline
//     gives an error wrapping ErrUnavailable (test with errors.Is); with
//     several hosts the next one is tried first. database/sql drops broken
//     connections and dials again, so the pool recovers by itself when
//     the server comes back. Error texts never hold the password: driver
//     messages are scrubbed of it, and DSNs are never formatted into
//     errors or logs (Config.String hides the password).
package sqlx
