package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"postcote/internal/devsetup"
)

// startPostcote writes a `postcote dev` configuration (the same writer
// `postcote dev` uses) with free ports into a temporary folder, starts
// `postcote serve -c DIR` and waits for its SMTP port. Mail for the demo
// user lands in DIR/mail/DOMAIN/USER/Maildir. With discard, main.cf
// gets virtual_transport = discard: as Postfix's accept-only run has, so
// each message is queued durably before 250 and then dropped.
func startPostcote(ctx context.Context, bin, rcpt string, discard, keep bool) (*target, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("postcote binary: %w (build it with `make build`, or give -postcote PATH)", err)
	}
	local, domain, ok := strings.Cut(rcpt, "@")
	if !ok {
		return nil, fmt.Errorf("recipient %q has no domain", rcpt)
	}
	dir, err := os.MkdirTemp("", "smtpbench-postcote-")
	if err != nil {
		return nil, err
	}
	var proc *child
	cleanup := func(ctx context.Context) error {
		var errs []error
		if proc != nil {
			errs = append(errs, proc.stop(ctx))
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

	ports, err := freePorts(5)
	if err != nil {
		return fail(err)
	}
	secret := make([]byte, 12)
	rand.Read(secret)
	password := hex.EncodeToString(secret)
	// The hash comes from the binary under test, as `postcote dev` makes it.
	hash, err := run(ctx, bin, "doveadm", "pw", "-s", "BLF-CRYPT", "-p", password)
	if err != nil {
		return fail(fmt.Errorf("postcote doveadm pw: %w", err))
	}
	_, err = devsetup.Write(devsetup.Options{
		Dir: dir, User: rcpt, Password: password,
		Hash:    func(string) (string, error) { return strings.TrimSpace(hash), nil },
		Ports:   devsetup.Ports{SMTP: ports[0], Submission: ports[1], Submissions: ports[2], IMAP: ports[3], IMAPS: ports[4]},
		Address: "127.0.0.1",
	})
	if err != nil {
		return fail(fmt.Errorf("write dev configuration: %w", err))
	}
	if discard {
		f, err := os.OpenFile(filepath.Join(dir, "main.cf"), os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return fail(err)
		}
		_, err = f.WriteString("virtual_transport = discard:\n")
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail(err)
		}
	}
	logPath := filepath.Join(dir, "serve.log")
	proc, err = startChild(bin, []string{"serve", "-log-stderr", "-c", dir}, logPath)
	if err != nil {
		return fail(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	if err := waitDial(ctx, "tcp", addr, proc.exited); err != nil {
		return fail(fmt.Errorf("postcote serve did not come up: %w\n%s", err, tail(logPath, 15)))
	}
	version := "?"
	if out, err := run(ctx, bin, "version"); err == nil {
		version = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "postcote"))
	}
	t := &target{
		key:     "postcote",
		label:   "postcote",
		setup:   fmt.Sprintf("%s serve (version %s), `postcote dev` configuration: virtual_transport = virtual, Maildir, passwd-file users", bin, version),
		addr:    addr,
		maildir: filepath.Join(dir, "mail", domain, local, "Maildir"),
		logs:    logPath,
		stop:    cleanup,
	}
	if discard {
		t.key, t.label, t.maildir = "postcote-discard", "postcote (discard)", ""
		t.setup = fmt.Sprintf("%s serve (version %s), `postcote dev` configuration with virtual_transport = discard: (queued and fsynced before 250, then discarded)", bin, version)
	}
	return t, nil
}
