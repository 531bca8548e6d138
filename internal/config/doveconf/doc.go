// Package doveconf reads Dovecot's configuration dialect (2.3): the
// dovecot.conf tree with its includes, and the *.conf.ext files of the
// LDAP and SQL authentication drivers, so that a folder written for
// Dovecot configures postcote's mailbox role unchanged.
//
// # dovecot.conf
//
// The format is Dovecot's config-parser:
//
//   - "key = value"; the value runs to the end of the line, trimmed. A
//     value in "double" or 'single' quotes keeps blanks and "#", with
//     backslash escapes.
//   - "#" starts a comment anywhere outside quotes (Dovecot warns when
//     it is not preceded by a blank; so does Check).
//   - A line ending in "\" continues on the next line; the pieces are
//     joined with one space (Dovecot's CONFIG_LINE_TYPE_CONTINUE, used
//     for long SQL queries).
//   - "type {", "type name {" and `type "name with spaces" {` open a
//     section, "}" alone closes it. Named sections of the same type are
//     merged (service imap-login written in two files is one service);
//     unnamed ones (passdb {, inet_listener {) are separate entries.
//   - "!include PATH" and "!include_try PATH" read other files; PATH is
//     relative to the including file's directory and may be a glob
//     (matches read in sorted order). A missing !include is an error;
//     !include_try skips it. Include loops are errors.
//   - "key = <PATH" reads the file's content as the value (ssl_cert,
//     ssl_key); Setting.File keeps the path for doveconf -n.
//   - "key = $other more words": every blank-separated word starting
//     with "$" is replaced by the current value of that setting (its last
//     earlier assignment in the section or an enclosing one, else its
//     default), so "protocols = $protocols sieve" appends.
//     "$ENV:NAME" reads the environment, "$SET:name" is the Dovecot 2.4
//     spelling of "$name". An unknown name is an error, as in Dovecot.
//   - %u, %n, %d, %h, %Lu and other %-variables are kept verbatim; the
//     users of a value expand them per user.
//
// The result is a Config whose Root is a *Section tree: Type, Name,
// Pos, Settings (Key, Value, File, Pos) and Sections (the child
// sections; SectionsOf(type) filters them). Config forwards Get,
// GetDefault, the typed accessors, Section, SectionsOf and EffectiveFor
// to Root. Protocol filters ("protocol imap { ... }") are
// sections too; EffectiveFor(protocol) overlays the matching ones on
// the global settings.
//
// A registry (LookupSetting, KnownSettings) holds every known setting
// per scope (global, service, inet_listener, unix_listener,
// fifo_listener, passdb, userdb, namespace, mailbox) with its Dovecot
// default, kind (bool, integer, size "256M", time "30 secs", octal
// mode, enum, list, file) and postcote status (Implemented, NotYet,
// Ignored). plugin { } and dict { } are free-form. Unknown settings
// and section types are errors, as Dovecot refuses to start with them.
//
// # API
//
//	c, err := doveconf.Load("/etc/dovecot/dovecot.conf")  // errors carry file:line
//	c.Get("mail_location")                                 // as set (value, ok)
//	c.GetDefault("protocols")                              // set, else Dovecot's default
//	c.Bool/Int/Size/Duration/Mode(key)                     // typed, errors name file:line and key
//	c.Section("service", "auth").Section("unix_listener", "/var/spool/postfix/private/auth")
//	c.SectionsOf("passdb")
//	c.EffectiveFor("lmtp").GetDefault("mail_plugins")
//	c.Check()                                              // []config.Diagnostic
//	c.WriteNonDefault(os.Stdout)                           // doveconf -n
//	doveconf.ParseLDAPFile(path), doveconf.ParseSQLFile(path)
//
// Options: WithRoot resolves absolute paths under another directory
// (checking a copied /etc tree, tests); WithEnv replaces os.LookupEnv
// for $ENV: values.
//
// Parsing is bounded: files over 16 MiB, lines over 1 MiB, more than
// 32 nested includes or sections, or more than 1000 included files are
// errors, never a hang.
package doveconf
