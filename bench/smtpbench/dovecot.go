package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
)

// dovecotBinary is Debian's Dovecot (packages dovecot-core, dovecot-lmtpd).
const dovecotBinary = "/usr/sbin/dovecot"

// dovecot is a private Dovecot instance that only serves LMTP on a unix
// socket and stores mail in Maildirs under its own folder. It never
// touches /etc/dovecot: every path it uses is in dir.
type dovecot struct {
	dir    string // DIR/dovecot
	socket string // LMTP socket Postfix delivers to
	mail   string // mail root: mail/DOMAIN/USER/Maildir
	proc   *child
}

// dovecotConf is the instance's whole configuration, in Dovecot 2.3's
// dialect. Dovecot's defaults are kept where they affect speed: mail_fsync
// = optimized (the message is fsynced before LMTP's 250), the lmtp
// service's process limit, index files next to the Maildir.
var dovecotConf = template.Must(template.New("dovecot.conf").Parse(`# smtpbench: a private Dovecot for Postfix -> LMTP -> Maildir.
instance_name = smtpbench-{{.Tag}}
base_dir = {{.Dir}}/run
state_dir = {{.Dir}}/state
log_path = {{.Dir}}/dovecot.log
# LMTP on a unix socket only: no TCP listener, no IMAP/POP3.
protocols = lmtp
listen = 127.0.0.1
ssl = no
mail_location = maildir:{{.Mail}}/%d/%n/Maildir
# One user, demo@example.test, in a passwd-file, as the guides keep users.
passdb {
  driver = passwd-file
  args = username_format=%u {{.Dir}}/users
}
userdb {
  driver = passwd-file
  args = username_format=%u {{.Dir}}/users
}
service lmtp {
  unix_listener {{.Socket}} {
    mode = 0600
    user = {{.PostfixUser}}
  }
}
`))

// startDovecot writes the instance into dir/dovecot and starts it in the
// foreground as a child (dovecot -F), so its pid is ours to stop.
func startDovecot(ctx context.Context, dir, rcpt string) (*dovecot, error) {
	local, domain, ok := strings.Cut(rcpt, "@")
	if !ok {
		return nil, fmt.Errorf("recipient %q has no domain", rcpt)
	}
	d := &dovecot{dir: filepath.Join(dir, "dovecot"), mail: filepath.Join(dir, "mail")}
	d.socket = filepath.Join(d.dir, "lmtp")
	// Mail is stored as nobody: Dovecot refuses root (first_valid_uid).
	owner, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("dovecot mail owner: %w", err)
	}
	uid, _ := strconv.Atoi(owner.Uid)
	gid, _ := strconv.Atoi(owner.Gid)
	for _, sub := range []string{"run", "state"} {
		if err := os.MkdirAll(filepath.Join(d.dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(d.mail, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chown(d.mail, uid, gid); err != nil {
		return nil, fmt.Errorf("chown mail root: %w", err)
	}

	// The password is never used (no login service runs) but a passdb
	// needs one; a random one keeps the file from holding a guessable one.
	secret := make([]byte, 16)
	rand.Read(secret)
	users := filepath.Join(d.dir, "users")
	line := fmt.Sprintf("%s:{PLAIN}%s:%d:%d::%s::\n", rcpt, hex.EncodeToString(secret), uid, gid,
		filepath.Join(d.mail, domain, local))
	if err := os.WriteFile(users, []byte(line), 0o640); err != nil {
		return nil, err
	}
	// Dovecot's auth process runs as the dovecot user and reads the file.
	if g, err := user.LookupGroup("dovecot"); err == nil {
		gid, _ := strconv.Atoi(g.Gid)
		if err := os.Chown(users, 0, gid); err != nil {
			return nil, err
		}
	} else if err := os.Chmod(users, 0o644); err != nil {
		return nil, err
	}

	conf := filepath.Join(d.dir, "dovecot.conf")
	var b strings.Builder
	err = dovecotConf.Execute(&b, map[string]string{
		"Tag": filepath.Base(dir), "Dir": d.dir, "Mail": d.mail, "Socket": d.socket, "PostfixUser": "postfix",
	})
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	// doveconf's check gives a clearer error than a master that exits.
	if _, err := run(ctx, "doveconf", "-c", conf, "-n"); err != nil {
		return nil, fmt.Errorf("dovecot configuration: %w", err)
	}
	d.proc, err = startChild(dovecotBinary, []string{"-F", "-c", conf}, filepath.Join(d.dir, "master.out"))
	if err != nil {
		return nil, err
	}
	if err := waitDial(ctx, "unix", d.socket, d.proc.exited); err != nil {
		d.stop(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("dovecot did not come up: %w (log: %s)", err, filepath.Join(d.dir, "dovecot.log"))
	}
	return d, nil
}

// maildir is where rcpt's mail lands.
func (d *dovecot) maildir(rcpt string) string {
	local, domain, _ := strings.Cut(rcpt, "@")
	return filepath.Join(d.mail, domain, local, "Maildir")
}

// stop ends the Dovecot master (the pid in its base_dir is our child's)
// and waits for it.
func (d *dovecot) stop(ctx context.Context) error {
	if err := d.proc.stop(ctx); err != nil {
		return fmt.Errorf("stop dovecot: %w", err)
	}
	return nil
}

// dovecotVersion is the installed Dovecot's version, for the report.
func dovecotVersion(ctx context.Context) string {
	out, err := run(ctx, dovecotBinary, "--version")
	if err != nil {
		return "?"
	}
	v, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	return v
}
