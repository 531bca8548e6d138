package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// Envelope of every message: the demo user of `postcote dev`, whom the
// Postfix and Dovecot set-ups know too.
const (
	benchSender    = "bench@smtpbench.test"
	benchRecipient = "demo@example.test"
)

type options struct {
	messages    int
	concurrency []int
	size        int
	perSession  int
	timeout     time.Duration
	rounds      int
	postcote    string
	postfix     bool
	only        string
	keep        bool
	addr        string // an already running server to load instead
	to          string
}

func main() {
	os.Exit(mainErr(os.Args[1:], os.Stdout, os.Stderr))
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "smtpbench:", err)
		return 2
	}
	// Ctrl-C or SIGTERM ends the runs; every server started is stopped.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := bench(ctx, opts, stdout, stderr); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted; the servers it started are stopped (%w)", err)
		}
		fmt.Fprintln(stderr, "smtpbench:", err)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	_, err := os.Stat(postfixBinary)
	fs := flag.NewFlagSet("smtpbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.messages, "n", 2000, "messages per run")
	conc := fs.String("c", "10,50", "concurrent sessions, a comma-separated list; one run each")
	fs.IntVar(&o.size, "size", 5120, "message size in bytes, header and body")
	fs.IntVar(&o.perSession, "per-session", 1, "messages per SMTP session (smtp-source's default is 1)")
	fs.DurationVar(&o.timeout, "timeout", 120*time.Second, "limit on each run, delivery included")
	fs.IntVar(&o.rounds, "rounds", 1, "repeat every run this many times and report the medians")
	fs.StringVar(&o.postcote, "postcote", "bin/postcote", "postcote binary (`make build` makes bin/postcote)")
	fs.BoolVar(&o.postfix, "postfix", err == nil, "also measure a private Postfix, and Postfix→LMTP→Dovecot (needs root)")
	fs.StringVar(&o.only, "only", "", "measure only postcote or only postfix")
	fs.BoolVar(&o.keep, "keep", false, "keep the servers' temporary folders (configurations, logs, Maildirs)")
	fs.StringVar(&o.addr, "addr", "", "load this running server (127.0.0.1:port) instead, accept rate only, as smtp-source would")
	fs.StringVar(&o.to, "to", benchRecipient, "recipient, with -addr")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench/smtpbench [flags]\n\nSMTP accept and delivered-to-Maildir throughput of postcote and of Postfix (+ Dovecot), measured in the same run.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.concurrency, err = parseConcurrency(*conc); err != nil {
		return o, err
	}
	switch {
	case o.messages <= 0 || o.rounds <= 0 || o.perSession <= 0:
		return o, errors.New("-n, -rounds and -per-session must be positive")
	case o.size < 512 || o.size > 64<<20:
		return o, errors.New("-size must be from 512 bytes to 64 MiB")
	case o.timeout <= 0:
		return o, errors.New("-timeout must be positive")
	}
	if o.addr != "" {
		if o.only != "" {
			return o, errors.New("-addr and -only exclude each other")
		}
		o.postfix = false
		o.only = "addr"
		return o, nil
	}
	if o.to != benchRecipient {
		return o, errors.New("-to goes with -addr: the servers started here know only " + benchRecipient)
	}
	switch o.only {
	case "":
	case "postcote":
		o.postfix = false
	case "postfix":
		if !o.postfix {
			return o, fmt.Errorf("-only postfix: %s is missing (apt-get install postfix dovecot-core dovecot-lmtpd) or -postfix=false was given", postfixBinary)
		}
	default:
		return o, fmt.Errorf("-only %q: want postcote or postfix", o.only)
	}
	return o, nil
}

// kind is one of the servers measured; start sets up a fresh instance.
type kind struct {
	key, label string
	start      func(ctx context.Context) (*target, error)
}

// bench measures every kind of server at every concurrency, each run on a
// fresh instance (empty queue, empty Maildir) that is stopped after it.
// The kinds take turns at each concurrency, so the figures compared come
// from the same minutes.
func bench(ctx context.Context, o options, stdout, stderr io.Writer) error {
	var kinds []kind
	if o.addr != "" {
		kinds = append(kinds, kind{"addr", o.addr, func(context.Context) (*target, error) {
			return &target{key: "addr", label: o.addr, setup: "running server, not started here", addr: o.addr,
				stop: func(context.Context) error { return nil }}, nil
		}})
	}
	if o.only == "" || o.only == "postcote" {
		// Every run uses the same binary, even if `make build` replaces
		// the original meanwhile.
		bin, remove, err := copyBinary(o.postcote)
		if err != nil {
			return err
		}
		defer remove()
		kinds = append(kinds, kind{"postcote", "postcote", func(ctx context.Context) (*target, error) {
			t, err := startPostcote(ctx, bin, benchRecipient, false, o.keep)
			if t != nil {
				t.setup = strings.Replace(t.setup, bin, o.postcote, 1)
			}
			return t, err
		}})
		if o.postfix {
			// The accept path alone, set up as Postfix's accept run is.
			kinds = append(kinds, kind{"postcote-discard", "postcote (discard)", func(ctx context.Context) (*target, error) {
				t, err := startPostcote(ctx, bin, benchRecipient, true, o.keep)
				if t != nil {
					t.setup = strings.Replace(t.setup, bin, o.postcote, 1)
				}
				return t, err
			}})
		}
	}
	if o.postfix {
		kinds = append(kinds, kind{"postfix", "Postfix (discard)", func(ctx context.Context) (*target, error) {
			return startPostfix(ctx, benchRecipient, false, o.keep)
		}})
		if _, err := os.Stat(dovecotBinary); err != nil {
			fmt.Fprintf(stderr, "smtpbench: %s missing, Postfix→Dovecot skipped (apt-get install dovecot-core dovecot-lmtpd)\n", dovecotBinary)
		} else {
			kinds = append(kinds, kind{"postfix+dovecot", "Postfix→Dovecot", func(ctx context.Context) (*target, error) {
				return startPostfix(ctx, benchRecipient, true, o.keep)
			}})
		}
	}
	if len(kinds) == 0 {
		return errors.New("nothing to measure")
	}

	host, _ := os.Hostname()
	rep := &report{
		kinds: kinds, concurrency: o.concurrency, setup: map[string]string{}, results: map[string]map[int][]measure{},
		header: []string{
			fmt.Sprintf("smtpbench %s, host %s, %d CPUs", time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU()),
			fmt.Sprintf("load: %d messages of %d bytes, %d per session, 1 recipient, %d round(s), median shown; a fresh server per run", o.messages, o.size, o.perSession, o.rounds),
			"accept/s = messages / (first connect → last 250 after DATA); p50/p99 = DATA sent → 250",
			"delivered/s = messages / (first connect → last one in the Maildir's new/+cur/, polled every 10 ms)",
		},
	}
	if onTmpfs(os.TempDir()) {
		rep.header = append(rep.header, "WARNING: "+os.TempDir()+" is tmpfs, where fsync costs nothing: set TMPDIR to a folder on disk")
		fmt.Fprintln(stderr, "smtpbench:", rep.header[len(rep.header)-1])
	}
	for _, k := range kinds {
		rep.results[k.key] = map[int][]measure{}
	}
	done := 0 // runs measured
	for round := 1; round <= o.rounds; round++ {
		for _, c := range o.concurrency {
			for _, k := range kinds {
				load := Load{
					Sessions: c, Messages: o.messages, PerSession: o.perSession, Size: o.size,
					From: benchSender, To: o.to, Helo: "smtpbench.localhost",
					RunID: fmt.Sprintf("%d-%s-c%d-r%d", time.Now().UnixNano(), k.key, c, round),
				}
				m, err := runFresh(ctx, k, load, o.timeout, rep.setup)
				if err != nil {
					// What was measured so far is still worth seeing.
					if done > 0 {
						rep.header = append(rep.header, "INCOMPLETE: stopped by an error, see the end")
						rep.write(stdout)
					}
					return err
				}
				done++
				fmt.Fprintf(stderr, "smtpbench: round %d, %d sessions, %-18s accept %s/s, delivered %s/s, failed %d\n",
					round, c, k.label, rate(m.acceptRate), rate(m.deliverRate), m.failed)
				rep.results[k.key][c] = append(rep.results[k.key][c], m)
			}
		}
	}
	rep.write(stdout)
	return nil
}

// runFresh starts an instance of k, runs load against it and stops it,
// also when the run failed or ctx ended.
func runFresh(ctx context.Context, k kind, load Load, timeout time.Duration, setup map[string]string) (m measure, err error) {
	t, err := k.start(ctx)
	if err != nil {
		return m, fmt.Errorf("start %s: %w", k.label, err)
	}
	defer func() {
		// Stopping must happen even after Ctrl-C, so not under ctx.
		sctx, cancel := context.WithTimeout(context.Background(), 2*startTimeout)
		defer cancel()
		if serr := t.stop(sctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("stop %s: %w", k.label, serr))
		}
	}()
	setup[k.key] = t.setup
	m, err = runOnce(ctx, t, load, timeout)
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return m, err
}
