package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"postcote/internal/authd"
	"postcote/internal/config"
	"postcote/internal/config/doveconf"
	"postcote/internal/config/postfixconf"
	"postcote/internal/maillog"
	"postcote/internal/sasl"
	"postcote/internal/userdb"
)

// LoadUsers builds the passdbs and userdbs of the dovecot.conf in p, with
// the auth settings, exactly as `postcote serve` does: what `postcote
// doveadm auth` and `doveadm user` ask in-process (Dovecot's doveadm asks
// its auth server instead; the answers are the same). It also returns the
// configuration, for mail_location and the like.
func LoadUsers(p config.Paths, log *maillog.Logger) (*userdb.Checker, *doveconf.Config, error) {
	if p.DovecotConf == "" {
		return nil, nil, fmt.Errorf("no dovecot.conf found (give -c DIR or -c FILE)")
	}
	dc, err := doveconf.Load(p.DovecotConf)
	if err != nil {
		return nil, nil, err
	}
	ds := dc.Check()
	if config.HasErrors(ds) {
		var b strings.Builder
		b.WriteString("the configuration has errors (run `postcote check` for the full list):")
		for _, d := range ds {
			if d.Severity == config.Error {
				b.WriteString("\n  " + d.String())
			}
		}
		return nil, nil, fmt.Errorf("%s", b.String())
	}
	if log == nil {
		log = maillog.Discard()
	}
	u, err := buildUsers(dc, &runner{log: log})
	if err != nil {
		return nil, nil, err
	}
	return u.checker, dc, nil
}

// masterSockets are the unix_listeners of Dovecot's service auth that
// speak the auth-master/userdb protocol (for Dovecot's own mail and login
// processes), not the auth-client protocol; postcote's processes ask the
// userdb in-process, so they are not served.
var masterSockets = map[string]bool{
	"auth-userdb": true, "auth-master": true, "auth-worker": true,
	"login/login": true, "token-login/tokenlogin": true,
}

// authListener is one socket of `service auth`.
type authListener struct {
	endpoint Endpoint
	uid, gid int    // owner of a unix socket; -1 = leave as created
	pos      string // for messages
}

// authListeners reads `service auth { unix_listener PATH { mode user
// group } inet_listener [NAME] { port address } }`. A relative unix path
// is relative to base_dir, as in Dovecot.
func authListeners(dc *doveconf.Config) ([]authListener, error) {
	sec := dc.Section("service", "auth")
	if sec == nil {
		return nil, nil
	}
	baseDir := dc.GetDefault("base_dir")
	var out []authListener
	for _, l := range sec.SectionsOf("unix_listener") {
		name := strings.Trim(l.Name, `"`)
		if masterSockets[name] {
			continue
		}
		if name == "" {
			return nil, fmt.Errorf("%s: unix_listener without a path", l.Pos)
		}
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, path)
		}
		// Dovecot's default mode for service sockets is 0600.
		mode := os.FileMode(0o600)
		if v, ok := l.Get("mode"); ok {
			n, err := strconv.ParseUint(v, 8, 32)
			if err != nil || n > 0o777 {
				return nil, fmt.Errorf("%s: mode: %q is not an octal permission like 0660", l.PosOf("mode"), v)
			}
			mode = os.FileMode(n)
		}
		al := authListener{endpoint: Endpoint{Network: "unix", Address: filepath.Clean(path), Mode: mode}, uid: -1, gid: -1, pos: l.Pos.String()}
		if runningAsRoot() {
			if v, _ := l.Get("user"); v != "" {
				uid, err := lookupUser(v)
				if err != nil {
					return nil, fmt.Errorf("%s: user: %w", l.PosOf("user"), err)
				}
				al.uid = uid
			}
			if v, _ := l.Get("group"); v != "" {
				gid, err := lookupGroup(v)
				if err != nil {
					return nil, fmt.Errorf("%s: group: %w", l.PosOf("group"), err)
				}
				al.gid = gid
			}
		}
		out = append(out, al)
	}
	listen := listenAddresses(dc.GetDefault("listen"))
	for _, l := range sec.SectionsOf("inet_listener") {
		v, ok := l.Get("port")
		if !ok {
			return nil, fmt.Errorf("%s: inet_listener of service auth needs a port", l.Pos)
		}
		port, err := strconv.Atoi(v)
		if err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("%s: port: %q is not a port number", l.PosOf("port"), v)
		}
		if port == 0 {
			continue // Dovecot: port = 0 turns a listener off
		}
		addrs := listen
		if v, ok := l.Get("address"); ok {
			addrs = listenAddresses(v)
		}
		for _, a := range addrs {
			out = append(out, authListener{endpoint: Endpoint{Network: a.network, Address: net.JoinHostPort(a.host, strconv.Itoa(port))}, uid: -1, gid: -1, pos: l.Pos.String()})
		}
	}
	return out, nil
}

// buildAuth starts the Dovecot auth service of dovecot.conf's `service
// auth` for other MTAs (a real Postfix with smtpd_sasl_type = dovecot),
// checking passwords with the mailbox role's passdbs. Without that
// section, or without a dovecot.conf, it does nothing.
func (s *runner) buildAuth(l *loaded, gen *generation, mbox *mailboxRole) error {
	if l.dovecot == nil || mbox == nil {
		return nil
	}
	dc := l.dovecot
	listeners, err := authListeners(dc)
	if err != nil || len(listeners) == 0 {
		return err
	}
	mechs := authMechanisms(dc)
	if len(mechs) == 0 {
		return fmt.Errorf("%s: auth_mechanisms: none of %q is implemented (use plain, login, scram-sha-256, scram-sha-1)", dc.PosOf("auth_mechanisms"), dc.GetDefault("auth_mechanisms"))
	}
	srv, err := authd.NewServer(authd.Options{Checker: mbox.users, Mechanisms: mechs, Log: s.log})
	if err != nil {
		return err
	}
	baseDir := filepath.Clean(dc.GetDefault("base_dir"))
	for _, al := range listeners {
		if al.endpoint.Network == "unix" && filepath.Dir(al.endpoint.Address) == baseDir {
			// Dovecot creates base_dir at start.
			if err := os.MkdirAll(baseDir, 0o755); err != nil {
				return fmt.Errorf("%s: base_dir: %w", dc.PosOf("base_dir"), err)
			}
		}
		gen.bindings = append(gen.bindings, binding{name: "auth " + al.endpoint.String(), svc: authBinding{srv, al.uid, al.gid}, endpoint: al.endpoint})
	}
	return nil
}

// authMechanisms is dovecot.conf's auth_mechanisms in upper case, without
// the names internal/sasl does not implement (the configuration check
// warned about those).
func authMechanisms(dc *doveconf.Config) []string {
	var mechs []string
	for _, m := range strings.Fields(strings.ToUpper(dc.GetDefault("auth_mechanisms"))) {
		if slices.Contains(sasl.Mechanisms, m) && !slices.Contains(mechs, m) {
			mechs = append(mechs, m)
		}
	}
	return mechs
}

// authBinding serves the auth server on one socket, giving a unix socket
// the owner its unix_listener names first.
type authBinding struct {
	*authd.Server
	uid, gid int
}

func (b authBinding) Serve(ctx context.Context, ln net.Listener) error {
	if a, ok := ln.Addr().(*net.UnixAddr); ok && (b.uid >= 0 || b.gid >= 0) {
		if err := os.Chown(a.Name, b.uid, b.gid); err != nil {
			ln.Close()
			return fmt.Errorf("chown %s: %w", a.Name, err)
		}
	}
	return b.Server.Serve(ctx, ln)
}

// saslPath resolves smtpd_sasl_path: "inet:host:port" stays, an absolute
// path stays, a relative one is under queue_directory (Postfix's smtpd
// runs chrooted there or resolves it from there).
func saslPath(view *postfixconf.Main) string {
	p := strings.TrimSpace(view.Get("smtpd_sasl_path"))
	if strings.HasPrefix(p, "inet:") || filepath.IsAbs(p) {
		return p
	}
	p = strings.TrimPrefix(p, "unix:")
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(view.Get("queue_directory"), p)
}

// servedHere tells whether this process's `service auth` listens where
// spec points.
func servedHere(dc *doveconf.Config, spec string) bool {
	if dc == nil {
		return false
	}
	network, address, err := authd.ParseAddress(spec)
	if err != nil {
		return false
	}
	listeners, err := authListeners(dc)
	if err != nil {
		return false
	}
	for _, al := range listeners {
		e := al.endpoint
		if network == "unix" {
			if e.Network == "unix" && e.Address == filepath.Clean(address) {
				return true
			}
			continue
		}
		if e.Network == "unix" {
			continue
		}
		host, port, _ := net.SplitHostPort(address)
		lhost, lport, _ := net.SplitHostPort(e.Address)
		if port != lport {
			continue
		}
		ip := net.ParseIP(host)
		lip := net.ParseIP(lhost)
		if lhost == host || (lip != nil && lip.IsUnspecified() && (host == "localhost" || (ip != nil && ip.IsLoopback()))) {
			return true
		}
	}
	return false
}

// smtpdAuth picks the password checker of an SMTP service whose AUTH is
// on (smtpd_sasl_type = dovecot, which the configuration check demands):
// the in-process one when smtpd_sasl_path names a socket this process
// serves (the answer is the same as over the socket, without the trip),
// otherwise a client of the auth server there. The client is closed with
// the generation.
func (s *runner) smtpdAuth(l *loaded, view *postfixconf.Main, gen *generation, local sasl.PasswordChecker) (sasl.PasswordChecker, error) {
	spec := saslPath(view)
	if local != nil && servedHere(l.dovecot, spec) {
		return withMechanisms(local, authMechanisms(l.dovecot)), nil
	}
	cl, err := authd.NewClient(spec, authd.ClientOptions{})
	if err != nil {
		return nil, fmt.Errorf("%s: smtpd_sasl_path: %w", view.Pos("smtpd_sasl_path"), err)
	}
	gen.closers = append(gen.closers, cl.Close)
	s.log.Printf("master", "%s: smtpd authenticates through the Dovecot auth server at %s", view.Pos("smtpd_sasl_path"), cl)
	return cl, nil
}

// localAuth is the in-process checker as smtpd sees it: with the
// mechanisms of dovecot.conf's auth_mechanisms, which Postfix would read
// from the auth server's MECH lines (smtpd.MechanismLister).
type localAuth struct {
	sasl.PasswordChecker
	mechs []string
}

func (a localAuth) SASLMechanisms() []string { return a.mechs }

// localSCRAMAuth is localAuth for a checker that can run SCRAM too.
type localSCRAMAuth struct {
	localAuth
	sasl.CredentialsLookup
}

// withMechanisms wraps checker with mechs, keeping SCRAM only when the
// checker can give SCRAM credentials.
func withMechanisms(checker sasl.PasswordChecker, mechs []string) sasl.PasswordChecker {
	if cl, ok := checker.(sasl.CredentialsLookup); ok {
		return localSCRAMAuth{localAuth{checker, mechs}, cl}
	}
	return localAuth{checker, slices.DeleteFunc(slices.Clone(mechs), func(m string) bool {
		return sasl.NewServer(m, checker, sasl.Request{}) == nil
	})}
}

// lookupUser and lookupGroup resolve names through /etc/passwd and
// /etc/group (os/user without cgo reads those files).
func lookupUser(name string) (int, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Uid)
}

func lookupGroup(name string) (int, error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}
