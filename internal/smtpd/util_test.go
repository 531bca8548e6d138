package smtpd

import (
	"context"
	"net"
	"testing"
	"time"
)

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func dialErr(addr string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return c, err
}

// nopConn is a net.Conn whose deadlines do nothing, for fuzzing readers.
type nopConn struct{ net.Conn }

func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }

func TestMatch(t *testing.T) {
	for _, tt := range []struct {
		pattern, s string
		want       bool
	}{
		{"250 Ok", "250 Ok", true},
		{"250 Ok", "250 Ok!", false},
		{"250 *", "250 2.1.0 Ok", true},
		{"250 *", "550 x", false},
		{"*AUTH*", "250-AUTH PLAIN", true},
		{"a*b*c", "abc", true},
		{"a*b*c", "acb", false},
		{"a*", "b", false},
	} {
		if got := match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("match(%q, %q) = %v", tt.pattern, tt.s, got)
		}
	}
}
