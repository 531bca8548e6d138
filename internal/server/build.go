package server

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"postcote/internal/config"
	"postcote/internal/config/doveconf"
	"postcote/internal/config/postfixconf"
	"postcote/internal/maillog"
	"postcote/internal/mailstore"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
	"postcote/internal/sasl"
	"postcote/internal/smtpd"
	"postcote/internal/transport"
)

// loaded is one reading of the configuration files.
type loaded struct {
	paths   config.Paths
	postfix *postfixconf.Config // nil without main.cf and master.cf
	dovecot *doveconf.Config    // nil without dovecot.conf
	notes   []config.Diagnostic // warnings and infos of the checks
}

// loadConfig parses and checks the files. Any error-level finding stops
// the load, with every finding listed as file:line.
func loadConfig(p config.Paths) (*loaded, error) {
	l := &loaded{paths: p}
	var ds []config.Diagnostic
	if p.MainCF != "" || p.MasterCF != "" {
		dir := p.MainCF
		if dir == "" {
			dir = p.MasterCF
		}
		pf, err := postfixconf.Load(dir)
		if err != nil {
			return nil, err
		}
		l.postfix = pf
		ds = append(ds, pf.Check()...)
	}
	if p.DovecotConf != "" {
		dc, err := doveconf.Load(p.DovecotConf)
		if err != nil {
			return nil, err
		}
		l.dovecot = dc
		ds = append(ds, dc.Check()...)
	}
	if l.postfix == nil && l.dovecot == nil {
		return nil, errors.New("no configuration: neither main.cf/master.cf nor dovecot.conf")
	}
	config.SortDiagnostics(ds)
	if config.HasErrors(ds) {
		var b strings.Builder
		b.WriteString("the configuration has errors (run `postcote check` for the full list):")
		for _, d := range ds {
			if d.Severity == config.Error {
				b.WriteString("\n  " + d.String())
			}
		}
		return nil, errors.New(b.String())
	}
	l.notes = ds
	return l, nil
}

// openQueue opens the spool main.cf names, with its queue settings.
func openQueue(l *loaded, log *maillog.Logger) (*queue.Queue, error) {
	m := l.postfix.Main
	var errs []error
	dur := func(name string) time.Duration {
		v, err := m.Duration(name)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	size, err := m.Size("message_size_limit")
	if err != nil {
		errs = append(errs, err)
	}
	minFree, err := m.Size("queue_minfree")
	if err != nil {
		errs = append(errs, err)
	}
	opts := queue.Options{
		Logger:               log,
		MinimalBackoff:       dur("minimal_backoff_time"),
		MaximalBackoff:       dur("maximal_backoff_time"),
		QueueRunDelay:        dur("queue_run_delay"),
		MaximalQueueLifetime: dur("maximal_queue_lifetime"),
		BounceQueueLifetime:  dur("bounce_queue_lifetime"),
		DelayWarningTime:     dur("delay_warning_time"),
		MaxMessageSize:       size,
		Hostname:             m.Get("myhostname"),
		QueueMinFree:         minFree,
	}
	if opts.ActiveLimit, err = m.Int("qmgr_message_active_limit"); err != nil {
		errs = append(errs, err)
	}
	// notify_classes and who gets the postmaster notices (queue/notify.go).
	if opts.Notify.Classes, err = queue.ParseNotifyClasses(m.List("notify_classes")); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", m.Pos("notify_classes"), err))
	}
	if opts.Notify.Myorigin, err = m.FileValue("myorigin"); err != nil {
		errs = append(errs, err)
	}
	opts.Notify.BounceRecipient, opts.Notify.DoubleBounceRecipient = m.Get("bounce_notice_recipient"), m.Get("2bounce_notice_recipient")
	opts.Notify.DelayRecipient, opts.Notify.ErrorRecipient = m.Get("delay_notice_recipient"), m.Get("error_notice_recipient")
	opts.Notify.DoubleBounceSender = m.Get("double_bounce_sender")
	if size == 0 {
		opts.MaxMessageSize = -1
	}
	// In queue.Options zero means "Postfix's default"; a configured 0
	// lifetime means "bounce at the first deferral", which the queue
	// spells -1.
	for _, f := range []struct {
		name string
		dst  *time.Duration
	}{{"maximal_queue_lifetime", &opts.MaximalQueueLifetime}, {"bounce_queue_lifetime", &opts.BounceQueueLifetime}} {
		if *f.dst == 0 {
			*f.dst = -1
		}
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	dir := queueDir(m)
	q, err := queue.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open queue %s (queue_directory in %s): %w", dir, m.Path(), err)
	}
	return q, nil
}

// build makes a generation from a loaded configuration.
func (s *runner) build(l *loaded) (*generation, error) {
	for _, d := range l.notes {
		if d.Severity == config.Warning {
			s.log.Warnf("master", "%s", d.String())
		}
	}
	gen := &generation{}
	mbox, err := s.buildMailbox(l, gen)
	if err != nil {
		gen.close()
		return nil, err
	}
	if err := s.buildAuth(l, gen, mbox); err != nil {
		gen.close()
		return nil, err
	}
	if l.postfix != nil && l.postfix.HasMain {
		if err := s.buildMTA(l, gen, mbox); err != nil {
			gen.close()
			return nil, err
		}
	}
	return gen, nil
}

// stockMaster is what Postfix runs without a master.cf of its own: SMTP
// on port 25.
const stockMaster = "smtp inet n - y - - smtpd\n"

// buildMTA builds the SMTP services of master.cf and the router.
func (s *runner) buildMTA(l *loaded, gen *generation, mbox *mailboxRole) error {
	m := l.postfix.Main
	open := s.tableOpener(gen)
	domains, err := domainsFrom(m, open)
	if err != nil {
		return err
	}
	nets, err := myNetworks(m)
	if err != nil {
		return err
	}
	rw, err := rewriteFrom(m, domains, nets, open)
	if err != nil {
		return err
	}
	addrs := rw.recipients
	var checker sasl.PasswordChecker
	agents := map[string]transport.Agent{"error": transport.Error{}, "discard": transport.Discard{}, "lmtp": newLMTPAgent(m)}
	smtpClosers, err := addSMTPAgents(m, s.log, open, agents)
	if err != nil {
		return err
	}
	gen.closers = append(gen.closers, smtpClosers...)
	if mbox != nil {
		addrs.Users = mbox.users
		checker = mbox.users
		agents["virtual"] = &transport.Mailbox{Users: mbox.users, Store: mbox.store, Delimiter: m.Get("recipient_delimiter"), Name: "virtual"}
	}
	if rw.virtual != nil {
		// virtual_mailbox_maps is set: virtual(8) driven by the maps,
		// through the same delivery function.
		var store mailstore.Deliverer = mailstore.NewStore(mailstore.Options{})
		if mbox != nil {
			store = mbox.store
		}
		rw.virtual.Mailbox = &transport.Mailbox{Store: store, Delimiter: m.Get("recipient_delimiter"), Name: "virtual"}
		agents["virtual"] = rw.virtual
	}
	cleanup := rw.cleanup(s.queue)
	cleanup.Log = s.log // cleanup's warnings (alias expansion, hop count)
	gen.cleanup = cleanup
	// local(8) for mydestination: alias_maps, ~/.forward, then the
	// system user's mailbox (transport/local.go).
	var aliases rewrite.Table
	if !domains.Local.Empty() {
		if aliases, err = rewrite.OpenMaps(open, "alias_maps", m.List("alias_maps")); err != nil {
			return fmt.Errorf("%s: %w", m.Pos("alias_maps"), err)
		}
	}
	var localStore mailstore.Deliverer = mailstore.NewStore(mailstore.Options{})
	if mbox != nil {
		localStore = mbox.store
	}
	localAgent, err := transport.NewLocal(m, aliases, localStore, domains, cleanup)
	if err != nil {
		return err
	}
	localAgent.Agents = agents // for mailbox_transport
	agents["local"] = localAgent
	deferred := map[string]bool{}
	for _, t := range m.List("defer_transports") {
		deferred[t] = true
	}
	router := &transport.Router{
		Domains:          domains,
		VirtualTransport: m.Get("virtual_transport"),
		LocalTransport:   m.Get("local_transport"),
		RelayTransport:   m.Get("relay_transport"),
		DefaultTransport: m.Get("default_transport"),
		Relayhost:        m.Get("relayhost"),
		DeferTransports:  deferred,
		Agents:           agents,
	}
	gen.agent = router

	master := l.postfix.Master
	if master == nil {
		master, err = postfixconf.ParseMasterBytes("(stock master.cf)", []byte(stockMaster))
		if err != nil {
			return err
		}
	}
	if router.LimitsFor, err = transportLimits(m, master); err != nil {
		return err
	}
	// One anvil for every SMTP service, as Postfix has one anvil server:
	// a client's limits count across smtp, submission and submissions.
	unit, err := m.Duration("anvil_rate_time_unit")
	if err != nil {
		return err
	}
	anvil := smtpd.NewAnvil(unit, nil)
	for _, svc := range master.Services {
		if svc.Type != "inet" || svc.Command != "smtpd" {
			continue
		}
		view := l.postfix.Service(svc)
		opts, err := smtpdOptions(view, svc)
		if err != nil {
			return fmt.Errorf("master.cf service %s (%s): %w", svc.Name, svc.Pos, err)
		}
		opts.Logger = s.log
		opts.Anvil = anvil
		rw.smtpdTables(&opts)
		auth := checker
		if opts.SASLEnable {
			// smtpd_sasl_path: this process's own auth service, or a
			// client of another Dovecot auth server (auth.go).
			if auth, err = s.smtpdAuth(l, view, gen, checker); err != nil {
				return fmt.Errorf("master.cf service %s (%s): %w", svc.Name, svc.Pos, err)
			}
		}
		svcCleanup, err := rw.serviceCleanup(cleanup, view)
		if err != nil {
			return fmt.Errorf("master.cf service %s (%s): %w", svc.Name, svc.Pos, err)
		}
		srv, err := smtpd.New(opts, svcCleanup, addrs, auth)
		if err != nil {
			return fmt.Errorf("master.cf service %s (%s): %w", svc.Name, svc.Pos, err)
		}
		eps, err := inetEndpoints(view, svc)
		if err != nil {
			return err
		}
		for _, e := range eps {
			gen.bindings = append(gen.bindings, binding{name: "smtpd " + svc.Name, svc: srv, endpoint: e})
		}
	}
	return nil
}
