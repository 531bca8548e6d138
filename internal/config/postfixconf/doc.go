// Package postfixconf reads Postfix's configuration dialect: main.cf
// (parameters) and master.cf (services), so that a folder written for
// Postfix configures postcote's MTA role unchanged.
//
// # main.cf
//
// The format is postconf(5)'s. Each logical line is "name = value". A
// line whose first non-blank character is "#" is a comment; a "#" later
// in a line belongs to the value, as in Postfix. A line that begins with
// whitespace continues the previous logical line (joined with one
// space); comment and blank lines inside a continued line are skipped.
// Values are kept as written and expanded on use: $name, ${name} and
// $(name) insert another parameter (recursively, with loop detection, a
// depth limit of 100 as in Postfix and a length cap); ${name?value}
// gives value when name is non-empty, ${name:value} when it is empty,
// the Postfix 3.0 forms ${name?{a}:{b}} choose between two values, and
// ${{text1} op {text2} ? {a} : {b}} compares (== != as strings, < <= > >=
// as numbers).
// An undefined name expands to nothing, as in Postfix; Check warns.
//
// Defaults come from a registry of known parameters (Lookup, Known):
// each has Postfix's default value (an expandable string such as
// "$myhostname, localhost.$mydomain, localhost", or a computed one for
// myhostname, mydomain and the compatibility_level-dependent defaults
// relay_domains, mynetworks_style, append_dot_mydomain, smtputf8_enable
// and smtpd_relay_restrictions), a one-line doc, a Kind that says how
// the value is read, and a Status: Implemented, NotYet (parsed, but
// Check warns "not yet supported by postcote") or Ignored (meaningless
// for postcote, accepted with an info line).
//
// # master.cf
//
// Each logical line has the eight columns of master(5): service, type
// (inet, unix, unix-dgram, fifo, pass), private, unpriv, chroot, wakeup,
// maxproc, command, then the command's arguments. "-" takes the Postfix
// 3.x default (private y, unpriv y, chroot n, wakeup never, maxproc
// $default_process_limit). "-o name=value" and "-o { name = value }"
// are per-service overrides; other arguments (flags=DRhu user=vmail
// argv=...) are kept in Service.Args. inet service names are resolved
// to host and port without /etc/services: smtp 25, submission 587,
// submissions/smtps 465, lmtp 24, numbers, "host:port" and
// "[ipv6]:port".
//
// # API
//
//	cfg, err := postfixconf.Load("/etc/postfix")     // main.cf + master.cf, either may be absent
//	m := cfg.Main
//	m.Get("virtual_transport")                       // expanded, default applied
//	m.Raw("myorigin")                                // as written, with file:line
//	m.Bool/Int/Size/Duration(name)                   // typed, errors name file:line and key
//	m.List(name), m.ListWithFiles(name), m.Tables(name), m.FileValue("myorigin")
//	for _, s := range cfg.Master.Inet() {
//		view := cfg.Service(s)                       // -o overrides win, expanded against main.cf
//		view.Get("smtpd_tls_security_level")
//	}
//	diags := cfg.Check()                             // []config.Diagnostic, errors mean "do not serve"
//	m.WriteNonDefault(os.Stdout)                     // postconf -n
//
// Options: WithHostname fixes the machine name used for myhostname's
// default (tests); WithRoot resolves absolute paths named by the
// configuration under another directory (checking a copied /etc tree).
//
// All parsing is bounded: files over 16 MiB, logical lines over 1 MiB
// and expansions over 256 KiB, 100 levels or 1M steps are errors, never a hang.
package postfixconf
