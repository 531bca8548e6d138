package authd

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"postcote/internal/sasl"
)

// runRelay drives a relayed mechanism as a protocol server does, with
// a SCRAM client on the other side; it returns the user or the error.
func runRelay(t *testing.T, srv sasl.Server, mech, user, pw string) (string, error) {
	t.Helper()
	cl, err := sasl.NewSCRAMClient(mech, user, pw, "")
	if err != nil {
		t.Fatal(err)
	}
	_, resp, err := cl.Start()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		chal, done, err := srv.Next(ctx, resp)
		if done {
			if err != nil {
				return "", err
			}
			return srv.User(), nil
		}
		if resp, err = cl.Next(chal); err != nil {
			return "", err
		}
	}
	t.Fatal("exchange did not end")
	return "", nil
}

// A client of an auth server relays SCRAM step by step, so a protocol
// server offers it though the credentials stay with the auth server.
func TestRelaySCRAMThroughClient(t *testing.T) {
	cl, err := NewClient(scramAuthServer(t), ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.SASLMechanisms(); !slices.Equal(got, []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-1"}) {
		t.Errorf("SASLMechanisms = %v", got)
	}
	for _, tc := range []struct {
		mech, user, pw string
		ok             bool
	}{
		{"SCRAM-SHA-256", "scram@example.jp", "pencil", true},
		{"SCRAM-SHA-1", "plain@example.jp", "pencil", true},
		{"SCRAM-SHA-256", "scram@example.jp", "wrong", false},
		{"SCRAM-SHA-256", "crypt@example.jp", "pencil", false},
	} {
		srv := sasl.NewServer(tc.mech, cl, sasl.Request{Service: "smtp"})
		if srv == nil {
			t.Fatalf("%s: no relay server", tc.mech)
		}
		user, err := runRelay(t, srv, tc.mech, tc.user, tc.pw)
		if tc.ok && (err != nil || user != tc.user) {
			t.Errorf("%s %s: user %q, err %v", tc.mech, tc.user, user, err)
		}
		if !tc.ok && !errors.Is(err, sasl.ErrAuthFailed) {
			t.Errorf("%s %s with %q: err %v, want an authentication failure", tc.mech, tc.user, tc.pw, err)
		}
	}
	if sasl.NewServer("CRAM-MD5", cl, sasl.Request{}) != nil {
		t.Error("a mechanism sasl cannot judge is relayed")
	}
}

// An exchange the protocol client abandons ends by itself: the relay's
// goroutine is bounded by the client's timeout.
func TestRelayAbandonedEnds(t *testing.T) {
	cl, err := NewClient(scramAuthServer(t), ClientOptions{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	srv := sasl.NewServer("SCRAM-SHA-256", cl, sasl.Request{Service: "smtp"}).(*relayServer)
	c, _ := sasl.NewSCRAMClient("SCRAM-SHA-256", "scram@example.jp", "pencil", "")
	_, ir, _ := c.Start()
	if _, done, err := srv.Next(context.Background(), ir); done || err != nil {
		t.Fatalf("first step: done %v err %v", done, err)
	}
	select {
	case <-srv.done:
	case <-time.After(5 * time.Second):
		t.Fatal("abandoned relay still running")
	}
}

// An auth server that cannot be reached leaves PLAIN and LOGIN offered.
func TestRelayMechanismsServerDown(t *testing.T) {
	cl, err := NewClient("unix:"+t.TempDir()+"/none", ClientOptions{Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if got := cl.SASLMechanisms(); !slices.Equal(got, []string{"PLAIN", "LOGIN"}) {
		t.Errorf("SASLMechanisms = %v", got)
	}
}
