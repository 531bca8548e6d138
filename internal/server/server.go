package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"postcote/internal/config"
	"postcote/internal/maillog"
	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

// Options say what to run.
type Options struct {
	Paths  config.Paths
	Logger *maillog.Logger
	// Reload receives a value for every SIGHUP.
	Reload <-chan struct{}
	// ShutdownTimeout bounds the wait for sessions to finish on stop and
	// for an old generation to finish after a reload (default 30 s).
	ShutdownTimeout time.Duration
}

// service is what smtpd.Server and imapd.Server have in common.
type service interface {
	Serve(ctx context.Context, ln net.Listener) error
	Shutdown(ctx context.Context) error
}

// binding is one service on one endpoint.
type binding struct {
	name     string // for logs: "smtpd 127.0.0.1:25"
	svc      service
	endpoint Endpoint
}

// generation is the set of services one reading of the configuration
// built. A reload builds a new one and retires the old.
type generation struct {
	bindings []binding
	agent    queue.Agent // the router for the queue; nil without an MTA role
	closers  []func() error
	views    []net.Listener // what its services accept on; set by start
	// cleanup is the rewriting stage in front of the queue (canonical,
	// virtual aliases); local submission (pickup) goes through the
	// current generation's, as SMTP does.
	cleanup *rewrite.Cleanup
}

// localQueue is what pickup enqueues into: the current generation's
// cleanup stage, so a reload's new maps apply to sendmail mail too.
type localQueue struct{ s *runner }

func (l localQueue) NewID() queue.ID { return l.s.queue.NewID() }

func (l localQueue) Enqueue(ctx context.Context, env *queue.Envelope, content io.Reader) error {
	if g := l.s.current(); g != nil && g.cleanup != nil {
		return g.cleanup.Enqueue(ctx, env, content)
	}
	return l.s.queue.Enqueue(ctx, env, content)
}

// Run serves until ctx is done.
func Run(ctx context.Context, opts Options) error {
	if opts.Logger == nil {
		opts.Logger = maillog.Discard()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	s := &runner{opts: opts, log: opts.Logger, listeners: NewListeners()}
	cfg, err := loadConfig(opts.Paths)
	if err != nil {
		return err
	}
	if cfg.postfix != nil && cfg.postfix.HasMain {
		q, err := openQueue(cfg, s.log)
		if err != nil {
			return err
		}
		s.queue = q
	}
	gen, err := s.build(cfg)
	if err != nil {
		s.closeQueue()
		return err
	}
	if err := s.start(ctx, gen); err != nil {
		gen.close()
		s.listeners.CloseAll()
		s.closeQueue()
		return err
	}
	if s.queue != nil {
		// After the first generation exists: pickup hands mail to its
		// cleanup stage.
		if s.stopLocal, err = startLocal(cfg, s.queue, localQueue{s}, s.log); err != nil {
			s.retire(gen, opts.ShutdownTimeout)
			s.listeners.CloseAll()
			s.closeQueue()
			return err
		}
	}
	s.log.Printf("master", "daemon started -- version %s, configuration %s", Version, describe(opts.Paths))

	runCtx, stopQueue := context.WithCancel(context.Background())
	queueDone := make(chan error, 1)
	if s.queue != nil {
		go func() { queueDone <- s.queue.Run(runCtx, queueAgent{s}) }()
	} else {
		queueDone <- nil
	}

	for {
		select {
		case <-ctx.Done():
			s.log.Printf("master", "terminating on signal")
			s.listeners.CloseAll()
			s.mu.Lock()
			gens := append([]*generation{s.gen}, s.draining...)
			s.mu.Unlock()
			var wg sync.WaitGroup
			for _, g := range gens {
				wg.Add(1)
				go func(g *generation) {
					defer wg.Done()
					s.retire(g, opts.ShutdownTimeout)
				}(g)
			}
			wg.Wait()
			stopQueue()
			qerr := <-queueDone
			s.closeQueue()
			return qerr
		case <-opts.Reload:
			s.reload(ctx)
		}
	}
}

// Version is the program's version, set by main.
var Version = "dev"

type runner struct {
	opts      Options
	log       *maillog.Logger
	listeners *Listeners
	queue     *queue.Queue
	stopLocal func()                  // pickup and the control socket (pickup.go)
	store     *mailstore.MaildirStore // the mailbox role's, shared by generations
	mu        sync.Mutex
	gen       *generation
	draining  []*generation // replaced by a reload, sessions still running
	serving   sync.WaitGroup
}

func (s *runner) current() *generation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// deliver hands a queued message to the current generation's router, so
// a reload changes routing for the next delivery.
func (s *runner) deliver(ctx context.Context, msg *queue.Message, rcpts []int) []queue.Result {
	g := s.current()
	if g == nil || g.agent == nil {
		res := make([]queue.Result, len(rcpts))
		for i, r := range rcpts {
			res[i] = queue.Result{Rcpt: r, Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "mail system configuration error: no delivery agents", Relay: "none"}
		}
		return res
	}
	return g.agent.Deliver(ctx, msg, rcpts)
}

// start opens gen's sockets (reusing the ones already open), starts its
// services, makes it current and closes sockets no longer configured.
func (s *runner) start(ctx context.Context, gen *generation) error {
	keep := map[Endpoint]bool{}
	type started struct {
		b  binding
		ln net.Listener
	}
	var ls []started
	for _, b := range gen.bindings {
		ln, err := s.listeners.Listen(b.endpoint)
		if err != nil {
			for _, st := range ls {
				st.ln.Close()
			}
			return err
		}
		keep[b.endpoint] = true
		ls = append(ls, started{b, ln})
	}
	for _, st := range ls {
		gen.views = append(gen.views, st.ln)
	}
	for _, st := range ls {
		st := st
		s.serving.Add(1)
		go func() {
			defer s.serving.Done()
			if err := st.b.svc.Serve(ctx, st.ln); err != nil && !errors.Is(err, net.ErrClosed) && ctx.Err() == nil {
				s.log.Warnf("master", "%s: %v", st.b.name, err)
			}
		}()
	}
	s.mu.Lock()
	s.gen = gen
	s.mu.Unlock()
	s.listeners.Retain(keep)
	return nil
}

// reload reads the configuration again and, when it is good, replaces
// the running generation; a bad configuration is logged and the old one
// keeps serving, as `postfix reload` does.
func (s *runner) reload(ctx context.Context) {
	s.log.Printf("master", "reload -- version %s, configuration %s", Version, describe(s.opts.Paths))
	cfg, err := loadConfig(s.opts.Paths)
	if err == nil {
		var gen *generation
		gen, err = s.build(cfg)
		if err == nil {
			old := s.current()
			if err = s.start(ctx, gen); err == nil {
				s.drain(old)
				return
			}
			gen.close()
		}
	}
	s.log.Warnf("master", "reload failed, still running the previous configuration: %v", err)
}

// drain retires gen after a reload the way `postfix reload` and
// `doveadm reload` do: it stops taking connections, and the sessions it
// has go on with the configuration they started with until their clients
// leave (or their idle timeouts end them).
func (s *runner) drain(gen *generation) {
	if gen == nil {
		return
	}
	for _, v := range gen.views {
		v.Close()
	}
	s.mu.Lock()
	s.draining = append(s.draining, gen)
	s.mu.Unlock()
}

// retire lets gen's sessions finish (up to timeout) and releases it.
func (s *runner) retire(gen *generation, timeout time.Duration) {
	if gen == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	seen := map[any]bool{}
	for _, b := range gen.bindings {
		owner := any(b.svc)
		if w, ok := b.svc.(implicitTLS); ok {
			owner = w.Server // 143 and 993 share one server: shut it down once
		}
		if seen[owner] {
			continue
		}
		seen[owner] = true
		wg.Add(1)
		go func(b binding) {
			defer wg.Done()
			if err := b.svc.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				s.log.Warnf("master", "%s: shutdown: %v", b.name, err)
			}
		}(b)
	}
	wg.Wait()
	gen.close()
}

func (g *generation) close() {
	for _, c := range g.closers {
		c()
	}
}

func (s *runner) closeQueue() {
	if s.stopLocal != nil {
		s.stopLocal()
	}
	if s.queue != nil {
		if err := s.queue.Close(); err != nil {
			s.log.Warnf("master", "close queue: %v", err)
		}
	}
}

func describe(p config.Paths) string {
	var parts []string
	for _, f := range []string{p.MainCF, p.MasterCF, p.DovecotConf} {
		if f != "" {
			parts = append(parts, f)
		}
	}
	return fmt.Sprint(parts)
}
