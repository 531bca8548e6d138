package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"postcote/internal/config"
	"postcote/internal/config/doveconf"
	"postcote/internal/maillog"
	"postcote/internal/server"
)

// cmdServe runs the services the configuration enables until SIGTERM or
// SIGINT; SIGHUP reloads the configuration.
func cmdServe(args []string) error {
	fs := newFlags("serve")
	c := configFlag(fs)
	toStderr := fs.Bool("log-stderr", false, "log to standard error instead of maillog_file, log_path or syslog")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	paths, err := config.Locate(*c)
	if err != nil {
		return err
	}
	return serve(paths, *toStderr)
}

// serve runs the server on paths with the process's signals.
func serve(paths config.Paths, logToStderr bool) error {
	log, closeLog, err := openLog(paths, logToStderr)
	if err != nil {
		return err
	}
	defer closeLog()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{}, 1)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default:
			}
		}
	}()
	server.Version = version
	return server.Run(ctx, server.Options{Paths: paths, Logger: log, Reload: reload})
}

// logTarget is where the server's log lines go, decided as Postfix and
// Dovecot decide it: main.cf's maillog_file when set (Postfix 3.4+),
// else dovecot.conf's log_path when it names a file, else the syslog
// daemon at /dev/log with syslog_facility. `serve -log-stderr` (and
// `postcote dev`) log to standard error instead.
type logTarget struct {
	file     string // a file to append to; "" for syslog
	where    string // file:line of the setting, for errors
	facility string
}

func chooseLog(paths config.Paths) (logTarget, error) {
	t := logTarget{facility: "mail"}
	pf, err := loadPostfix(paths)
	if err != nil {
		return t, err
	}
	if pf != nil && pf.HasMain {
		if file := pf.Main.Get("maillog_file"); file != "" {
			return logTarget{file: file, where: "maillog_file (" + pf.Main.Pos("maillog_file").String() + ")"}, nil
		}
		t.facility = pf.Main.Get("syslog_facility")
	}
	if paths.DovecotConf != "" {
		dc, err := doveconf.Load(paths.DovecotConf)
		if err != nil {
			return t, err
		}
		if lp, ok := dc.Get("log_path"); ok && lp != "" && lp != "syslog" {
			return logTarget{file: lp, where: "log_path (" + dc.PosOf("log_path").String() + ")"}, nil
		}
		if pf == nil || !pf.HasMain {
			t.facility = dc.GetDefault("syslog_facility")
		}
	}
	return t, nil
}

// openLog returns the logger; toStderr forces standard error.
func openLog(paths config.Paths, toStderr bool) (*maillog.Logger, func(), error) {
	host, _ := os.Hostname()
	if toStderr {
		return maillog.New(os.Stderr, host, true), func() {}, nil
	}
	t, err := chooseLog(paths)
	if err != nil {
		return nil, nil, err
	}
	if t.file != "" {
		f, err := os.OpenFile(t.file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w; fix the path or run with -log-stderr", t.where, err)
		}
		return maillog.New(f, host, true), func() { f.Close() }, nil
	}
	l, closeFn, err := maillog.NewSyslog(maillog.DefaultSyslogSocket, t.facility, host, os.Stderr)
	if err != nil {
		// Without a syslog daemon (a container, a minimal host) the
		// lines go to standard error rather than nowhere.
		l := maillog.New(os.Stderr, host, true)
		l.Warnf("master", "cannot log to syslog: %v; logging to standard error (set maillog_file, or run with -log-stderr)", err)
		return l, func() {}, nil
	}
	return l, func() { closeFn() }, nil
}
