package dnsx

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// Resolver is the DNS postcote asks. *net.Resolver satisfies it; tests
// use a StaticResolver so that nothing resolves names off this machine.
type Resolver interface {
	LookupMX(ctx context.Context, name string) ([]*net.MX, error)
	LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error)
	// LookupAddr returns the PTR names of an address (with trailing dot).
	LookupAddr(ctx context.Context, addr string) ([]string, error)
	LookupTXT(ctx context.Context, name string) ([]string, error)
}

// DefaultTimeout bounds one query when WithTimeout is given zero.
const DefaultTimeout = 10 * time.Second

// System is the host's resolver (/etc/resolv.conf) with every query
// bounded by timeout (DefaultTimeout when zero).
func System(timeout time.Duration) Resolver {
	return WithTimeout(net.DefaultResolver, timeout)
}

// WithTimeout wraps r so that every query gives up after timeout
// (DefaultTimeout when zero); a query cut short is a temporary failure.
func WithTimeout(r Resolver, timeout time.Duration) Resolver {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if t, ok := r.(timeoutResolver); ok {
		r = t.r
	}
	return timeoutResolver{r: r, d: timeout}
}

type timeoutResolver struct {
	r Resolver
	d time.Duration
}

func (t timeoutResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	mx, err := t.r.LookupMX(ctx, name)
	return mx, timedOut(ctx, name, err)
}

func (t timeoutResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	ips, err := t.r.LookupIPAddr(ctx, host)
	return ips, timedOut(ctx, host, err)
}

func (t timeoutResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	names, err := t.r.LookupAddr(ctx, addr)
	return names, timedOut(ctx, addr, err)
}

func (t timeoutResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	txt, err := t.r.LookupTXT(ctx, name)
	return txt, timedOut(ctx, name, err)
}

// timedOut turns a bare context error into the DNSError a timed-out
// query gives, so that IsTemporary sees it.
func timedOut(ctx context.Context, name string, err error) error {
	if err == nil {
		return nil
	}
	var de *net.DNSError
	if !errors.As(err, &de) && ctx.Err() != nil {
		return &net.DNSError{Err: "i/o timeout", Name: name, IsTimeout: true, IsTemporary: true}
	}
	return err
}

// IsNotFound says whether err means the name or the record does not
// exist (NXDOMAIN or NODATA): a definite answer.
func IsNotFound(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound
}

// IsTemporary says whether err is a failure to get an answer (SERVFAIL,
// timeout, unreachable server): anything but nil and IsNotFound.
func IsTemporary(err error) bool {
	return err != nil && !IsNotFound(err)
}

// NotFound is the error for a name (or record) that does not exist.
func NotFound(name string) error {
	return &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

// ServFail is the error for a name server that failed to answer.
func ServFail(name string) error {
	return &net.DNSError{Err: "server misbehaving", Name: name, IsTemporary: true}
}

// Reverse is an address in the order DNS lists and PTR records use:
// "4.3.2.1" for 1.2.3.4, and 32 dot-separated nibbles, least significant
// first, for an IPv6 address (RFC 3596 2.5). An IPv4-mapped IPv6 address
// is reversed as IPv4.
func Reverse(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.%d", b[3], b[2], b[1], b[0])
	}
	b := a.As16()
	var sb strings.Builder
	const hex = "0123456789abcdef"
	for i := len(b) - 1; i >= 0; i-- {
		if i != len(b)-1 {
			sb.WriteByte('.')
		}
		sb.WriteByte(hex[b[i]&0xf])
		sb.WriteByte('.')
		sb.WriteByte(hex[b[i]>>4])
	}
	return sb.String()
}
