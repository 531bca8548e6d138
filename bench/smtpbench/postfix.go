package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// postfixBinary is Debian's Postfix (package postfix).
const postfixBinary = "/usr/sbin/postfix"

// postfixMainCF is a private instance's main.cf. Everything it writes is
// under its own folder: config_directory DIR/etc (given with -c),
// queue_directory DIR/queue, data_directory DIR/data, the log in
// DIR/maillog. Postfix's defaults stay for everything that affects speed:
// the queue file is fsynced before 250, process limits are the stock ones.
var postfixMainCF = template.Must(template.New("main.cf").Parse(`# smtpbench: a private Postfix instance on 127.0.0.1:{{.Port}}.
compatibility_level = 3.6
queue_directory = {{.Dir}}/queue
data_directory = {{.Dir}}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {{.Dir}}/maillog
maillog_file_prefixes = {{.Dir}}
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = localhost
mydestination =
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination
local_recipient_maps =
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
# Nothing leaves this machine.
default_transport = error: smtpbench delivers nowhere else
relay_transport = error: smtpbench delivers nowhere else
virtual_mailbox_domains = {{.Domain}}
virtual_mailbox_maps = inline:{ {{.Rcpt}}={{.Domain}}/{{.Local}}/ }
virtual_transport = {{.Transport}}
`))

// postfixMasterCF lists the stock services, none chrooted (the queue is
// in a temporary folder), with smtpd on the instance's own port.
const postfixMasterCF = `# smtpbench: stock services, smtpd on a private port.
127.0.0.1:%d inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
`

// startPostfix sets up and starts a private Postfix instance. With
// deliver, a private Dovecot is started too and Postfix delivers to it
// over LMTP; without, Postfix discards each message after queueing it
// (virtual_transport = discard:), so only the accept path is measured.
func startPostfix(ctx context.Context, rcpt string, deliver, keep bool) (*target, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("a private Postfix instance needs root (postfix start); run as root or use -postfix=false")
	}
	local, domain, ok := strings.Cut(rcpt, "@")
	if !ok {
		return nil, fmt.Errorf("recipient %q has no domain", rcpt)
	}
	pfUser, err := user.Lookup("postfix")
	if err != nil {
		return nil, fmt.Errorf("postfix user (is the postfix package installed?): %w", err)
	}
	pfUID, _ := strconv.Atoi(pfUser.Uid)
	pfGID, _ := strconv.Atoi(pfUser.Gid)

	dir, err := os.MkdirTemp("", "smtpbench-postfix-")
	if err != nil {
		return nil, err
	}
	maillog := filepath.Join(dir, "maillog")
	t := &target{key: "postfix", logs: maillog}
	var dc *dovecot
	var started bool
	etc := filepath.Join(dir, "etc")
	cleanup := func(ctx context.Context) error {
		var errs []error
		if started {
			errs = append(errs, stopPostfix(ctx, dir))
		}
		if dc != nil {
			errs = append(errs, dc.stop(ctx))
		}
		if !keep {
			errs = append(errs, os.RemoveAll(dir))
		}
		return errors.Join(errs...)
	}
	fail := func(err error) (*target, error) {
		if cerr := cleanup(context.WithoutCancel(ctx)); cerr != nil {
			err = fmt.Errorf("%w; and cleaning up: %v", err, cerr)
		}
		return nil, err
	}
	// Postfix's daemons run as the postfix user and must reach the queue.
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	for _, sub := range []string{"etc", "queue", "data"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.Chown(filepath.Join(dir, "data"), pfUID, pfGID); err != nil {
		return fail(err)
	}

	transport := "discard:"
	t.label = "Postfix (discard)"
	if deliver {
		if dc, err = startDovecot(ctx, dir, rcpt); err != nil {
			return fail(err)
		}
		transport = "lmtp:unix:" + dc.socket
		t.key, t.label = "postfix+dovecot", "Postfix→Dovecot"
		t.maildir = dc.maildir(rcpt)
		t.logs += " and " + filepath.Join(dc.dir, "dovecot.log")
	}

	ports, err := freePorts(1)
	if err != nil {
		return fail(err)
	}
	var mainCF strings.Builder
	err = postfixMainCF.Execute(&mainCF, map[string]any{
		"Port": ports[0], "Dir": dir, "Rcpt": rcpt, "Local": local, "Domain": domain, "Transport": transport,
	})
	if err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "main.cf"), []byte(mainCF.String()), 0o644); err != nil {
		return fail(err)
	}
	if err := os.WriteFile(filepath.Join(etc, "master.cf"), fmt.Appendf(nil, postfixMasterCF, ports[0]), 0o644); err != nil {
		return fail(err)
	}
	// "postfix start" runs "postfix check" first, which creates the queue
	// folders with their owners and modes.
	// Not cut short by Ctrl-C: a half-started master would be left behind.
	// Whatever the outcome, cleanup stops a master that came up.
	started = true
	if _, err := run(context.WithoutCancel(ctx), postfixBinary, "-c", etc, "start"); err != nil {
		return fail(fmt.Errorf("%w\n(log: %s)", err, tail(maillog, 10)))
	}
	t.addr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	if err := waitDial(ctx, "tcp", t.addr, nil); err != nil {
		return fail(fmt.Errorf("postfix smtpd did not answer: %w", err))
	}
	version := postfixVersion(ctx, etc)
	if deliver {
		t.setup = fmt.Sprintf("Postfix %s → LMTP (virtual_transport = lmtp:unix:…) → Dovecot %s, Maildir, passwd-file userdb", version, dovecotVersion(ctx))
	} else {
		t.setup = fmt.Sprintf("Postfix %s, virtual_transport = discard: (queue file fsynced before 250, then discarded)", version)
	}
	t.stop = cleanup
	return t, nil
}

// stopPostfix runs "postfix stop" and waits for the master to exit; a
// master still there after startTimeout gets "postfix abort".
func stopPostfix(ctx context.Context, dir string) error {
	etc := filepath.Join(dir, "etc")
	pid := 0
	if b, err := os.ReadFile(filepath.Join(dir, "queue", "pid", "master.pid")); err == nil {
		pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	if pid == 0 || processGone(pid) {
		return nil // never started, or already gone
	}
	if _, err := run(ctx, postfixBinary, "-c", etc, "stop"); err != nil {
		return err
	}
	if !waitGone(pid, startTimeout) {
		_, err := run(ctx, postfixBinary, "-c", etc, "abort")
		return fmt.Errorf("postfix master %d did not stop; postfix abort: %v", pid, err)
	}
	return nil
}

// postfixVersion is the installed Postfix's mail_version.
func postfixVersion(ctx context.Context, etc string) string {
	out, err := run(ctx, "postconf", "-c", etc, "-d", "-h", "mail_version")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(out)
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return path + ": " + err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return path + ":\n" + strings.Join(lines, "\n")
}
