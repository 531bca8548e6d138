package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"postcote/internal/config"
	"postcote/internal/config/postfixconf"
	"postcote/internal/pickup"
	"postcote/internal/qctl"
	"postcote/internal/queue"
	"postcote/internal/server"
)

// mainCF loads main.cf from -c DIR (or the default places) for the queue
// tools; errors are reported as PROG: fatal.
func mainCF(prog, cdir string) (*postfixconf.Main, error) {
	if cdir == "" {
		cdir = os.Getenv("MAIL_CONFIG")
	}
	paths, err := config.Locate(cdir)
	if err != nil {
		return nil, fatal(prog, exConfig, "%v", err)
	}
	pf, err := loadPostfix(paths)
	if err != nil {
		return nil, fatal(prog, exConfig, "%v", err)
	}
	if pf == nil || !pf.HasMain {
		return nil, fatal(prog, exConfig, "no main.cf in the configuration (give -c DIR)")
	}
	return pf.Main, nil
}

// cmdPostqueue is Postfix's postqueue: -p lists the queue, -f flushes
// it, -i QUEUEID delivers one message now.
func cmdPostqueue(args []string) error {
	const prog = "postqueue"
	opts, rest, err := getopt(args, "c:fi:jps:v", "")
	if err != nil {
		return fatal(prog, exUsage, "%v", err)
	}
	const usage = "usage: postqueue -f | postqueue -i queueid | postqueue -p [-c config_dir]"
	if len(rest) > 0 {
		return fatal(prog, exUsage, usage)
	}
	cdir, action, id := "", byte(0), ""
	for _, o := range opts {
		switch o.name {
		case 'c':
			cdir = o.arg
		case 'f', 'p', 'i':
			if action != 0 {
				return fatal(prog, exUsage, usage) // one mode only, as Postfix
			}
			action, id = o.name, o.arg
		case 'j', 's':
			return fatal(prog, exUsage, "-%c is not supported; use -p, -f or -i", o.name)
		}
	}
	if action == 'i' && !queue.ValidID(id) {
		more := ""
		if len(id) > 100 {
			id, more = id[:100], "..."
		}
		return fatal(prog, exUsage, "Cannot flush queue ID - invalid name: \"%s%s\"", id, more)
	}
	m, err := mainCF(prog, cdir)
	if err != nil {
		return err
	}
	switch action {
	case 'p':
		return showQueue(m, prog)
	case 'f':
		return flushQueue(m, prog)
	case 'i':
		return flushRequest(m, prog, id)
	}
	return fatal(prog, exUsage, usage)
}

// cmdMailq is mailq: postqueue -p (its Sendmail options are ignored, as
// Postfix's mailq ignores them).
func cmdMailq(args []string) error {
	opts, _, err := getopt(args, sendmailSpec+"c:", "q")
	if err != nil {
		return fatal("mailq", exUsage, "%v", err)
	}
	cdir := ""
	for _, o := range opts {
		if o.name == 'C' || o.name == 'c' {
			cdir = o.arg
		}
	}
	m, err := mainCF("mailq", cdir)
	if err != nil {
		return err
	}
	return showQueue(m, "mailq")
}

// listQueue asks the running server for the queue, or reads the spool
// read-only when the server is down, with Postfix's warning.
func listQueue(m *postfixconf.Main, prog string) ([]queue.Summary, error) {
	c, err := qctl.Dial(context.Background(), server.ControlSocket(m))
	if err == nil {
		defer c.Close()
		return c.List()
	}
	if !errors.Is(err, qctl.ErrNotRunning) {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "%s: warning: Mail system is down -- accessing queue directly\n", prog)
	dir := server.QueueDir(m)
	var list []queue.Summary
	if _, err := os.Stat(filepath.Join(dir, "spool")); err == nil {
		if list, err = queue.Snapshot(dir, time.Now()); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// Submissions sendmail left for pickup, as showq lists the maildrop
	// queue (readable by root only).
	if site, err := server.Site(m); err == nil {
		if waiting, err := pickup.Waiting(server.MaildropDir(m), site.MyOrigin); err == nil {
			list = append(list, waiting...)
		}
	}
	return list, nil
}

// showQueue prints the queue as Postfix's postqueue -p does.
func showQueue(m *postfixconf.Main, prog string) error {
	list, err := listQueue(m, prog)
	if err != nil {
		return fatal(prog, exUnavailable, "%v", err)
	}
	if err := queue.WriteMailq(os.Stdout, list); err != nil {
		return fatal(prog, exTempFail, "write: %v", err)
	}
	return nil
}

// flushQueue asks the running server to retry every deferred message.
func flushQueue(m *postfixconf.Main, prog string) error { return flushRequest(m, prog, "") }

// flushRequest asks the running server to retry every deferred message,
// or with an id that message only (an ID not queued is no error, as with
// Postfix's flush service).
func flushRequest(m *postfixconf.Main, prog, id string) error {
	c, err := qctl.Dial(context.Background(), server.ControlSocket(m))
	if errors.Is(err, qctl.ErrNotRunning) {
		return fatal(prog, exUnavailable, "Cannot flush mail queue - mail system is down")
	}
	if err != nil {
		return fatal(prog, exUnavailable, "%v", err)
	}
	defer c.Close()
	if id != "" {
		err = c.FlushID(id)
	} else {
		err = c.Flush()
	}
	if err != nil {
		return fatal(prog, exUnavailable, "%v", err)
	}
	return nil
}

// superOp is one postsuper request: -d, -h, -H or -r with its ID.
type superOp struct {
	verb string
	id   string
}

// cmdPostsuper is Postfix's postsuper: -d deletes, -h holds, -H
// releases and -r requeues messages (an ID, ALL, or "-" to read IDs from
// standard input),
// optionally only in the queues named after the options (hold, incoming,
// active, deferred). With the server running the work is done by the
// server through its control socket; without it, postsuper opens the
// spool itself (the spool's lock keeps a server from starting meanwhile).
//
// -r queues the message again under a new ID with its pending
// recipients: through the running server, via its cleanup stage
// (canonical maps, virtual aliases applied again, as Postfix's pickup and
// cleanup do); on the stopped server's spool, as it is (no rewriting;
// routing is done afresh at delivery either way).
func cmdPostsuper(args []string) error {
	const prog = "postsuper"
	opts, queues, err := getopt(args, "c:d:h:H:pr:sSv", "")
	if err != nil {
		return fatal(prog, exUsage, "%v", err)
	}
	cdir := ""
	var ops []superOp
	for _, o := range opts {
		switch o.name {
		case 'c':
			cdir = o.arg
		case 'd':
			ops = append(ops, superOp{qctl.Delete, o.arg})
		case 'h':
			ops = append(ops, superOp{qctl.Hold, o.arg})
		case 'H':
			ops = append(ops, superOp{qctl.Release, o.arg})
		case 'r':
			ops = append(ops, superOp{qctl.Requeue, o.arg})
		}
		// -s (structure check) and -p (purge temporary files) have
		// nothing to do: the spool checks itself when it opens, and
		// pickup removes abandoned temporary files. -S and -v: ignored.
	}
	for _, q := range queues {
		switch q {
		case "hold", "incoming", "active", "deferred":
		default:
			return fatal(prog, exUsage, "invalid directory name: %s", q)
		}
	}
	m, err := mainCF(prog, cdir)
	if err != nil {
		return err
	}
	if uid := os.Getuid(); uid != 0 {
		if st, err := os.Stat(server.QueueDir(m)); err != nil || !ownedBy(st, uid) {
			return fatal(prog, 1, "use of this command is reserved for the superuser")
		}
	}
	// "-" reads IDs from standard input, once, for every option that has it.
	var stdinIDs []string
	for _, op := range ops {
		if op.id == "-" && stdinIDs == nil {
			ids, err := readIDs(os.Stdin)
			if err != nil {
				return fatal(prog, 1, "read queue IDs: %v", err)
			}
			stdinIDs = ids
		}
	}
	apply, done, err := superBackend(m, prog)
	if err != nil {
		return err
	}
	defer done()
	counts := map[string]int{}
	for _, op := range ops {
		ids := []string{op.id}
		if op.id == "-" {
			ids = stdinIDs
		}
		for _, id := range ids {
			changed, err := apply(op.verb, id, queues)
			if errors.Is(err, qctl.ErrInvalidID) {
				fmt.Fprintf(os.Stderr, "%s: warning: invalid mail queue id: %s\n", prog, id)
				continue
			}
			if err != nil {
				report(prog, counts)
				return fatal(prog, 1, "%v", err)
			}
			for _, c := range changed {
				fmt.Fprintf(os.Stderr, "%s: %s: %s\n", prog, c, superVerbs[op.verb].each)
			}
			counts[op.verb] += len(changed)
		}
	}
	report(prog, counts)
	return nil
}

var superVerbs = map[string]struct{ each, total string }{
	qctl.Delete:  {"removed", "Deleted"},
	qctl.Hold:    {"placed on hold", "Placed on hold"},
	qctl.Release: {"released from hold", "Released from hold"},
	qctl.Requeue: {"requeued", "Requeued"},
}

// report prints Postfix's totals, "postsuper: Deleted: 2 messages", in
// postsuper's order.
func report(prog string, counts map[string]int) {
	for _, v := range []string{qctl.Requeue, qctl.Delete, qctl.Hold, qctl.Release} {
		if n := counts[v]; n > 0 {
			s := "s"
			if n == 1 {
				s = ""
			}
			fmt.Fprintf(os.Stderr, "%s: %s: %d message%s\n", prog, superVerbs[v].total, n, s)
		}
	}
}

// superBackend returns how to apply requests: through the running
// server's control socket, or on the spool opened here when the server is
// down. done releases what it opened.
func superBackend(m *postfixconf.Main, prog string) (func(verb, id string, queues []string) ([]queue.ID, error), func(), error) {
	c, err := qctl.Dial(context.Background(), server.ControlSocket(m))
	if err == nil {
		return c.Apply, func() { c.Close() }, nil
	}
	if !errors.Is(err, qctl.ErrNotRunning) {
		return nil, nil, fatal(prog, exUnavailable, "%v", err)
	}
	dir := server.QueueDir(m)
	if _, err := os.Stat(filepath.Join(dir, "spool")); errors.Is(err, os.ErrNotExist) {
		// Never started: nothing is queued, every ID is unknown.
		return func(verb, id string, _ []string) ([]queue.ID, error) {
			if id != "ALL" && !queue.ValidID(id) {
				return nil, fmt.Errorf("%w: %s", qctl.ErrInvalidID, id)
			}
			return nil, nil
		}, func() {}, nil
	}
	q, err := queue.Open(dir, queue.Options{Hostname: m.Get("myhostname")})
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return nil, nil, fatal(prog, exTempFail, "the queue is in use by a server that does not answer on %s: %v", server.ControlSocket(m), err)
	}
	if err != nil {
		return nil, nil, fatal(prog, exUnavailable, "%v", err)
	}
	return func(verb, id string, queues []string) ([]queue.ID, error) {
			return qctl.Apply(q, verb, id, queues)
		}, func() {
			if err := q.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "%s: warning: close queue: %v\n", prog, err)
			}
		}, nil
}

// readIDs reads queue IDs, one a line (blank lines skipped), as postsuper
// does for "-".
func readIDs(r io.Reader) ([]string, error) {
	var ids []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if id := strings.TrimSpace(sc.Text()); id != "" {
			ids = append(ids, id)
		}
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, sc.Err()
}

func ownedBy(st os.FileInfo, uid int) bool {
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == uid
}
