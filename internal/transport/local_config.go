package transport

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/rewrite"
	"postcote/internal/userdb"
)

// MainSettings is the view of main.cf NewLocal reads
// (internal/config/postfixconf's *Main satisfies it): values with $name
// expansion done, raw values for the parameters local(8) expands
// itself at delivery (forward_path, luser_relay), lists, sizes, times
// and booleans with Postfix's defaults applied.
type MainSettings interface {
	Get(name string) string
	RawValue(name string) string
	List(name string) []string
	Size(name string) (int64, error)
	Duration(name string) (time.Duration, error)
	Bool(name string) (bool, error)
	FileValue(name string) (string, error)
}

// NewLocal builds the local(8) agent from main.cf: home_mailbox,
// mail_spool_directory, mailbox_command, mailbox_transport (the caller
// sets Agents for it), mailbox_size_limit,
// forward_path, allow_mail_to_commands, allow_mail_to_files,
// default_privs, command_time_limit, local_command_shell,
// export_environment, recipient_delimiter, luser_relay, myorigin,
// double_bounce_sender and owner_request_special. aliases is alias_maps
// (nil for none), store the mail store for Maildir home mailboxes,
// domains the address classes, forward the cleanup stage that takes
// forwarded mail.
func NewLocal(m MainSettings, aliases rewrite.Table, store mailstore.Deliverer, domains *rewrite.Domains, forward rewrite.Queue) (*Local, error) {
	var errs []error
	size, err := m.Size("mailbox_size_limit")
	errs = append(errs, err)
	limit, err := m.Duration("command_time_limit")
	errs = append(errs, err)
	owner, err := m.Bool("owner_request_special")
	errs = append(errs, err)
	origin, err := m.FileValue("myorigin")
	errs = append(errs, err)
	l := &Local{
		Mailbox:             &Mailbox{Store: store, Name: "local"},
		Passwd:              userdb.NewSystemIDs("", ""),
		Aliases:             aliases,
		Domains:             domains,
		Forward:             forward,
		HomeMailbox:         strings.TrimSpace(m.Get("home_mailbox")),
		MailSpoolDirectory:  strings.TrimSpace(m.Get("mail_spool_directory")),
		MailboxCommand:      strings.TrimSpace(m.Get("mailbox_command")),
		MailboxTransport:    strings.TrimSpace(m.Get("mailbox_transport")),
		MailboxSizeLimit:    size,
		ForwardPath:         splitForwardPath(m.RawValue("forward_path")),
		AllowCommands:       m.List("allow_mail_to_commands"),
		AllowFiles:          m.List("allow_mail_to_files"),
		DefaultPrivs:        strings.TrimSpace(m.Get("default_privs")),
		CommandTimeLimit:    limit,
		Shell:               strings.TrimSpace(m.Get("local_command_shell")),
		ExportEnvironment:   m.List("export_environment"),
		Delimiter:           m.Get("recipient_delimiter"),
		LuserRelay:          strings.TrimSpace(m.RawValue("luser_relay")),
		Myorigin:            rewrite.Canonical(strings.TrimSpace(origin)),
		DoubleBounceSender:  strings.TrimSpace(m.Get("double_bounce_sender")),
		OwnerRequestSpecial: owner,
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("local transport: %w", err)
	}
	for _, c := range append(append([]string(nil), l.AllowCommands...), l.AllowFiles...) {
		if c != "alias" && c != "forward" && c != "include" {
			return nil, fmt.Errorf("local transport: allow_mail_to_commands/allow_mail_to_files: unknown class %q (want alias, forward, include)", c)
		}
	}
	if l.Shell != "" && !strings.HasPrefix(l.Shell, "/") {
		return nil, fmt.Errorf("local transport: local_command_shell %q is not an absolute path", l.Shell)
	}
	return l, nil
}

// splitForwardPath cuts forward_path at commas and white space outside
// ${…} (a conditional may hold either).
func splitForwardPath(v string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i <= len(v); i++ {
		if i < len(v) {
			switch c := v[i]; {
			case c == '{' || c == '(':
				depth++
				continue
			case (c == '}' || c == ')') && depth > 0:
				depth--
				continue
			case depth > 0 || (c != ',' && c != ' ' && c != '\t' && c != '\n'):
				continue
			}
		}
		if s := strings.TrimSpace(v[start:min(i, len(v))]); s != "" {
			out = append(out, s)
		}
		start = i + 1
	}
	if out == nil {
		return []string{}
	}
	return out
}
