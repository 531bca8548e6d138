package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"postcote/internal/config/doveconf"
	"postcote/internal/config/postfixconf"
	"postcote/internal/lmtpd"
	"postcote/internal/transport"
)

// buildLMTP makes the LMTP server of `protocols = … lmtp` and binds it to
// the listeners of `service lmtp`: unix_listener PATH { mode user group }
// (a relative PATH is under base_dir) and inet_listener NAME { address
// port } (as in Dovecot, a listener without a port is off). Dovecot's default unix_listener lmtp (mode 0666, in base_dir)
// is added unless the configuration names one "lmtp"; when base_dir
// cannot be created it is skipped with a warning, since Postfix reaches
// postcote over the configured listeners.
func (s *runner) buildLMTP(dc *doveconf.Config, gen *generation, role *mailboxRole) error {
	tlsCfg, _, err := dovecotTLS(dc)
	if err != nil {
		return err
	}
	cfg := dc.EffectiveFor("lmtp")
	if v, _ := cfg.Get("lmtp_save_to_detail_mailbox"); v == "yes" {
		s.log.Warnf("lmtp", "%s: lmtp_save_to_detail_mailbox = yes is not supported by this postcote; mail goes to INBOX", dc.PosOf("lmtp_save_to_detail_mailbox"))
	}
	host := cfg.GetDefault("hostname")
	if host == "" {
		host, _ = os.Hostname()
	}
	delim := cfg.GetDefault("recipient_delimiter")
	mb := &transport.Mailbox{Users: role.users, Store: role.store, Delimiter: delim, Name: "lmtp"}
	srv := lmtpd.New(lmtpd.Options{Hostname: host, TLS: tlsCfg, AddReceived: true, Logger: s.log}, mb)

	baseDir := dc.GetDefault("base_dir")
	svc := dc.Section("service", "lmtp")
	var unixes, inets []*doveconf.Section
	if svc != nil {
		unixes = svc.SectionsOf("unix_listener")
		inets = svc.SectionsOf("inet_listener")
	}
	haveDefault := false
	for _, l := range unixes {
		name := strings.Trim(l.Name, `"`)
		if name == "lmtp" {
			haveDefault = true
		}
		path := name
		if !filepath.IsAbs(path) {
			path = filepath.Join(baseDir, path)
		}
		mode := os.FileMode(0o666)
		if _, ok := l.Get("mode"); ok {
			m, err := l.Mode("mode")
			if err != nil {
				return err
			}
			mode = os.FileMode(m)
		}
		uid, gid := -1, -1
		if u, ok := l.Get("user"); ok && u != "" {
			if uid, err = lookupID("/etc/passwd", u); err != nil {
				return fmt.Errorf("%s: user: %w", l.PosOf("user"), err)
			}
		}
		if g, ok := l.Get("group"); ok && g != "" {
			if gid, err = lookupID("/etc/group", g); err != nil {
				return fmt.Errorf("%s: group: %w", l.PosOf("group"), err)
			}
		}
		gen.bindings = append(gen.bindings, binding{name: "lmtp " + path,
			svc:      &lmtpUnix{Server: srv, path: path, uid: uid, gid: gid, log: s.log},
			endpoint: Endpoint{Network: "unix", Address: path, Mode: mode}})
	}
	if !haveDefault {
		path := filepath.Join(baseDir, "lmtp")
		if err := os.MkdirAll(baseDir, 0o755); err != nil {
			s.log.Warnf("lmtp", "cannot create base_dir %s: %v; not listening on %s", baseDir, err, path)
		} else {
			gen.bindings = append(gen.bindings, binding{name: "lmtp " + path,
				svc: &lmtpUnix{Server: srv, path: path, uid: -1, gid: -1, log: s.log}, endpoint: Endpoint{Network: "unix", Address: path, Mode: 0o666}})
		}
	}
	listen := listenAddresses(dc.GetDefault("listen"))
	for _, l := range inets {
		port := 0
		if v, ok := l.Get("port"); ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 65535 {
				return fmt.Errorf("%s: port: %q is not a port number", l.Pos, v)
			}
			port = n
		}
		if port == 0 {
			// Dovecot: an inet_listener without a port (or port = 0) is off;
			// LMTP has no well-known default there (Postfix's side uses 24).
			s.log.Warnf("lmtp", "%s: inet_listener %s has no port; not listening (set port = 24)", l.Pos, l.Name)
			continue
		}
		addrs := listen
		if v, ok := l.Get("address"); ok {
			addrs = listenAddresses(v)
		}
		for _, a := range addrs {
			gen.bindings = append(gen.bindings, binding{name: "lmtp " + l.Name, svc: srv,
				endpoint: Endpoint{Network: a.network, Address: net.JoinHostPort(a.host, strconv.Itoa(port))}})
		}
	}
	return nil
}

// lmtpUnix serves one unix_listener: it gives the socket to the
// configured user and group (only a root process can) before serving.
type lmtpUnix struct {
	*lmtpd.Server
	path     string
	uid, gid int
	log      interface {
		Warnf(program, format string, args ...any)
	}
}

func (u *lmtpUnix) Serve(ctx context.Context, ln net.Listener) error {
	if (u.uid >= 0 || u.gid >= 0) && runningAsRoot() {
		if err := os.Chown(u.path, u.uid, u.gid); err != nil {
			u.log.Warnf("lmtp", "chown %s: %v", u.path, err)
		}
	}
	return u.Server.Serve(ctx, ln)
}

// lookupID finds a user's uid in /etc/passwd or a group's gid in
// /etc/group (name:x:id:…); a number is taken as is.
func lookupID(file, name string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return -1, fmt.Errorf("look up %q: %w", name, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 && fields[0] == name {
			n, err := strconv.Atoi(fields[2])
			if err != nil {
				return -1, fmt.Errorf("%s: bad id for %q", file, name)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return -1, fmt.Errorf("read %s: %w", file, err)
	}
	return -1, fmt.Errorf("%q not found in %s", name, file)
}

// newLMTPAgent is the lmtp transport configured from main.cf.
func newLMTPAgent(m *postfixconf.Main) *transport.LMTP {
	return &transport.LMTP{
		Hostname: m.Get("myhostname"),
		QueueDir: m.Get("queue_directory"),
		TLSLevel: m.Get("lmtp_tls_security_level"),
	}
}
