package smtpd

// Exports for the LMTP server (internal/lmtpd), which speaks the same
// command syntax (RFC 2033 4: LMTP is SMTP with LHLO and per-recipient
// replies after DATA) and so shares the parsers rather than copying them.

// ErrPathSyntax is the error ParseMailArg returns for a malformed path.
var ErrPathSyntax = errPathSyntax

// ParseCommand splits a command line into its upper-cased verb and the
// argument (RFC 5321 4.1.1).
func ParseCommand(line string) (verb, arg string) { return parseCommand(line) }

// ParseMailArg parses the argument of MAIL (keyword "FROM") or RCPT
// ("TO"): path and ESMTP parameters (RFC 5321 4.1.2), with Postfix's
// leniency. A path syntax error is ErrPathSyntax.
func ParseMailArg(arg, keyword string) (Path, []Param, error) { return parseMailArg(arg, keyword) }
