package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
	"postcote/internal/userdb"
)

// Local is Postfix's local(8) delivery agent, for the recipients of
// mydestination (local_transport = local:$myhostname). Per recipient,
// in local(8)'s order:
//
//  1. A recipient already named in a Delivered-To: header of the
//     message bounces with 5.4.6 "mail forwarding loop".
//  2. alias_maps: the local part ("user+ext", then "user") is expanded
//     through rewrite.ExpandAliases (recursively, :include: files,
//     "|command" and "/file" as allow_mail_to_commands and
//     allow_mail_to_files permit). With owner_request_special, an
//     "owner-NAME" alias becomes the sender of mail expanded from NAME.
//  3. The system user (passwd(5), read directly) of the local part
//     without its extension; unknown users go to luser_relay, or bounce
//     with 5.1.1.
//  4. The user's ~/.forward (forward_path: ".forward+ext" first), owned
//     by the user, whose destinations replace the mailbox ("\user"
//     keeps it).
//  5. The mailbox: mailbox_command, else home_mailbox (a name ending
//     in "/" is a Maildir, written through the mail store like the
//     virtual transport's; else an mbox file in the home directory),
//     else the mbox file mail_spool_directory/USER. Files are owned by
//     the user; mbox files are locked with fcntl and a dot-lock
//     (mailbox_delivery_lock "fcntl, dotlock") and cut back on error.
//
// Addresses that aliases and .forward files give are delivered again
// through these steps when they are local (no domain, or a domain of
// mydestination), and forwarded through Forward (cleanup, then the
// queue) with a Delivered-To: header otherwise. Commands and files of
// aliases run as default_privs, those of .forward files as the user;
// that takes root, and a postcote not running as root delivers with
// its own rights and checks file ownership against the user only for
// mailboxes and .forward files.
//
// One queue recipient has one result: deferred when any destination it
// expands to deferred (the whole expansion is tried again later, so a
// destination already served may get a second copy, as with Postfix),
// else bounced when any bounced, else sent. So a failed destination
// of an alias with an owner- alias is reported to the original sender,
// in the bounce for the alias; the owner- address is the sender of the
// copies made for the list (Return-Path, forwarded mail).
type Local struct {
	// Mailbox stores Maildir deliveries (its Store) and names the
	// transport in logs (its Name, default "local").
	Mailbox *Mailbox
	// Aliases is alias_maps; nil means no aliases.
	Aliases rewrite.Table
	// Domains decides which addresses of aliases and .forward files are
	// local; nil means only addresses without a domain.
	Domains *rewrite.Domains
	// Forward takes mail forwarded to other domains: the cleanup stage
	// in front of the queue. Nil defers such recipients.
	Forward rewrite.Queue
	// Agents are the delivery agents by transport name, for
	// mailbox_transport.
	Agents map[string]Agent

	// Passwd finds system users: userdb.SystemIDs over /etc/passwd
	// (read directly, no cgo; tests point it at another file).
	Passwd SystemUsers

	HomeMailbox        string        // home_mailbox: "Maildir/", "Mailbox" or ""
	MailSpoolDirectory string        // mail_spool_directory, default /var/mail
	MailboxCommand     string        // mailbox_command, "" for none
	MailboxTransport   string        // mailbox_transport ("lmtp:unix:…"), "" for none
	MailboxSizeLimit   int64         // mailbox_size_limit in bytes, 0 for none
	ForwardPath        []string      // forward_path; nil means Postfix's default
	AllowCommands      []string      // allow_mail_to_commands, e.g. "alias", "forward"
	AllowFiles         []string      // allow_mail_to_files
	DefaultPrivs       string        // default_privs, default "nobody"
	CommandTimeLimit   time.Duration // command_time_limit, default 1000s
	Shell              string        // local_command_shell, "" for /bin/sh -c
	ExportEnvironment  []string      // export_environment: names passed on to commands
	Delimiter          string        // recipient_delimiter
	LuserRelay         string        // luser_relay, "" for none
	Myorigin           string        // myorigin: the domain of bare local names
	DoubleBounceSender string        // double_bounce_sender: mail to it is discarded
	// OwnerRequestSpecial is owner_request_special (default yes).
	OwnerRequestSpecial bool
	// LockWait bounds the wait for an mbox lock (default 10s); then the
	// recipient is deferred.
	LockWait time.Duration
	// Now is the clock for "From " lines; default time.Now.
	Now func() time.Time
}

// SystemUser is one passwd(5) entry: the account local(8) delivers to.
type SystemUser = userdb.PasswdEntry

// SystemUsers looks users up in passwd(5): *userdb.SystemIDs. found is
// false for an unknown user; an error means the file could not be read
// or the user's line is malformed (the delivery is deferred).
type SystemUsers interface {
	LookupPasswd(name string) (u SystemUser, found bool, err error)
}

// defaultForwardPath is Postfix's forward_path default.
var defaultForwardPath = []string{"$home/.forward${recipient_delimiter}${extension}", "$home/.forward"}

// maxLocalDepth bounds alias and .forward nesting within one delivery
// (Postfix's local(8) stops at 100 with "mail forwarding loop").
const maxLocalDepth = 100

// Deliver implements Agent.
func (l *Local) Deliver(ctx context.Context, msg *queue.Message, rcpts []int, _ string) []queue.Result {
	name := l.name()
	results := make([]queue.Result, 0, len(rcpts))
	src := messageSource{open: msg.Open, size: msg.Size}
	for _, i := range rcpts {
		start := time.Now()
		r := l.deliverOne(ctx, msg, src, msg.Envelope.Recipients[i])
		r.Rcpt, r.Delay, r.Transport = i, time.Since(start), name
		if r.Relay == "" {
			r.Relay = name
		}
		results = append(results, r)
	}
	return results
}

func (l *Local) name() string {
	if l.Mailbox != nil && l.Mailbox.Name != "" {
		return l.Mailbox.Name
	}
	return "local"
}

// messageSource reopens the queued content for each destination.
type messageSource struct {
	open func() (io.ReadCloser, error)
	size int64
}

// delivery is the state of one queue recipient's delivery.
type delivery struct {
	msg       *queue.Message // for mailbox_transport
	src       messageSource
	env       *queue.Envelope
	rcpt      queue.Recipient
	sender    string          // envelope sender, or the owner- alias
	delivered map[string]bool // Delivered-To values of the message
	seen      map[string]bool // local addresses entered in this delivery
	now       time.Time
}

func (l *Local) deliverOne(ctx context.Context, msg *queue.Message, src messageSource, rc queue.Recipient) queue.Result {
	rd, err := src.open()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()}
	}
	dt, err := DeliveredTo(rd)
	rd.Close()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()}
	}
	now := time.Now()
	if l.Now != nil {
		now = l.Now()
	}
	d := &delivery{msg: msg, src: src, env: &msg.Envelope, rcpt: rc, sender: msg.Envelope.Sender, delivered: dt, seen: map[string]bool{}, now: now}
	return l.recipient(ctx, d, rc.Address, 0, fullExpansion)
}

// qualify gives a local name its domain: myorigin.
func (l *Local) qualify(local, domain string) string {
	if domain == "" {
		domain = l.Myorigin
	}
	if domain == "" {
		return local
	}
	return local + "@" + domain
}

// splitExt cuts "user+ext" at the first recipient delimiter.
func (l *Local) splitExt(local string) (user, ext string) {
	if l.Delimiter == "" {
		return local, ""
	}
	if i := strings.IndexAny(local, l.Delimiter); i > 0 {
		return local[:i], local[i+1:]
	}
	return local, ""
}

// expansion says which local(8) steps a destination still goes through.
type expansion int

const (
	fullExpansion expansion = iota // aliases, .forward, mailbox
	skipAliases                    // a name its own alias gives: .forward, mailbox
	mailboxOnly                    // "\user", or the user in its own .forward
)

// recipient delivers to one local address: aliases, then the user's
// .forward, then the mailbox, from the step that skip allows.
func (l *Local) recipient(ctx context.Context, d *delivery, addr string, depth int, skip expansion) queue.Result {
	if strings.HasPrefix(addr, "\\") {
		skip = mailboxOnly
	}
	local, domain := rewrite.SplitAddress(strings.TrimPrefix(addr, "\\"))
	local = strings.ToLower(local) // local(8) folds the local part
	full := strings.ToLower(l.qualify(local, domain))
	if depth > maxLocalDepth {
		return queue.Result{Status: queue.StatusBounced, DSN: "5.4.6", Reply: "mail forwarding loop for " + full + " (alias or .forward nesting too deep)"}
	}
	user, ext := l.splitExt(local)
	if l.DoubleBounceSender != "" && user == strings.ToLower(l.DoubleBounceSender) {
		// Postfix's qmgr discards mail to the double-bounce address, so
		// a failed postmaster notice cannot come back as mail.
		return queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: "discarded (mail to the double-bounce address)"}
	}
	// RFC 5321 6.3 loop detection, as local(8) does with Delivered-To.
	key := fmt.Sprintf("%s\x00%d", full, skip)
	if d.delivered[full] || d.seen[key] {
		return queue.Result{Status: queue.StatusBounced, DSN: "5.4.6", Reply: "mail forwarding loop for " + full}
	}
	d.seen[key] = true

	if skip == fullExpansion && l.Aliases != nil {
		if r, done := l.aliases(ctx, d, local, full, depth); done {
			return r
		}
	}
	pw, found, err := l.lookupUser(user)
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "temporary failure in user lookup: " + err.Error()}
	}
	if found && skip != mailboxOnly {
		if r, done := l.forward(ctx, d, pw, user, ext, full, depth); done {
			return r
		}
	}
	if l.MailboxTransport != "" {
		// local(8): mailbox_transport takes the mailbox delivery of
		// every local recipient, known to passwd(5) or not.
		return l.pass(ctx, d, full)
	}
	if !found {
		if l.LuserRelay != "" {
			return l.luserRelay(ctx, d, local, domain, user, ext, depth)
		}
		return queue.Result{Status: queue.StatusBounced, DSN: "5.1.1", Reply: fmt.Sprintf("unknown user: %q", local)}
	}
	return l.mailbox(ctx, d, pw, local, domain, full)
}

// pass hands the mailbox delivery of addr to mailbox_transport ("lmtp:
// unix:/var/run/dovecot/lmtp"), as local(8)'s deliver_pass does: the
// message as queued, to that one recipient, through the agent of that
// transport.
func (l *Local) pass(ctx context.Context, d *delivery, addr string) queue.Result {
	name, nexthop, _ := strings.Cut(l.MailboxTransport, ":")
	name = strings.TrimSpace(name)
	agent := l.Agents[name]
	if agent == nil || d.msg == nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("mail transport unavailable: mailbox_transport %q has no delivery agent", l.MailboxTransport)}
	}
	m := *d.msg
	m.Envelope.Sender = d.sender
	m.Envelope.Recipients = []queue.Recipient{{Address: addr, OrigAddress: d.rcpt.OrigAddress, DSNNotify: d.rcpt.DSNNotify, DSNORcpt: d.rcpt.DSNORcpt}}
	rs := agent.Deliver(ctx, &m, []int{0}, strings.TrimSpace(nexthop))
	if len(rs) == 0 {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "mailbox_transport " + name + " gave no result"}
	}
	return rs[0]
}

// aliases expands local through alias_maps. done is false when the
// name has no alias (or aliases to itself only): delivery goes on with
// the system user.
func (l *Local) aliases(ctx context.Context, d *delivery, local, full string, depth int) (queue.Result, bool) {
	opts := rewrite.AliasOptions{
		Delimiter:       l.Delimiter,
		AllowCommands:   slices.Contains(l.AllowCommands, "alias"),
		AllowFiles:      slices.Contains(l.AllowFiles, "alias"),
		IncludeCommands: slices.Contains(l.AllowCommands, "include"),
		IncludeFiles:    slices.Contains(l.AllowFiles, "include"),
	}
	targets, err := rewrite.ExpandAliases(ctx, l.Aliases, local, opts)
	switch {
	case errors.Is(err, rewrite.ErrAliasRefused):
		return queue.Result{Status: queue.StatusBounced, DSN: "5.7.1", Reply: err.Error()}, true
	case errors.Is(err, rewrite.ErrAliasExpansion):
		return queue.Result{Status: queue.StatusBounced, DSN: "5.4.6", Reply: err.Error()}, true
	case err != nil:
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "alias database unavailable: " + err.Error()}, true
	}
	if len(targets) == 1 && targets[0].Kind == rewrite.AliasAddress && strings.EqualFold(targets[0].Value, local) {
		return queue.Result{}, false // no alias
	}
	if l.OwnerRequestSpecial && d.sender != "" && !strings.HasPrefix(local, "owner-") {
		// aliases(5): errors of a list go to its owner- alias.
		base, _ := l.splitExt(local)
		if vals, err := l.Aliases.Lookup(ctx, "owner-"+base); err == nil && len(vals) > 0 {
			d.sender = l.qualify("owner-"+base, "")
		}
	}
	var rs []queue.Result
	for _, t := range targets {
		if t.Kind == rewrite.AliasCommand || t.Kind == rewrite.AliasFile {
			privs, res := l.defaultPrivs()
			switch {
			case res != nil:
				rs = append(rs, *res)
			case t.Kind == rewrite.AliasCommand:
				rs = append(rs, l.command(ctx, d, t.Value, privs, full, local))
			default:
				rs = append(rs, l.file(ctx, d, t.Value, privs, full))
			}
			continue
		}
		skip := fullExpansion
		if strings.EqualFold(t.Value, local) {
			skip = skipAliases // the name in its own alias: its own mailbox
		}
		rs = append(rs, l.address(ctx, d, t.Value, full, depth, skip))
	}
	return combine(rs), true
}

// lookupUser finds a system user through Passwd.
func (l *Local) lookupUser(name string) (SystemUser, bool, error) {
	if l.Passwd == nil {
		return SystemUser{}, false, errors.New("local transport: no passwd reader configured")
	}
	return l.Passwd.LookupPasswd(name)
}

// defaultPrivs finds the default_privs user that alias commands and
// files run as; a non-nil result is the deferral when it cannot.
func (l *Local) defaultPrivs() (SystemUser, *queue.Result) {
	name := l.DefaultPrivs
	if name == "" {
		name = "nobody"
	}
	u, found, err := l.lookupUser(name)
	if err != nil {
		return u, &queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "temporary failure in user lookup: " + err.Error()}
	}
	if !found {
		r := configError("default_privs user %q is not a system user", name)
		return u, &r
	}
	return u, nil
}

// address delivers to an address an alias or .forward file gave: a
// local address through the local steps skip leaves, any other address
// by forwarding.
func (l *Local) address(ctx context.Context, d *delivery, addr, from string, depth int, skip expansion) queue.Result {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: "empty destination ignored"}
	}
	_, domain := rewrite.SplitAddress(strings.TrimPrefix(addr, "\\"))
	if domain == "" || l.Domains != nil && l.Domains.Classify(domain) == rewrite.Local {
		return l.recipient(ctx, d, addr, depth+1, skip)
	}
	return l.forwardTo(ctx, d, addr, from)
}

// luserRelay sends mail for an unknown user to luser_relay, with its
// $user, $extension, $local, $domain, $recipient expansions.
func (l *Local) luserRelay(ctx context.Context, d *delivery, local, domain, user, ext string, depth int) queue.Result {
	vars := map[string]string{"user": user, "extension": ext, "local": local, "domain": domain,
		"recipient": l.qualify(local, domain), "recipient_delimiter": l.Delimiter}
	dest, _ := expandLocal(l.LuserRelay, vars)
	dest = strings.TrimSpace(dest)
	if dest == "" {
		return queue.Result{Status: queue.StatusBounced, DSN: "5.1.1", Reply: fmt.Sprintf("unknown user: %q", local)}
	}
	return l.address(ctx, d, dest, l.qualify(local, domain), depth, fullExpansion)
}

// forwardTo resubmits the message to addr through cleanup, with a
// Delivered-To: header naming the address it was expanded from, so
// that a loop comes back here as a 5.4.6 bounce.
func (l *Local) forwardTo(ctx context.Context, d *delivery, addr, from string) queue.Result {
	if l.Forward == nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "mail forwarding is not available"}
	}
	rd, err := d.src.open()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()}
	}
	defer rd.Close()
	id := l.Forward.NewID()
	env := &queue.Envelope{
		ID:     id,
		Sender: d.sender,
		Recipients: []queue.Recipient{{Address: addr, OrigAddress: d.rcpt.OrigAddress,
			DSNNotify: d.rcpt.DSNNotify, DSNORcpt: d.rcpt.DSNORcpt}},
		Arrival:    d.now,
		ClientName: "localhost",
		ClientAddr: "127.0.0.1",
		Helo:       "localhost",
		Protocol:   "local",
		BodyType:   d.env.BodyType,
		SMTPUTF8:   d.env.SMTPUTF8,
		DSNRet:     d.env.DSNRet,
		DSNEnvID:   d.env.DSNEnvID,
	}
	head := "Delivered-To: " + oneHeaderLine(from) + "\r\n"
	if err := l.Forward.Enqueue(ctx, env, io.MultiReader(strings.NewReader(head), rd)); err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("cannot forward to <%s>: %v", addr, err)}
	}
	return queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: fmt.Sprintf("forwarded as %s", id)}
}

// combine makes one result of the results of the destinations one
// recipient expanded to.
func combine(rs []queue.Result) queue.Result {
	if len(rs) == 0 {
		return queue.Result{Status: queue.StatusBounced, DSN: "5.1.1", Reply: "alias expands to no destination"}
	}
	for _, st := range []queue.Status{queue.StatusDeferred, queue.StatusBounced} {
		for _, r := range rs {
			if r.Status == st {
				return r
			}
		}
	}
	if len(rs) == 1 {
		return rs[0]
	}
	replies := make([]string, len(rs))
	for i, r := range rs {
		replies[i] = r.Reply
	}
	return queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: strings.Join(replies, "; ")}
}

// deliveryHeaders are what local(8) prepends to a mailbox, file or
// command delivery: Return-Path, X-Original-To and Delivered-To.
func (d *delivery) deliveryHeaders(deliveredTo string) []string {
	h := []string{"Return-Path: <" + oneHeaderLine(d.sender) + ">"}
	if o := d.rcpt.OrigAddress; o != "" {
		h = append(h, "X-Original-To: "+oneHeaderLine(o))
	}
	return append(h, "Delivered-To: "+oneHeaderLine(deliveredTo))
}

// mailbox delivers to the user's mailbox.
func (l *Local) mailbox(ctx context.Context, d *delivery, pw SystemUser, local, domain, full string) queue.Result {
	_, ext := l.splitExt(local)
	if l.MailboxCommand != "" {
		return l.runAs(ctx, d, l.MailboxCommand, pw, full, local, ext, domain)
	}
	// home_mailbox, else mail_spool_directory/USER; a name ending in
	// "/" is a Maildir (local(8)).
	path := filepath.Join(l.spoolDir(), pw.Name)
	maildir := strings.HasSuffix(l.spoolDir(), "/")
	if l.HomeMailbox != "" {
		path = filepath.Join(pw.Home, l.HomeMailbox)
		maildir = strings.HasSuffix(l.HomeMailbox, "/")
	}
	if maildir {
		return l.maildir(ctx, d, pw, path, full)
	}
	r := l.appendFile(ctx, d, path, pw, full, true)
	if r.Status == queue.StatusSent {
		r.Reply = "delivered to mailbox"
	}
	return r
}

// maildir delivers into the Maildir at dir through the mail store, as
// the user.
func (l *Local) maildir(ctx context.Context, d *delivery, pw SystemUser, dir, full string) queue.Result {
	// Maildir: the size limit applies to the message (local(8)).
	if limit := l.MailboxSizeLimit; limit > 0 && d.src.size > limit {
		return queue.Result{Status: queue.StatusBounced, DSN: "5.2.2", Reply: fmt.Sprintf("mailbox full: message of %d bytes is over mailbox_size_limit %d", d.src.size, limit)}
	}
	if l.Mailbox == nil || l.Mailbox.Store == nil {
		return configError("Maildir %s: no mail store for Maildir delivery", dir)
	}
	u := mailstore.User{Name: pw.Name, Home: pw.Home, MailLocation: "maildir:" + dir, UID: pw.UID, GID: pw.GID}
	rd, err := d.src.open()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()}
	}
	defer rd.Close()
	r := l.Mailbox.DeliverUser(ctx, u, d.sender, full, rd)
	if r.Status == queue.StatusSent {
		r.Reply = "delivered to maildir"
	}
	return r
}

func (l *Local) spoolDir() string {
	if l.MailSpoolDirectory == "" {
		return "/var/mail"
	}
	return l.MailSpoolDirectory
}

// file appends to a "/file" destination as the user given.
func (l *Local) file(ctx context.Context, d *delivery, path string, as SystemUser, full string) queue.Result {
	if path == "/dev/null" {
		// local(8) does not open /dev/null: the copy is thrown away.
		return queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: "delivered to file: /dev/null"}
	}
	if !filepath.IsAbs(path) || strings.Contains(path, "\x00") {
		return queue.Result{Status: queue.StatusBounced, DSN: "5.3.5", Reply: fmt.Sprintf("bad file destination %q", path)}
	}
	r := l.appendFile(ctx, d, filepath.Clean(path), as, full, false)
	if r.Status == queue.StatusSent {
		r.Reply = "delivered to file: " + path
	}
	return r
}

// appendFile writes one mbox-format copy to path.
func (l *Local) appendFile(ctx context.Context, d *delivery, path string, as SystemUser, full string, mailbox bool) queue.Result {
	rd, err := d.src.open()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()}
	}
	defer rd.Close()
	wait := l.LockWait
	if wait <= 0 {
		wait = 10 * time.Second
	}
	o := mboxOptions{owner: fileOwner{uid: as.UID, gid: as.GID, check: processIsRoot()}, mustOwn: mailbox,
		dotlock: mailbox, limit: l.MailboxSizeLimit, wait: wait, now: d.now}
	err = appendMbox(ctx, path, o, d.sender, d.deliveryHeaders(full), rd)
	switch {
	case err == nil:
		return queue.Result{Status: queue.StatusSent, DSN: "2.0.0"}
	case errors.Is(err, errMailboxFull):
		return queue.Result{Status: queue.StatusBounced, DSN: "5.2.2", Reply: fmt.Sprintf("mailbox full: cannot update %s: over mailbox_size_limit %d", path, l.MailboxSizeLimit)}
	case errors.Is(err, errLocked):
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.2.0", Reply: "cannot update mailbox: " + err.Error()}
	case errors.Is(err, errUnsafeFile):
		// The administrator must look; the mail waits meanwhile.
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.2.0", Reply: "cannot update mailbox: " + err.Error()}
	}
	return queue.Result{Status: queue.StatusDeferred, DSN: "4.2.0", Reply: "cannot update mailbox: " + err.Error()}
}

// command runs a "|command" destination as the user given.
func (l *Local) command(ctx context.Context, d *delivery, command string, as SystemUser, full, local string) queue.Result {
	_, domain := rewrite.SplitAddress(full)
	_, ext := l.splitExt(local)
	return l.runAs(ctx, d, command, as, full, local, ext, domain)
}

func (l *Local) runAs(ctx context.Context, d *delivery, command string, as SystemUser, full, local, ext, domain string) queue.Result {
	rd, err := d.src.open()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot read queued message: " + err.Error()}
	}
	defer rd.Close()
	job := commandJob{command: command, user: as, home: as.Home, shell: l.Shell, limit: l.CommandTimeLimit,
		sender: d.sender, headers: d.deliveryHeaders(full), env: l.commandEnv(d, as, full, local, ext, domain)}
	return runCommand(ctx, job, rd, d.now)
}

// commandEnv is the environment local(8) gives commands (local(8)
// "EXTERNAL COMMAND DELIVERY").
func (l *Local) commandEnv(d *delivery, as SystemUser, full, local, ext, domain string) []string {
	env := []string{
		"HOME=" + as.Home, "USER=" + as.Name, "LOGNAME=" + as.Name, "SHELL=" + as.Shell,
		"PATH=/usr/bin:/bin",
		"SENDER=" + d.sender, "RECIPIENT=" + full, "LOCAL=" + local, "DOMAIN=" + domain,
		"ORIGINAL_RECIPIENT=" + d.rcpt.OrigAddress,
	}
	if ext != "" {
		env = append(env, "EXTENSION="+ext)
	}
	if d.env.DSNEnvID != "" {
		env = append(env, "ENVID="+d.env.DSNEnvID)
	}
	for _, name := range l.ExportEnvironment {
		if v, ok := lookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	for i, e := range env {
		env[i] = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return ' '
			}
			return r
		}, e)
	}
	return env
}
