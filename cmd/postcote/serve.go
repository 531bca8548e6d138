package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"postcote/internal/config"
	"postcote/internal/maillog"
	"postcote/internal/server"
)

// cmdServe runs the services the configuration enables until SIGTERM or
// SIGINT; SIGHUP reloads the configuration.
func cmdServe(args []string) error {
	fs := newFlags("serve")
	c := configFlag(fs)
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
	return serve(paths)
}

// serve runs the server on paths with the process's signals.
func serve(paths config.Paths) error {
	log, closeLog, err := openLog(paths)
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

// openLog returns the logger: main.cf's maillog_file when set, else
// standard error.
func openLog(paths config.Paths) (*maillog.Logger, func(), error) {
	host, _ := os.Hostname()
	pf, err := loadPostfix(paths)
	if err == nil && pf != nil && pf.HasMain {
		if file := pf.Main.Get("maillog_file"); file != "" {
			f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
			if err != nil {
				return nil, nil, fmt.Errorf("maillog_file %s (%s): %w", file, pf.Main.Pos("maillog_file"), err)
			}
			return maillog.New(f, host, true), func() { f.Close() }, nil
		}
	}
	return maillog.New(os.Stderr, host, true), func() {}, nil
}
