package postfixconf

import (
	"net"
	"strconv"
	"strings"
)

// Mynetworks returns the trusted client networks: the mynetworks list
// (with /file/name elements read) when it is set, else the networks
// Postfix derives from mynetworks_style and the machine's interface
// addresses (pass net.InterfaceAddrs()):
//
//   - host:   each interface address alone (/32 or /128)
//   - subnet: each interface's subnet
//   - class:  each IPv4 address's class A, B or C network (IPv6 as subnet)
//
// Loopback addresses are always included, as Postfix's interface
// list always has them.
func (m *Main) Mynetworks(addrs []net.Addr) ([]string, error) {
	if strings.TrimSpace(m.Get("mynetworks")) != "" {
		return m.ListWithFiles("mynetworks")
	}
	return DeriveMynetworks(strings.ToLower(strings.TrimSpace(m.Get("mynetworks_style"))), addrs), nil
}

// DeriveMynetworks computes Postfix's default mynetworks for a
// mynetworks_style (host, subnet or class) from interface addresses,
// in Postfix's notation ("127.0.0.0/8", "[::1]/128").
func DeriveMynetworks(style string, addrs []net.Addr) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n *net.IPNet) {
		s := formatNet(n)
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	add(&net.IPNet{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)})
	add(&net.IPNet{IP: net.IPv6loopback, Mask: net.CIDRMask(128, 128)})
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP == nil {
			continue
		}
		ip := ipn.IP
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		bits := len(ip) * 8
		var mask net.IPMask
		switch style {
		case "subnet":
			mask = ipn.Mask
		case "class":
			if len(ip) == net.IPv4len {
				switch {
				case ip[0] < 128:
					mask = net.CIDRMask(8, 32)
				case ip[0] < 192:
					mask = net.CIDRMask(16, 32)
				case ip[0] < 224:
					mask = net.CIDRMask(24, 32)
				default:
					mask = net.CIDRMask(32, 32)
				}
			} else {
				mask = ipn.Mask
			}
		default: // host
			mask = net.CIDRMask(bits, bits)
		}
		if len(mask) != len(ip) {
			mask = net.CIDRMask(bits, bits)
		}
		add(&net.IPNet{IP: ip.Mask(mask), Mask: mask})
	}
	return out
}

// formatNet writes a network the Postfix way: IPv6 in brackets.
func formatNet(n *net.IPNet) string {
	ones, _ := n.Mask.Size()
	if v4 := n.IP.To4(); v4 != nil && len(n.Mask) == net.IPv4len {
		return v4.String() + "/" + strconv.Itoa(ones)
	}
	return "[" + n.IP.String() + "]/" + strconv.Itoa(ones)
}

// SMTPDTLSLevel returns the effective smtpd_tls_security_level: the
// parameter when set, else "encrypt" for the obsolete
// smtpd_enforce_tls = yes, "may" for smtpd_use_tls = yes, else "none".
func (m *Main) SMTPDTLSLevel() string {
	if v := strings.ToLower(strings.TrimSpace(m.Get("smtpd_tls_security_level"))); v != "" {
		return v
	}
	if b, _ := m.Bool("smtpd_enforce_tls"); b {
		return "encrypt"
	}
	if b, _ := m.Bool("smtpd_use_tls"); b {
		return "may"
	}
	return "none"
}

// SMTPTLSLevel returns the effective smtp_tls_security_level of the
// SMTP client, with the obsolete smtp_enforce_tls and smtp_use_tls
// mapped the same way.
func (m *Main) SMTPTLSLevel() string {
	if v := strings.ToLower(strings.TrimSpace(m.Get("smtp_tls_security_level"))); v != "" {
		return v
	}
	if b, _ := m.Bool("smtp_enforce_tls"); b {
		return "encrypt"
	}
	if b, _ := m.Bool("smtp_use_tls"); b {
		return "may"
	}
	return "none"
}

// InetInterfaces returns inet_interfaces normalised for listening:
// "all", "loopback-only", or host names and addresses without IPv6
// brackets. An address written with a host-length prefix
// ("127.0.0.1/32", "[::1]/128", as one deployment guide does) is
// taken as the address; Postfix itself rejects that notation, and Check
// warns about it. Other prefixes are errors.
func (m *Main) InetInterfaces() ([]string, error) {
	var out []string
	for _, el := range m.List("inet_interfaces") {
		host, problem := normalizeInterface(el)
		if problem != "" && host == "" {
			return nil, m.valueError("inet_interfaces", el, "%s", problem)
		}
		out = append(out, host)
	}
	return out, nil
}

// normalizeInterface returns the listening host of one inet_interfaces
// element, and a problem to report ("" when it is clean). A returned
// host with a problem is usable but written the wrong way.
func normalizeInterface(el string) (string, string) {
	switch strings.ToLower(el) {
	case "all", "loopback-only":
		return strings.ToLower(el), ""
	}
	addr, bits, hasPrefix := strings.Cut(el, "/")
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if !hasPrefix {
		return host, ""
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", "a network prefix needs an address; write an address or host name"
	}
	full := 128
	if ip.To4() != nil {
		full = 32
	}
	if bits != strconv.Itoa(full) {
		return "", "inet_interfaces takes addresses, not networks; write the address alone"
	}
	return host, "inet_interfaces takes addresses; Postfix rejects \"" + el + "\", write " + addr
}
