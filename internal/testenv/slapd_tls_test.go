package testenv

import (
	"crypto/tls"
	"net"
	"testing"
)

// TestTestCAHandshake: a server presenting ServerTLS is accepted by a
// client using ClientTLS for a name or address it was issued for, and
// refused for any other name or by a client trusting another CA.
func TestTestCAHandshake(t *testing.T) {
	ca := NewTestCA(t, "handshake CA")
	other := NewTestCA(t, "other CA")
	server := ca.ServerTLS(t, "mx.example.com", "127.0.0.1")
	tests := []struct {
		name   string
		client *tls.Config
		ok     bool
	}{
		{"dns name", ca.ClientTLS("mx.example.com"), true},
		{"ip address", ca.ClientTLS("127.0.0.1"), true},
		{"wrong name", ca.ClientTLS("other.example.com"), false},
		{"other CA", other.ClientTLS("mx.example.com"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, s := net.Pipe()
			defer c.Close()
			defer s.Close()
			done := make(chan error, 1)
			go func() {
				err := tls.Server(s, server).Handshake()
				s.Close()
				done <- err
			}()
			err := tls.Client(c, tc.client).Handshake()
			c.Close()
			<-done
			if (err == nil) != tc.ok {
				t.Fatalf("handshake error %v, want ok=%v", err, tc.ok)
			}
		})
	}
	if n := len(server.Certificates[0].Certificate); n != 2 {
		t.Errorf("chain has %d certificates, want leaf and CA", n)
	}
}
