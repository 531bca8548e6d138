package server

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"postcote/internal/config/postfixconf"
	"postcote/internal/rewrite"
	"postcote/internal/smtpd"
)

// domainsFrom reads the address-class domain lists of main.cf. An
// element "type:name" is a lookup table (guide 001's
// virtual_alias_domains = ldap:…), opened with open.
func domainsFrom(m *postfixconf.Main, open rewrite.Opener) (*rewrite.Domains, error) {
	list := func(name string, sub bool) (*rewrite.DomainList, error) {
		elems, err := m.ListWithFiles(name)
		if err != nil {
			return nil, err
		}
		var names, tables []string
		for _, e := range elems {
			if _, ok := postfixconf.ParseTable(e); ok {
				tables = append(tables, e)
				continue
			}
			names = append(names, e)
		}
		l := rewrite.NewDomainList(names, sub)
		if len(tables) > 0 {
			t, err := rewrite.OpenMaps(open, name, tables)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Pos(name), err)
			}
			l = l.WithTables(t)
		}
		return l, nil
	}
	var d rewrite.Domains
	var err error
	if d.Local, err = list("mydestination", false); err != nil {
		return nil, err
	}
	if d.VirtualAlias, err = list("virtual_alias_domains", false); err != nil {
		return nil, err
	}
	if d.VirtualMailbox, err = list("virtual_mailbox_domains", false); err != nil {
		return nil, err
	}
	if d.Relay, err = list("relay_domains", true); err != nil {
		return nil, err
	}
	if d.Interfaces, err = listenAddrs(m); err != nil {
		return nil, err
	}
	if d.ResolveNumeric, err = m.Bool("resolve_numeric_domain"); err != nil {
		return nil, err
	}
	return &d, nil
}

// listenAddrs are the addresses whose literals ("user@[192.0.2.1]")
// are local to trivial-rewrite's resolve_local(): ownAddresses
// (inet_interfaces, "all" being every interface address, and
// proxy_interfaces) of the families inet_protocols enables.
func listenAddrs(m *postfixconf.Main) ([]netip.Addr, error) {
	ips, err := ownAddresses(m)
	if err != nil {
		return nil, err
	}
	v4, v6, err := inetProtocols(m)
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, ip := range ips {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			continue
		}
		if a = a.Unmap(); a.Is4() && v4 || a.Is6() && v6 {
			out = append(out, a)
		}
	}
	return out, nil
}

// myNetworks returns mynetworks, or the networks mynetworks_style names
// when mynetworks is not set, as prefixes.
func myNetworks(m *postfixconf.Main) ([]netip.Prefix, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("mynetworks_style: list interfaces: %w", err)
	}
	elems, err := m.Mynetworks(addrs)
	if err != nil {
		return nil, err
	}
	var out []netip.Prefix
	for _, e := range elems {
		p, err := parseNetwork(e)
		if err != nil {
			return nil, fmt.Errorf("%s: mynetworks: %w", m.Pos("mynetworks"), err)
		}
		out = append(out, p)
	}
	return out, nil
}

// parseNetwork reads a mynetworks element: "10.0.0.0/8", "1.2.3.4",
// "[::1]/128", "[2001:db8::]/48", "!…" is not supported.
func parseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	bits := -1
	if i := strings.LastIndexByte(s, '/'); i >= 0 && !strings.HasSuffix(s[:i], ":") {
		n, err := strconv.Atoi(s[i+1:])
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad network %q", s)
		}
		bits, s = n, s[:i]
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad network %q: want address/bits, IPv6 in brackets", s)
	}
	if ip.Is4In6() && bits >= 96 {
		ip, bits = ip.Unmap(), bits-96
	}
	if bits < 0 {
		bits = ip.BitLen()
	}
	if bits > ip.BitLen() {
		return netip.Prefix{}, fmt.Errorf("bad network %q: /%d is too long", s, bits)
	}
	return netip.PrefixFrom(ip, bits).Masked(), nil
}

// tlsServerConfig loads the certificate and key files; nil when none is
// configured.
func tlsServerConfig(certFile, keyFile, protocols string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	if keyFile == "" {
		keyFile = certFile // Postfix allows the key in the certificate file
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if protocols != "" {
		minVer, err := minTLSVersion(protocols)
		if err != nil {
			return nil, err
		}
		cfg.MinVersion = minVer
	}
	return cfg, nil
}

// minTLSVersion reads a Postfix protocol list ("!SSLv2, !SSLv3",
// ">=TLSv1.2", "TLSv1.2 TLSv1.3") or a Dovecot ssl_min_protocol value and
// returns the lowest version it allows, never below TLS 1.0.
func minTLSVersion(spec string) (uint16, error) {
	versions := map[string]uint16{"TLSv1": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}
	lowest := uint16(tls.VersionTLS10)
	excluded := map[uint16]bool{}
	var listed []uint16
	for _, f := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ' ' || r == ':' || r == '\t' }) {
		switch {
		case strings.HasPrefix(f, ">="):
			v, ok := versions[f[2:]]
			if !ok {
				return 0, fmt.Errorf("TLS protocols %q: unknown version %q", spec, f[2:])
			}
			lowest = v
		case strings.HasPrefix(f, "!"):
			if v, ok := versions[f[1:]]; ok {
				excluded[v] = true
			} else if f[1:] != "SSLv2" && f[1:] != "SSLv3" {
				return 0, fmt.Errorf("TLS protocols %q: unknown version %q", spec, f[1:])
			}
		case f == "SSLv2" || f == "SSLv3":
		default:
			v, ok := versions[f]
			if !ok {
				return 0, fmt.Errorf("TLS protocols %q: unknown version %q", spec, f)
			}
			listed = append(listed, v)
		}
	}
	if len(listed) > 0 {
		lowest = tls.VersionTLS13
		for _, v := range listed {
			if v < lowest {
				lowest = v
			}
		}
	}
	for excluded[lowest] && lowest < tls.VersionTLS13 {
		lowest++
	}
	return lowest, nil
}

// inetProtocols reads inet_protocols: which of IPv4 and IPv6 are on.
func inetProtocols(m *postfixconf.Main) (v4, v6 bool, err error) {
	for _, p := range m.List("inet_protocols") {
		switch p {
		case "ipv4":
			v4 = true
		case "ipv6":
			v6 = true
		case "all":
			v4, v6 = true, true
		default:
			return false, false, fmt.Errorf("%s: inet_protocols: unknown protocol %q (want all, ipv4, ipv6)", m.Pos("inet_protocols"), p)
		}
	}
	return v4, v6, nil
}

// inetEndpoints returns where an inet service of master.cf listens:
// its own host, or every inet_interfaces address, for inet_protocols.
func inetEndpoints(m *postfixconf.Main, svc *postfixconf.Service) ([]Endpoint, error) {
	port := strconv.Itoa(svc.Port)
	v4, v6, err := inetProtocols(m)
	if err != nil {
		return nil, err
	}
	if svc.Host != "" {
		return []Endpoint{{Network: "tcp", Address: net.JoinHostPort(strings.Trim(svc.Host, "[]"), port)}}, nil
	}
	ifaces, err := m.InetInterfaces()
	if err != nil {
		return nil, err
	}
	var eps []Endpoint
	for _, iface := range ifaces {
		switch iface {
		case "all":
			switch {
			case v4 && v6:
				eps = append(eps, Endpoint{Network: "tcp", Address: ":" + port})
			case v4:
				eps = append(eps, Endpoint{Network: "tcp4", Address: "0.0.0.0:" + port})
			case v6:
				eps = append(eps, Endpoint{Network: "tcp6", Address: "[::]:" + port})
			}
		case "loopback-only", "localhost":
			if v4 {
				eps = append(eps, Endpoint{Network: "tcp4", Address: "127.0.0.1:" + port})
			}
			if v6 && hasIPv6Loopback() {
				eps = append(eps, Endpoint{Network: "tcp6", Address: "[::1]:" + port})
			}
		default:
			eps = append(eps, Endpoint{Network: "tcp", Address: net.JoinHostPort(strings.Trim(iface, "[]"), port)})
		}
	}
	return eps, nil
}

func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// queueDir is where postcote keeps its queue: a folder of its own inside
// Postfix's queue_directory, so a real Postfix spool beside it is never
// touched.
func queueDir(m *postfixconf.Main) string {
	return filepath.Join(m.Get("queue_directory"), "postcote")
}

// smtpdOptions reads one smtpd service's settings from its view of
// main.cf (with the service's -o overrides applied).
func smtpdOptions(v *postfixconf.Main, svc *postfixconf.Service) (smtpd.Options, error) {
	var o smtpd.Options
	var errs []error
	boolean := func(name string) bool {
		b, err := v.Bool(name)
		if err != nil {
			errs = append(errs, err)
		}
		return b
	}
	integer := func(name string) int {
		n, err := v.Int(name)
		if err != nil {
			errs = append(errs, err)
		}
		return n
	}
	o.Hostname = v.Get("myhostname")
	o.Banner = v.Get("smtpd_banner")
	o.ServiceName = serviceName(v, svc)
	tlsCfg, err := tlsServerConfig(v.Get("smtpd_tls_cert_file"), v.Get("smtpd_tls_key_file"), v.Get("smtpd_tls_protocols"))
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", v.Pos("smtpd_tls_cert_file"), err))
	}
	o.TLS = tlsCfg
	// smtpd_tls_security_level, or the older smtpd_use_tls/smtpd_enforce_tls.
	o.TLSLevel = v.SMTPDTLSLevel()
	if o.TLS == nil && o.TLSLevel != smtpd.TLSNone {
		errs = append(errs, fmt.Errorf("%s: smtpd_tls_security_level = %s needs smtpd_tls_cert_file and smtpd_tls_key_file", v.Pos("smtpd_tls_security_level"), o.TLSLevel))
	}
	o.WrapperMode = boolean("smtpd_tls_wrappermode")
	o.ReceivedHeaderTLS = boolean("smtpd_tls_received_header")
	o.SASLEnable = boolean("smtpd_sasl_auth_enable")
	// Secure by default (DESIGN.md): AUTH only over TLS unless main.cf
	// says smtpd_tls_auth_only = no explicitly; without any TLS the
	// setting cannot apply.
	o.TLSAuthOnly = o.TLS != nil && (!v.IsSet("smtpd_tls_auth_only") || boolean("smtpd_tls_auth_only"))
	o.BrokenSASLAuthClients = boolean("broken_sasl_auth_clients")
	o.SASLAuthenticatedHeader = boolean("smtpd_sasl_authenticated_header")
	size, err := v.Size("message_size_limit")
	if err != nil {
		errs = append(errs, err)
	}
	o.MessageSizeLimit = size
	if size == 0 {
		o.MessageSizeLimit = -1 // Postfix: 0 means no limit
	}
	o.RecipientLimit = integer("smtpd_recipient_limit")
	o.MaxLineLength = integer("line_length_limit")
	if d, err := v.Duration("smtpd_timeout"); err == nil {
		o.Timeouts.Command = d
	} else {
		errs = append(errs, err)
	}
	o.HardErrorLimit = integer("smtpd_hard_error_limit")
	o.SoftErrorLimit = integer("smtpd_soft_error_limit")
	if d, err := v.Duration("smtpd_error_sleep_time"); err == nil {
		o.ErrorSleepTime = d
		if d == 0 {
			o.ErrorSleepTime = -1
		}
	} else {
		errs = append(errs, err)
	}
	o.HeloRequired = boolean("smtpd_helo_required")
	o.DisableVRFY = boolean("disable_vrfy_command")
	nets, err := myNetworks(v)
	if err != nil {
		errs = append(errs, err)
	}
	o.MyNetworks = nets
	restrictions := func(name string) []string {
		if !v.IsSet(name) {
			return nil
		}
		return append([]string{}, v.List(name)...)
	}
	o.ClientRestrictions = restrictions("smtpd_client_restrictions")
	o.HeloRestrictions = restrictions("smtpd_helo_restrictions")
	o.SenderRestrictions = restrictions("smtpd_sender_restrictions")
	o.RelayRestrictions = restrictions("smtpd_relay_restrictions")
	if o.RelayRestrictions == nil {
		o.RelayRestrictions = append([]string{}, v.List("smtpd_relay_restrictions")...)
	}
	o.RecipientRestrictions = restrictions("smtpd_recipient_restrictions")
	o.DataRestrictions = restrictions("smtpd_data_restrictions")
	o.EndOfDataRestrictions = restrictions("smtpd_end_of_data_restrictions")
	o.NoDelayReject = !boolean("smtpd_delay_reject")
	o.KeepUnlistedRecipients = !boolean("smtpd_reject_unlisted_recipient")
	// The DNS of the client name lookup and the DNS-based restrictions,
	// with their reply codes and tempfail actions.
	o.NoPeernameLookup = !boolean("smtpd_peername_lookup")
	if o.Resolver, err = smtpdResolver(); err != nil {
		errs = append(errs, err)
	}
	o.UnknownAddressRejectCode = integer("unknown_address_reject_code")
	o.UnknownHostnameRejectCode = integer("unknown_hostname_reject_code")
	o.UnknownClientRejectCode = integer("unknown_client_reject_code")
	o.MapsRBLRejectCode = integer("maps_rbl_reject_code")
	o.MultiRecipientBounceRejectCode = integer("multi_recipient_bounce_reject_code")
	o.UnknownAddressTempfailAction = v.Get("unknown_address_tempfail_action")
	o.UnknownHeloHostnameTempfailAction = v.Get("unknown_helo_hostname_tempfail_action")
	// Not expanded now: its $rbl_* names are filled in per rejection.
	o.DefaultRBLReply = v.RawValue("default_rbl_reply")
	o.RBLReplyMaps = v.List("rbl_reply_maps")
	o.SASLSecurityOptions = v.List("smtpd_sasl_security_options")
	o.SASLTLSSecurityOptions = v.List("smtpd_sasl_tls_security_options")
	o.TLSLogLevel = integer("smtpd_tls_loglevel")

	// Client limits (anvil). Postfix's 0 means "no limit".
	o.ClientConnectionCountLimit = integer("smtpd_client_connection_count_limit")
	if o.ClientConnectionCountLimit == 0 {
		o.ClientConnectionCountLimit = -1
	}
	o.ClientConnectionRateLimit = integer("smtpd_client_connection_rate_limit")
	o.ClientMessageRateLimit = integer("smtpd_client_message_rate_limit")
	o.ClientRecipientRateLimit = integer("smtpd_client_recipient_rate_limit")
	if d, err := v.Duration("anvil_rate_time_unit"); err == nil {
		o.RateTimeUnit = d
	} else {
		errs = append(errs, err)
	}
	if v.IsSet("smtpd_client_event_limit_exceptions") {
		exc, err := v.ListWithFiles("smtpd_client_event_limit_exceptions")
		if err != nil {
			errs = append(errs, err)
		}
		o.ClientEventLimitExceptions = []netip.Prefix{}
		for _, e := range exc {
			p, err := parseNetwork(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: smtpd_client_event_limit_exceptions: %w", v.Pos("smtpd_client_event_limit_exceptions"), err))
				continue
			}
			o.ClientEventLimitExceptions = append(o.ClientEventLimitExceptions, p)
		}
	}
	o.MaxConnections = svc.MaxProc
	if o.MaxConnections < 0 {
		o.MaxConnections = integer("default_process_limit")
	}
	if len(errs) > 0 {
		return o, joinErrors(errs)
	}
	return o, nil
}

// serviceName is the service's name for logs: syslog_name's part after
// "postfix/" when set (submission, submissions), else the master.cf name.
func serviceName(v *postfixconf.Main, svc *postfixconf.Service) string {
	if name := v.Get("syslog_name"); v.Overridden("syslog_name") {
		if _, after, ok := strings.Cut(name, "/"); ok && after != "" {
			return after
		}
	}
	name := svc.Name
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	switch name {
	case "submission", "587":
		return "submission"
	case "submissions", "smtps", "465":
		return "submissions"
	}
	// Postfix logs every other smtpd as postfix/smtpd.
	return "smtp"
}

func joinErrors(errs []error) error {
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return fmt.Errorf("%s", b.String())
}
