package dnsx

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// StaticResolver answers from fixed tables (see the package comment for
// its file format). Keys are lower case without the trailing dot; PTR
// keys are addresses in netip's canonical form ("127.0.0.1", "2001:db8::1").
// The zero value answers "not found" to everything.
type StaticResolver struct {
	MX  map[string][]*net.MX
	IP  map[string][]net.IPAddr
	PTR map[string][]string
	TXT map[string][]string
	// ServFail lists names whose every query fails temporarily; an
	// address (in canonical form) makes its PTR query fail.
	ServFail map[string]bool
}

// Key is how StaticResolver compares names: lower case, no trailing dot.
func Key(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }

// exists says whether the name has any record, for the NODATA wording.
func (r *StaticResolver) exists(k string) bool {
	_, mx := r.MX[k]
	_, ip := r.IP[k]
	_, txt := r.TXT[k]
	return mx || ip || txt
}

// check is what every query does first: a cancelled context or a
// SERVFAIL name fails temporarily.
func (r *StaticResolver) check(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true, IsTemporary: true}
	}
	if r.ServFail[Key(name)] {
		return ServFail(name)
	}
	return nil
}

func (r *StaticResolver) missing(name, what string) error {
	if r.exists(Key(name)) {
		return &net.DNSError{Err: "no " + what + " record", Name: name, IsNotFound: true}
	}
	return NotFound(name)
}

// LookupMX implements Resolver.
func (r *StaticResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	if err := r.check(ctx, name); err != nil {
		return nil, err
	}
	mx := r.MX[Key(name)]
	if len(mx) == 0 {
		return nil, r.missing(name, "MX")
	}
	out := make([]*net.MX, len(mx))
	for i, m := range mx {
		c := *m
		out[i] = &c
	}
	return out, nil
}

// LookupIPAddr implements Resolver.
func (r *StaticResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	if err := r.check(ctx, host); err != nil {
		return nil, err
	}
	ips := r.IP[Key(host)]
	if len(ips) == 0 {
		return nil, r.missing(host, "address")
	}
	return append([]net.IPAddr(nil), ips...), nil
}

// LookupAddr implements Resolver: the PTR names of addr, each with a
// trailing dot as net.Resolver returns them.
func (r *StaticResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return nil, &net.DNSError{Err: "unrecognized address", Name: addr}
	}
	a = a.Unmap()
	if err := r.check(ctx, a.String()); err != nil {
		return nil, err
	}
	names := r.PTR[a.String()]
	if len(names) == 0 {
		return nil, NotFound(Reverse(a) + arpaSuffix(a))
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + "."
	}
	return out, nil
}

func arpaSuffix(a netip.Addr) string {
	if a.Is4() {
		return ".in-addr.arpa"
	}
	return ".ip6.arpa"
}

// LookupTXT implements Resolver.
func (r *StaticResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := r.check(ctx, name); err != nil {
		return nil, err
	}
	txt := r.TXT[Key(name)]
	if len(txt) == 0 {
		return nil, r.missing(name, "TXT")
	}
	return append([]string(nil), txt...), nil
}

// ParseStaticResolver reads the zone-like file of the package comment.
// It exists for tests (and the postcote_testdns build); production uses
// the system resolver.
func ParseStaticResolver(rd io.Reader) (*StaticResolver, error) {
	r := &StaticResolver{MX: map[string][]*net.MX{}, IP: map[string][]net.IPAddr{},
		PTR: map[string][]string{}, TXT: map[string][]string{}, ServFail: map[string]bool{}}
	sc := bufio.NewScanner(rd)
	for n := 1; sc.Scan(); n++ {
		if err := r.parseLine(sc.Text()); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	return r, sc.Err()
}

func (r *StaticResolver) parseLine(text string) error {
	f := strings.Fields(text)
	if len(f) == 0 || strings.HasPrefix(f[0], "#") {
		return nil
	}
	bad := fmt.Errorf("bad record %q", strings.TrimSpace(text))
	if len(f) < 2 {
		return bad
	}
	name, typ := Key(f[0]), strings.ToUpper(f[1])
	if typ == "TXT" {
		// The data is one or more "quoted strings", joined as one
		// record (RFC 1035 3.3.14 character-strings).
		_, rest, _ := strings.Cut(strings.TrimSpace(text), f[0])
		_, rest, _ = strings.Cut(rest, f[1])
		txt, err := parseQuoted(rest)
		if err != nil {
			return fmt.Errorf("%w: %v", bad, err)
		}
		r.TXT[name] = append(r.TXT[name], txt)
		return nil
	}
	line, _, _ := strings.Cut(text, "#")
	f = strings.Fields(line)
	if len(f) < 2 {
		return bad
	}
	switch typ {
	case "SERVFAIL":
		if len(f) != 2 {
			return bad
		}
		if a, err := netip.ParseAddr(f[0]); err == nil {
			name = a.Unmap().String() // an address: its PTR query fails
		}
		r.ServFail[name] = true
	case "MX":
		if len(f) != 4 {
			return bad
		}
		pref, err := strconv.ParseUint(f[2], 10, 16)
		if err != nil {
			return bad
		}
		host := f[3]
		if host != "." {
			host = Key(host)
		}
		r.MX[name] = append(r.MX[name], &net.MX{Host: host, Pref: uint16(pref)})
	case "A", "AAAA":
		if len(f) != 3 {
			return bad
		}
		ip, err := netip.ParseAddr(f[2])
		if err != nil || ip.Zone() != "" || (typ == "A") != ip.Is4() {
			return bad
		}
		r.IP[name] = append(r.IP[name], net.IPAddr{IP: net.IP(ip.AsSlice())})
	case "PTR":
		a, err := netip.ParseAddr(f[0])
		if len(f) != 3 || err != nil || a.Zone() != "" {
			return bad
		}
		k := a.Unmap().String()
		r.PTR[k] = append(r.PTR[k], Key(f[2]))
	default:
		return bad
	}
	return nil
}

// parseQuoted reads one or more "…" strings (with \" and \\ escapes)
// separated by blanks, then an optional # comment, and joins them.
func parseQuoted(s string) (string, error) {
	var out strings.Builder
	s = strings.TrimSpace(s)
	seen := false
	for s != "" && s[0] != '#' {
		if s[0] != '"' {
			return "", fmt.Errorf("TXT data must be quoted")
		}
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			out.WriteByte(s[i])
		}
		if i >= len(s) {
			return "", fmt.Errorf("unterminated quoted string")
		}
		seen = true
		s = strings.TrimSpace(s[i+1:])
	}
	if !seen {
		return "", fmt.Errorf("TXT record without data")
	}
	return out.String(), nil
}
