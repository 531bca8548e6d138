package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"postcote/internal/testenv"
)

type options struct {
	users    int
	clients  []int
	duration time.Duration
	logins   int
	rounds   int
	drivers  []driver
	schemes  []Scheme
	mech     Mechanism
	timeout  time.Duration
	postcote string
	dovecot  bool
	only     string
	keep     bool
	// dovecotPerf runs Dovecot's login processes in high-performance mode
	// instead of its default high-security mode.
	dovecotPerf bool
}

// builtBinary is the postcote binary built from this checkout, if one
// was, for main to remove.
var builtBinary atomic.Value

func main() {
	code := mainErr(os.Args[1:], os.Stdout, os.Stderr)
	if bin, ok := builtBinary.Load().(string); ok {
		os.RemoveAll(filepath.Dir(bin))
	}
	os.Exit(code)
}

func mainErr(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "loginbench:", err)
		return 2
	}
	// Ctrl-C or SIGTERM ends the runs; every server started is stopped.
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	failed, err := bench(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "loginbench:", err)
		return 1
	}
	if failed > 0 {
		fmt.Fprintf(stderr, "loginbench: %d logins failed; the figures above do not measure what they say\n", failed)
		return 1
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	_, err := os.Stat(dovecotBinary)
	fs := flag.NewFlagSet("loginbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.users, "users", 200, "users per password scheme")
	clients := fs.String("clients", "1,10", "concurrent IMAP clients, a comma-separated list; one run each")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each run (0: only -logins limits it)")
	fs.IntVar(&o.logins, "logins", 0, "logins per run (0: only -duration limits it)")
	fs.IntVar(&o.rounds, "rounds", 2, "measure every point this many times and report medians")
	drv := fs.String("drivers", "passwd-file,ldap-bind,ldap-attrs,mysql,pgsql", "passdb/userdb set-ups to measure")
	sch := fs.String("schemes", "cheap,sha512-crypt", "password schemes to measure")
	mech := fs.String("mech", "login", "login (LOGIN command) or plain (AUTHENTICATE PLAIN)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Second, "limit on every connect, read and write")
	fs.StringVar(&o.postcote, "postcote", "", "postcote binary (default: built from this checkout)")
	fs.BoolVar(&o.dovecot, "dovecot", err == nil, "also measure a private Dovecot 2.3 (needs root)")
	loginMode := fs.String("dovecot-login", "high-security", "Dovecot's imap-login mode: high-security (its default: a process per connection) or high-performance (service_count = 0, process_min_avail = CPUs)")
	fs.StringVar(&o.only, "only", "", "measure only postcote or only dovecot")
	fs.BoolVar(&o.keep, "keep", false, "keep the servers' temporary folders (configurations, logs)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./bench/loginbench [flags]\n\nIMAP logins per second of postcote and of Dovecot, per passdb driver and password scheme.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, f := range strings.Split(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > 1000 {
			return o, fmt.Errorf("-clients %q: want numbers from 1 to 1000", *clients)
		}
		o.clients = append(o.clients, n)
	}
	for _, k := range strings.Split(*drv, ",") {
		d, ok := findDriver(strings.TrimSpace(k))
		if !ok {
			return o, fmt.Errorf("-drivers: unknown %q (passwd-file, ldap-bind, ldap-attrs, mysql, pgsql)", k)
		}
		o.drivers = append(o.drivers, d)
	}
	for _, k := range strings.Split(*sch, ",") {
		found := false
		for _, s := range schemes {
			if s.Key == strings.TrimSpace(k) {
				o.schemes, found = append(o.schemes, s), true
			}
		}
		if !found {
			return o, fmt.Errorf("-schemes: unknown %q (cheap, sha512-crypt)", k)
		}
	}
	o.mech = Mechanism(*mech)
	switch {
	case o.mech != MechLogin && o.mech != MechPlain:
		return o, fmt.Errorf("-mech %q: want login or plain", *mech)
	case o.users <= 0 || o.users > 100000:
		return o, errors.New("-users must be from 1 to 100000")
	case o.rounds <= 0 || o.logins < 0 || o.duration < 0 || o.timeout <= 0:
		return o, errors.New("-rounds and -timeout must be positive, -logins and -duration not negative")
	case o.duration == 0 && o.logins == 0:
		return o, errors.New("give -duration or -logins: a run must end by itself")
	case o.duration > time.Hour:
		return o, errors.New("-duration is at most an hour")
	}
	switch *loginMode {
	case "high-security":
	case "high-performance":
		o.dovecotPerf = true
	default:
		return o, fmt.Errorf("-dovecot-login %q: want high-security or high-performance", *loginMode)
	}
	switch o.only {
	case "":
	case "postcote":
		o.dovecot = false
	case "dovecot":
		if !o.dovecot {
			return o, fmt.Errorf("-only dovecot: %s is missing (apt-get install dovecot-core dovecot-imapd dovecot-ldap dovecot-mysql dovecot-pgsql) or -dovecot=false was given", dovecotBinary)
		}
	default:
		return o, fmt.Errorf("-only %q: want postcote or dovecot", o.only)
	}
	return o, nil
}

// kind is one of the two servers.
type kind struct {
	key, label string
	start      func(ctx context.Context, dir string, c serverConf) (*server, error)
}

// bench measures every driver with every scheme and client count on every
// kind of server, each round on freshly started servers. It returns how
// many logins failed.
func bench(ctx context.Context, o options, stdout, stderr io.Writer) (failed int, err error) {
	h := newHarness(func(format string, args ...any) { fmt.Fprintf(stderr, "loginbench: "+format+"\n", args...) })
	defer func() {
		if cerr := h.close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("stopping the back ends: %w", cerr))
		}
	}()
	var kinds []kind
	if o.only != "dovecot" {
		bin := o.postcote
		if bin == "" {
			fmt.Fprintln(stderr, "loginbench: building postcote from this checkout")
			if err := h.do(func() { bin = testenv.Binary(h) }); err != nil {
				return 0, err
			}
			// testenv builds once per process and hands the same
			// binary to every caller: main removes it on the way
			// out, not each run (the tests run bench more than once).
			builtBinary.Store(bin)
		} else if _, err := os.Stat(bin); err != nil {
			return 0, fmt.Errorf("postcote binary: %w", err)
		}
		kinds = append(kinds, kind{"postcote", "postcote", func(ctx context.Context, dir string, c serverConf) (*server, error) {
			return startPostcote(ctx, bin, dir, c)
		}})
	}
	if o.dovecot {
		label := "Dovecot " + dovecotVersion(ctx)
		if o.dovecotPerf {
			label += " (high-performance login)"
		}
		kinds = append(kinds, kind{"dovecot", label, func(ctx context.Context, dir string, c serverConf) (*server, error) {
			c.dovecotPerf = o.dovecotPerf
			return startDovecot(ctx, dir, c)
		}})
	}
	if len(kinds) == 0 {
		return 0, errors.New("nothing to measure")
	}

	uid, gid, err := mailOwner()
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(stderr, "loginbench: making %d users per scheme\n", o.users)
	sets, err := makeUsers(o.users)
	if err != nil {
		return 0, err
	}
	b := &backends{h: h, sets: sets, uid: uid, gid: gid}
	rep := newReport(o, kinds)
	for round := 1; round <= o.rounds; round++ {
		for _, d := range o.drivers {
			for _, k := range kinds {
				res, err := measureServer(ctx, o, b, d, k, stderr)
				if err != nil {
					if len(rep.results) > 0 {
						rep.header = append(rep.header, "INCOMPLETE: stopped by an error, see the end")
						rep.write(stdout)
					}
					return rep.failed, fmt.Errorf("%s, %s, round %d: %w", d.label, k.label, round, err)
				}
				for p, r := range res {
					rep.add(p, k.key, r)
				}
			}
		}
	}
	rep.write(stdout)
	return rep.failed, nil
}

// measureServer starts k with driver d in a fresh folder, logs every user
// in once (warm-up: Maildirs created, connection pools filled), measures
// every scheme and client count, and stops the server.
func measureServer(ctx context.Context, o options, b *backends, d driver, k kind, stderr io.Writer) (res map[point]Result, err error) {
	// A short path: Dovecot's unix sockets live in base_dir (108 bytes).
	dir, err := os.MkdirTemp("", "lb-"+k.key[:2]+"-")
	if err != nil {
		return nil, err
	}
	if !o.keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintf(stderr, "loginbench: %s with %s in %s\n", k.label, d.label, dir)
	}
	// Dovecot's unprivileged processes must reach the files and the mail.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	mailRoot := filepath.Join(dir, "mail")
	if err := os.Mkdir(mailRoot, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chown(mailRoot, b.uid, b.gid); err != nil {
		return nil, fmt.Errorf("chown mail root: %w", err)
	}
	pass, user, err := d.conf(b, dir)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	srv, err := k.start(ctx, dir, serverConf{port: port, passdb: pass, userdb: user, mailRoot: mailRoot})
	if err != nil {
		return nil, err
	}
	defer func() {
		if serr := srv.stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()

	var all []account
	for _, s := range o.schemes {
		all = append(all, b.sets[s.Key].accounts...)
	}
	// The warm-up tries a user whose login failed (a timeout on a
	// machine under load) twice more before giving up; the measured runs
	// retry nothing.
	for attempt := 1; len(all) > 0; attempt++ {
		warm := Load{Addr: srv.addr, Users: all, Mech: o.mech, Clients: 10, Logins: len(all), Timeout: o.timeout}
		wr, err := warm.Run(ctx)
		if err != nil {
			return nil, err
		}
		if wr.Failed > 0 && attempt == 3 {
			return nil, fmt.Errorf("warm-up: %d logins failed three times: %s\n%s", wr.Failed, strings.Join(wr.Errors, "; "), tail(srv.log, 10))
		}
		if wr.Failed > 0 {
			fmt.Fprintf(stderr, "loginbench: warm-up: %d logins failed, trying them again: %s\n", wr.Failed, strings.Join(wr.Errors, "; "))
		}
		all = wr.failedUsers
	}
	res = map[point]Result{}
	for _, s := range o.schemes {
		for _, c := range o.clients {
			l := Load{Addr: srv.addr, Users: b.sets[s.Key].accounts, Mech: o.mech, Clients: c,
				Duration: o.duration, Logins: o.logins, Timeout: o.timeout}
			r, err := l.Run(ctx)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(stderr, "loginbench: %-16s %-12s %3d clients  %-14s %8.1f logins/s  p50 %s  p99 %s  failed %d\n",
				d.label, s.Label, c, k.label, r.Rate(), ms(r.P50), ms(r.P99), r.Failed)
			res[point{d.key, s.Key, c}] = r
		}
	}
	return res, nil
}

// dovecotVersion is the installed Dovecot's version, for the report.
func dovecotVersion(ctx context.Context) string {
	out, err := execOutput(ctx, dovecotBinary, "--version")
	if err != nil {
		return "?"
	}
	v, _, _ := strings.Cut(strings.TrimSpace(out), " ")
	return v
}

// header lines of the report.
func headerLines(o options) []string {
	host, _ := os.Hostname()
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = ", load average " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	limit := fmt.Sprintf("%v", o.duration)
	if o.logins > 0 {
		limit = fmt.Sprintf("%d logins", o.logins)
		if o.duration > 0 {
			limit += fmt.Sprintf(" or %v", o.duration)
		}
	}
	mech := "LOGIN"
	if o.mech == MechPlain {
		mech = "AUTHENTICATE PLAIN"
	}
	return []string{
		fmt.Sprintf("loginbench %s, host %s, %d CPUs%s", time.Now().UTC().Format("2006-01-02 15:04 MST"), host, runtime.NumCPU(), load),
		fmt.Sprintf("each login: connect, greeting, %s, LOGOUT on a new connection, over loopback without TLS; %d users per scheme taken in turn", mech, o.users),
		fmt.Sprintf("each run: %s; %d round(s) on freshly started servers, median shown; every user logged in once before measuring", limit, o.rounds),
		"logins/s = successful logins / (first connect -> last logout); p50/p99 = connect -> tagged OK of the login",
		"cheap = {PLAIN} in passwd-file and SQL, {SSHA} in LDAP (slapd checks it with auth_bind); SHA512-CRYPT = {SHA512-CRYPT}, in LDAP {CRYPT}$6$",
	}
}
