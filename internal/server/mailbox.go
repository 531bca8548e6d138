package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"

	"postcote/internal/config/doveconf"
	"postcote/internal/imapd"
	"postcote/internal/mailstore"
	"postcote/internal/sasl"
	"postcote/internal/userdb"
)

// mailboxRole is the Dovecot side of one generation.
type mailboxRole struct {
	users *mailboxUsers
	store *mailstore.MaildirStore
}

// buildMailbox builds users, store and the IMAP services from
// dovecot.conf; nil without a dovecot.conf.
func (s *runner) buildMailbox(l *loaded, gen *generation) (*mailboxRole, error) {
	dc := l.dovecot
	if dc == nil {
		return nil, nil
	}
	users, err := buildUsers(dc, s)
	if err != nil {
		return nil, err
	}
	// Database pools (LDAP, SQL) go with the generation: a reload opens
	// new ones and the drained generation's are closed when it retires.
	gen.closers = append(gen.closers, users.close)
	if s.store == nil {
		// One store for the process: sessions of old and new generations
		// see each other's changes.
		s.store = mailstore.NewStore(mailstore.Options{})
	}
	users.store = s.store
	role := &mailboxRole{users: users, store: s.store}

	protocols := strings.Fields(dc.GetDefault("protocols"))
	for _, p := range protocols {
		switch p {
		case "imap":
			if err := s.buildIMAP(dc, gen, role); err != nil {
				return nil, err
			}
		case "lmtp":
			if err := s.buildLMTP(dc, gen, role); err != nil {
				return nil, err
			}
		case "pop3", "sieve":
			s.log.Warnf("master", "%s: protocols: %s is not supported by this postcote yet; not listening for it", dc.PosOf("protocols"), p)
		case "none":
		default:
			return nil, fmt.Errorf("%s: protocols: unknown protocol %q", dc.PosOf("protocols"), p)
		}
	}
	return role, nil
}

// buildUsers reads the passdb and userdb sections.
func buildUsers(dc *doveconf.Config, s *runner) (*mailboxUsers, error) {
	// default_pass_scheme belongs to the LDAP and SQL .conf.ext files,
	// which their drivers read; passwd-file takes scheme= in its args.
	// One view of /etc/passwd, /etc/group and /etc/shadow for the
	// drivers (passwd, shadow, pam; uid=NAME fields) and the Checker.
	sysFiles := userdb.NewSystemIDs("", "")
	dbOpts := userdb.Options{Log: s.log, IDs: sysFiles}
	var passdbs []userdb.PassDB
	var closers []any // the databases, closed with the generation
	for _, sec := range dc.SectionsOf("passdb") {
		driver, _ := sec.Get("driver")
		args, _ := sec.Get("args")
		db, err := userdb.NewPassDB(driver, args, dbOpts)
		if err != nil {
			return nil, fmt.Errorf("%s: passdb: %w", sec.Pos, err)
		}
		passdbs = append(passdbs, db)
		closers = append(closers, db)
	}
	var userdbs []userdb.UserDB
	for _, sec := range dc.SectionsOf("userdb") {
		driver, _ := sec.Get("driver")
		args, _ := sec.Get("args")
		def, _ := sec.Get("default_fields")
		over, _ := sec.Get("override_fields")
		db, err := userdb.NewUserDB(driver, args, def, over, dbOpts)
		if err != nil {
			return nil, fmt.Errorf("%s: userdb: %w", sec.Pos, err)
		}
		userdbs = append(userdbs, db)
		closers = append(closers, db)
	}
	if len(passdbs) == 0 {
		s.log.Warnf("auth", "%s: no passdb configured: nobody can log in", dc.Path)
	}
	opts := userdb.DefaultCheckerOptions()
	opts.Log = s.log
	opts.IDs = sysFiles
	if v, ok := dc.Get("auth_username_format"); ok {
		opts.UsernameFormat = v
	}
	if v, ok := dc.Get("auth_default_realm"); ok {
		opts.DefaultRealm = v
	}
	var errs []error
	num := func(key string, dst *int) {
		if _, ok := dc.Get(key); ok {
			n, err := dc.Int(key)
			if err != nil {
				errs = append(errs, err)
			}
			*dst = n
		}
	}
	num("first_valid_uid", &opts.FirstValidUID)
	num("last_valid_uid", &opts.LastValidUID)
	num("first_valid_gid", &opts.FirstValidGID)
	num("last_valid_gid", &opts.LastValidGID)
	if _, ok := dc.Get("auth_failure_delay"); ok {
		d, err := dc.Duration("auth_failure_delay")
		if err != nil {
			errs = append(errs, err)
		}
		opts.FailureDelay = d
	}
	if len(errs) > 0 {
		return nil, joinErrors(errs)
	}
	u := &mailboxUsers{
		checker:  userdb.NewChecker(passdbs, userdbs, opts),
		location: dc.GetDefault("mail_location"),
		auto:     autoMailboxes(dc),
		dbs:      closers,
	}
	return u, nil
}

// autoMailboxes reads `namespace { mailbox NAME { special_use auto } }`.
func autoMailboxes(dc *doveconf.Config) []mailstore.AutoMailbox {
	var out []mailstore.AutoMailbox
	for _, ns := range dc.SectionsOf("namespace") {
		sep, _ := ns.Get("separator")
		prefix, _ := ns.Get("prefix")
		for _, mb := range ns.SectionsOf("mailbox") {
			name := strings.Trim(mb.Name, `"`)
			name = strings.TrimPrefix(name, prefix)
			if sep != "" && sep != "/" {
				name = strings.ReplaceAll(name, sep, "/")
			}
			auto, _ := mb.Get("auto")
			use, _ := mb.Get("special_use")
			if auto == "" {
				auto = "no"
			}
			out = append(out, mailstore.AutoMailbox{Name: name, SpecialUse: use, Auto: auto})
		}
	}
	return out
}

// mailboxUsers joins the userdb to the mail store for every protocol:
// password checks (sasl.PasswordChecker), user lookups with the mail
// location expanded (transport.UserLookup), and auto-created mailboxes
// at first use.
type mailboxUsers struct {
	checker  *userdb.Checker
	location string // the global mail_location, for users without a mail field
	auto     []mailstore.AutoMailbox
	store    *mailstore.MaildirStore
	ensured  sync.Map // user name → true once auto mailboxes exist
	ensuring sync.Map // user name → *sync.Mutex held while creating them
	dbs      []any    // passdbs and userdbs, for close
}

// close releases the databases' connections (those that hold any).
func (u *mailboxUsers) close() error {
	for _, db := range u.dbs {
		if c, ok := db.(interface{ Close() error }); ok {
			c.Close()
		} else if c, ok := db.(interface{ Close() }); ok {
			c.Close()
		}
	}
	return nil
}

// CheckPassword implements sasl.PasswordChecker.
func (u *mailboxUsers) CheckPassword(ctx context.Context, req sasl.Request) (string, error) {
	return u.checker.CheckPassword(ctx, req)
}

// LookupSCRAM implements sasl.CredentialsLookup (SCRAM mechanisms).
func (u *mailboxUsers) LookupSCRAM(ctx context.Context, req sasl.Request, mech string) (string, sasl.SCRAMCredentials, error) {
	return u.checker.LookupSCRAM(ctx, req, mech)
}

// FinishSCRAM implements sasl.CredentialsLookup.
func (u *mailboxUsers) FinishSCRAM(ctx context.Context, req sasl.Request, user string, ok bool) error {
	return u.checker.FinishSCRAM(ctx, req, user, ok)
}

// LookupUser implements transport.UserLookup.
func (u *mailboxUsers) LookupUser(ctx context.Context, service, name string) (mailstore.User, bool, error) {
	info, found, err := u.checker.LookupUser(ctx, service, name)
	if err != nil || !found {
		return mailstore.User{}, found, err
	}
	loc := info.MailLocation
	if loc == "" {
		loc = u.location
	}
	if loc == "" {
		return mailstore.User{}, false, fmt.Errorf("%w: user %s has no mail location: set mail_location in dovecot.conf or a mail field in the userdb", sasl.ErrTempFail, info.Name)
	}
	loc, err = userdb.ExpandCheck(loc, userdb.Vars{User: info.Name, Service: service, Home: info.Home,
		UID: strconv.Itoa(info.UID), GID: strconv.Itoa(info.GID)})
	if err != nil {
		return mailstore.User{}, false, fmt.Errorf("%w: mail location of %s: %v", sasl.ErrTempFail, info.Name, err)
	}
	user := mailstore.User{Name: info.Name, Home: info.Home, MailLocation: loc, UID: info.UID, GID: info.GID}
	if !runningAsRoot() {
		user.UID, user.GID = -1, -1 // files are ours anyway
	}
	if err := u.ensure(ctx, user); err != nil {
		return mailstore.User{}, false, fmt.Errorf("%w: %v", sasl.ErrTempFail, err)
	}
	return user, true, nil
}

// ensure creates the configured auto mailboxes once per user and process.
func (u *mailboxUsers) ensure(ctx context.Context, user mailstore.User) error {
	if len(u.auto) == 0 || u.store == nil {
		return nil
	}
	if _, done := u.ensured.Load(user.Name); done {
		return nil
	}
	// One creator per user: concurrent first deliveries wait for it.
	mu, _ := u.ensuring.LoadOrStore(user.Name, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	defer mu.(*sync.Mutex).Unlock()
	if _, done := u.ensured.Load(user.Name); done {
		return nil
	}
	acct, err := u.store.Open(ctx, user)
	if err != nil {
		return err
	}
	defer acct.Close()
	if err := mailstore.EnsureMailboxes(ctx, acct, u.auto); err != nil {
		return err
	}
	u.ensured.Store(user.Name, true)
	return nil
}

// UserExists tells smtpd whether a recipient has a mailbox.
func (u *mailboxUsers) UserExists(ctx context.Context, name string) (bool, error) {
	_, found, err := u.checker.LookupUser(ctx, "lmtp", name)
	return found, err
}

// imapUsers adapts mailboxUsers to imapd.Users.
type imapUsers struct{ *mailboxUsers }

func (u imapUsers) LookupUser(ctx context.Context, service, name string) (mailstore.User, error) {
	user, found, err := u.mailboxUsers.LookupUser(ctx, service, name)
	if err == nil && !found {
		err = fmt.Errorf("%w: user %s logged in but has no userdb entry", sasl.ErrTempFail, name)
	}
	return user, err
}

func runningAsRoot() bool { return os.Geteuid() == 0 }

// dovecotTLS loads ssl_cert and ssl_key; nil when ssl = no.
func dovecotTLS(dc *doveconf.Config) (*tls.Config, string, error) {
	mode := dc.GetDefault("ssl")
	if mode == "no" {
		return nil, mode, nil
	}
	cert, _ := dc.Get("ssl_cert")
	key, _ := dc.Get("ssl_key")
	if cert == "" || key == "" {
		if mode == "required" {
			return nil, mode, fmt.Errorf("%s: ssl = required needs ssl_cert and ssl_key", dc.PosOf("ssl"))
		}
		return nil, "no", nil
	}
	// ssl_cert = </path: the parser has read the file; the value is PEM.
	pair, err := tls.X509KeyPair([]byte(cert), []byte(key))
	if err != nil {
		return nil, mode, fmt.Errorf("%s: ssl_cert/ssl_key: %w", dc.PosOf("ssl_cert"), err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if v, ok := dc.Get("ssl_min_protocol"); ok {
		minVer, err := minTLSVersion(v)
		if err != nil {
			return nil, mode, fmt.Errorf("%s: %w", dc.PosOf("ssl_min_protocol"), err)
		}
		cfg.MinVersion = minVer
	}
	return cfg, mode, nil
}

// buildIMAP makes the IMAP server and binds it to the inet_listeners of
// `service imap-login`.
func (s *runner) buildIMAP(dc *doveconf.Config, gen *generation, role *mailboxRole) error {
	tlsCfg, sslMode, err := dovecotTLS(dc)
	if err != nil {
		return err
	}
	imapCfg := dc.EffectiveFor("imap")
	disablePlain := true
	if v, ok := imapCfg.Get("disable_plaintext_auth"); ok {
		disablePlain = v != "no"
	}
	if sslMode == "required" {
		disablePlain = true
	}
	sep := "."
	for _, ns := range dc.SectionsOf("namespace") {
		if inbox, _ := ns.Get("inbox"); inbox == "yes" {
			if v, ok := ns.Get("separator"); ok && v != "" {
				sep = v
			}
		}
	}
	trusted, err := trustedNetworks(dc.GetDefault("login_trusted_networks"))
	if err != nil {
		return fmt.Errorf("%s: login_trusted_networks: %w", dc.PosOf("login_trusted_networks"), err)
	}
	opts := imapd.Options{
		TLS:                tlsCfg,
		AllowPlaintextAuth: !disablePlain,
		TLSRequiredForAuth: sslMode == "required",
		// Dovecot counts a connection from this host to itself (remote IP
		// = local IP) as secured, and login_trusted_networks too.
		LocalIsSecure:   true,
		TrustedNetworks: trusted,
		AuthMechanisms:  strings.Fields(strings.ToUpper(dc.GetDefault("auth_mechanisms"))),
		Separator:       sep,
		Logger:          s.log,
	}
	// One server for 143 and 993: one structure cache and one
	// mail_max_userip_connections count, as in Dovecot's imap service.
	srv := imapd.New(opts, role.store, role.users, imapUsers{role.users})
	imaps := implicitTLS{srv}

	listen := listenAddresses(dc.GetDefault("listen"))
	login := dc.Section("service", "imap-login")
	listeners := map[string]*doveconf.Section{}
	if login != nil {
		for _, l := range login.SectionsOf("inet_listener") {
			listeners[l.Name] = l
		}
	}
	for _, name := range []string{"imap", "imaps"} {
		port := map[string]int{"imap": 143, "imaps": 993}[name]
		implicit := name == "imaps"
		addrs := listen
		if l := listeners[name]; l != nil {
			if v, ok := l.Get("port"); ok {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 || n > 65535 {
					return fmt.Errorf("%s: port: %q is not a port number", l.Pos, v)
				}
				port = n
			}
			if v, ok := l.Get("address"); ok {
				addrs = listenAddresses(v)
			}
			if v, ok := l.Get("ssl"); ok {
				implicit = v == "yes"
			}
			delete(listeners, name)
		}
		if port == 0 {
			continue // Dovecot: port = 0 turns a listener off
		}
		var svc service = srv
		if implicit {
			if tlsCfg == nil {
				s.log.Warnf("imap-login", "%s: no ssl_cert/ssl_key: the imaps listener on port %d is off", dc.Path, port)
				continue
			}
			svc = imaps
		}
		for _, a := range addrs {
			gen.bindings = append(gen.bindings, binding{name: "imap " + name, svc: svc,
				endpoint: Endpoint{Network: a.network, Address: net.JoinHostPort(a.host, strconv.Itoa(port))}})
		}
	}
	for name, l := range listeners {
		return fmt.Errorf("%s: inet_listener %s: unknown listener of service imap-login (want imap or imaps)", l.Pos, name)
	}
	return nil
}

type listenAddr struct{ network, host string }

// listenAddresses reads Dovecot's listen: "*" is every IPv4 address, "::"
// every IPv6 address, others are addresses or names.
func listenAddresses(v string) []listenAddr {
	var out []listenAddr
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		switch f {
		case "*":
			out = append(out, listenAddr{"tcp4", "0.0.0.0"})
		case "::", "[::]":
			if hasIPv6Loopback() {
				out = append(out, listenAddr{"tcp6", "::"})
			}
		default:
			out = append(out, listenAddr{"tcp", strings.Trim(f, "[]")})
		}
	}
	return out
}

// implicitTLS binds an IMAP server's imaps listeners: Serve starts TLS
// before the greeting. Shutdown is the server's own; retire calls it once
// for both listeners.
type implicitTLS struct{ *imapd.Server }

func (s implicitTLS) Serve(ctx context.Context, ln net.Listener) error {
	return s.Server.ServeImplicitTLS(ctx, ln)
}

// trustedNetworks reads login_trusted_networks: addresses and networks
// separated by spaces or commas.
func trustedNetworks(v string) ([]*net.IPNet, error) {
	var out []*net.IPNet
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		p, err := parseNetwork(f)
		if err != nil {
			return nil, err
		}
		out = append(out, &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())})
	}
	return out, nil
}
