package server

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"postcote/internal/config/postfixconf"
	"postcote/internal/dnsx"
	"postcote/internal/lookup"
	"postcote/internal/maillog"
	"postcote/internal/rewrite"
	"postcote/internal/transport"
)

// smtpAgent builds the smtp(8) delivery agent (registered as "smtp" and,
// with name "relay", as the relay transport of master.cf's stock
// "relay unix - - n - - smtp") from main.cf: smtp_helo_name, the
// smtp_*_timeout values, smtp_mx_address_limit, smtp_mx_session_limit,
// disable_mime_output_conversion and the smtp_tls_* settings
// (smtp_tls_security_level with the obsolete smtp_use_tls and
// smtp_enforce_tls, smtp_tls_CAfile, smtp_tls_CApath,
// smtp_tls_verify_cert_match, smtp_tls_secure_cert_match,
// smtp_tls_protocols, smtp_tls_mandatory_protocols, smtp_tls_loglevel,
// smtp_tls_connection_reuse, and smtp_tls_policy_maps opened with open),
// and the connection cache (smtp_connection_cache_on_demand,
// smtp_connection_cache_destinations, smtp_connection_cache_time_limit,
// smtp_connection_reuse_count_limit, smtp_connection_reuse_time_limit,
// smtp_rset_timeout).
// DNS is the system resolver (each query bounded by dnsx.DefaultTimeout)
// unless the binary was built with the postcote_testdns tag
// (smtpclient_testdns.go); smtpd gets the same (smtpdResolver).
func smtpAgent(m *postfixconf.Main, log *maillog.Logger, name string, open rewrite.Opener) (*transport.SMTP, error) {
	a := &transport.SMTP{
		Name:     name,
		HeloName: m.Get("smtp_helo_name"),
		Port:     "25",
		TLS: transport.TLSPolicy{
			Level:              m.SMTPTLSLevel(),
			CAFile:             m.Get("smtp_tls_CAfile"),
			CAPath:             m.Get("smtp_tls_CApath"),
			VerifyCertMatch:    m.List("smtp_tls_verify_cert_match"),
			SecureCertMatch:    m.List("smtp_tls_secure_cert_match"),
			Protocols:          m.List("smtp_tls_protocols"),
			MandatoryProtocols: m.List("smtp_tls_mandatory_protocols"),
		},
	}
	if a.HeloName == "" {
		a.HeloName = m.Get("myhostname")
	}
	for _, d := range []struct {
		param string
		dst   *time.Duration
	}{
		{"smtp_connect_timeout", &a.ConnectTimeout},
		{"smtp_helo_timeout", &a.HeloTimeout},
		{"smtp_mail_timeout", &a.MailTimeout},
		{"smtp_rcpt_timeout", &a.RcptTimeout},
		{"smtp_data_init_timeout", &a.DataInitTimeout},
		{"smtp_data_xfer_timeout", &a.DataXferTimeout},
		{"smtp_data_done_timeout", &a.DataDoneTimeout},
		{"smtp_quit_timeout", &a.QuitTimeout},
		{"smtp_rset_timeout", &a.RsetTimeout},
		{"smtp_connection_cache_time_limit", &a.CacheTimeLimit},
		{"smtp_connection_reuse_time_limit", &a.ReuseTimeLimit},
	} {
		v, err := m.Duration(d.param)
		if err != nil {
			return nil, fmt.Errorf("smtp client: %w", err)
		}
		*d.dst = v
	}
	for _, n := range []struct {
		param string
		dst   *int
	}{
		{"smtp_mx_address_limit", &a.MXAddressLimit},
		{"smtp_mx_session_limit", &a.MXSessionLimit},
		{"smtp_tls_loglevel", &a.TLS.LogLevel},
		{"smtp_connection_reuse_count_limit", &a.ReuseCountLimit},
	} {
		v, err := m.Int(n.param)
		if err != nil {
			return nil, fmt.Errorf("smtp client: %w", err)
		}
		if v < 0 {
			return nil, fmt.Errorf("smtp client: %s = %d: must not be negative", n.param, v)
		}
		*n.dst = v
	}
	conv, err := m.Bool("disable_mime_output_conversion")
	if err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	a.DisableMIMEConversion = conv
	for _, b := range []struct {
		param string
		dst   *bool
	}{
		{"smtp_connection_cache_on_demand", &a.CacheOnDemand},
		{"smtp_tls_connection_reuse", &a.TLS.ConnectionReuse},
	} {
		if *b.dst, err = m.Bool(b.param); err != nil {
			return nil, fmt.Errorf("smtp client: %w", err)
		}
	}
	if a.CacheTimeLimit <= 0 {
		return nil, fmt.Errorf("smtp client: smtp_connection_cache_time_limit must be positive")
	}
	if a.CacheDestinations, err = cacheDestinations(m, open); err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	for _, spec := range m.List("smtp_tls_policy_maps") {
		if open == nil {
			return nil, fmt.Errorf("smtp client: smtp_tls_policy_maps: no table opener")
		}
		t, err := open(spec)
		if err != nil {
			return nil, fmt.Errorf("smtp client: %s: smtp_tls_policy_maps: %w", m.Pos("smtp_tls_policy_maps"), err)
		}
		a.TLSPolicyMaps = append(a.TLSPolicyMaps, t)
	}
	switch strings.ToLower(a.TLS.Level) {
	case "", "none", "may", "encrypt", "verify", "secure", "dane":
	default:
		return nil, fmt.Errorf("smtp client: smtp_tls_security_level = %s is not supported", a.TLS.Level)
	}
	a.Logf = func(format string, args ...any) { log.Printf(name, format, args...) }
	if a.LocalAddrs, err = ownAddresses(m); err != nil {
		return nil, fmt.Errorf("smtp client: %w", err)
	}
	if err := a.Check(); err != nil {
		// As Postfix's smtp(8): a warning, and mail that needs TLS
		// waits (deferred 4.7.5 with this reason) until it is fixed.
		log.Warnf(name, "TLS settings: %v; deliveries through this transport are deferred", err)
	}

	res, port, err := testDNS()
	if err != nil {
		return nil, fmt.Errorf("smtp client: test DNS: %w", err)
	}
	a.Resolver = dnsx.System(0)
	if res != nil {
		a.Resolver = res
		if port != "" {
			if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
				return nil, fmt.Errorf("smtp client: test DNS: bad port %q", port)
			}
			a.Port = port
		}
		log.Warnf(name, "using the test-only DNS resolver (binary built with the postcote_testdns tag)")
	}
	return a, nil
}

// addSMTPAgents registers the smtp and relay transports. It returns
// their Close functions (which end the idle cached sessions), for the
// generation to call when a reload replaces it.
func addSMTPAgents(m *postfixconf.Main, log *maillog.Logger, open rewrite.Opener, agents map[string]transport.Agent) ([]func() error, error) {
	var closers []func() error
	for _, name := range []string{"smtp", "relay"} {
		a, err := smtpAgent(m, log, name, open)
		if err != nil {
			for _, c := range closers {
				c()
			}
			return nil, err
		}
		agents[name] = a
		closers = append(closers, a.Close)
	}
	return closers, nil
}

// cacheDestinations reads smtp_connection_cache_destinations: next hops
// as the transport names them ("example.com", "[relay.example]:587"),
// /file/name lists of them, and type:table lookup tables keyed by the
// next hop, as Postfix's string list does (case-insensitive). It returns
// nil when the list is empty.
func cacheDestinations(m *postfixconf.Main, open rewrite.Opener) (func(context.Context, string) (bool, error), error) {
	elems, err := m.ListWithFiles("smtp_connection_cache_destinations")
	if err != nil || len(elems) == 0 {
		return nil, err
	}
	names := map[string]bool{}
	var tables []rewrite.Table
	for _, e := range elems {
		if spec, err := lookup.ParseSpec(e); err == nil && !strings.HasPrefix(e, "[") && slices.Contains(lookup.Types(), spec.Type) {
			if open == nil {
				return nil, fmt.Errorf("smtp_connection_cache_destinations: no table opener for %s", e)
			}
			t, err := open(e)
			if err != nil {
				return nil, fmt.Errorf("%s: smtp_connection_cache_destinations: %w", m.Pos("smtp_connection_cache_destinations"), err)
			}
			tables = append(tables, t)
			continue
		}
		names[strings.ToLower(e)] = true
	}
	return func(ctx context.Context, nexthop string) (bool, error) {
		key := strings.ToLower(strings.TrimSpace(nexthop))
		if names[key] {
			return true, nil
		}
		for _, t := range tables {
			v, err := t.Lookup(ctx, key)
			if err != nil {
				return false, err
			}
			if len(v) > 0 {
				return true, nil
			}
		}
		return false, nil
	}, nil
}

// ownAddresses are the addresses of inet_interfaces and proxy_interfaces
// (Postfix's own_inet_addr_list and proxy list): "all" is every
// interface address, "loopback-only" 127.0.0.1 and ::1. An MX host with
// one of them is this host (the "loops back to myself" check).
func ownAddresses(m *postfixconf.Main) ([]net.IP, error) {
	ifaces, err := m.InetInterfaces()
	if err != nil {
		return nil, err
	}
	var out []net.IP
	for _, v := range append(ifaces, m.List("proxy_interfaces")...) {
		switch strings.ToLower(v) {
		case "all":
			addrs, err := net.InterfaceAddrs()
			if err != nil {
				return nil, fmt.Errorf("interface addresses: %w", err)
			}
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					out = append(out, n.IP)
				}
			}
		case "loopback-only":
			out = append(out, net.IPv4(127, 0, 0, 1), net.IPv6loopback)
		default:
			if ip := net.ParseIP(strings.Trim(v, "[]")); ip != nil {
				out = append(out, ip)
			}
		}
	}
	return out, nil
}

// smtpdResolver is the DNS of smtpd's client name lookup and DNS-based
// restrictions: the test resolver of a postcote_testdns build, else the
// system's with a timeout on every query.
func smtpdResolver() (dnsx.Resolver, error) {
	res, _, err := testDNS()
	if err != nil {
		return nil, fmt.Errorf("smtpd: test DNS: %w", err)
	}
	if res != nil {
		return res, nil
	}
	return dnsx.System(0), nil
}
