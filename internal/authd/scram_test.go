package authd

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"

	"postcote/internal/sasl"
	"postcote/internal/sasl/sasltest"
)

// scramAuthServer serves the auth protocol with userdb's Checker over
// sasltest's users and SCRAM configured.
func scramAuthServer(t *testing.T) string {
	t.Helper()
	_, sock := startServer(t, Options{
		Checker:    sasltest.Checker(t, "example.jp"),
		Mechanisms: []string{"plain", "scram-sha-256", "scram-sha-1"},
	})
	return sock
}

// TestSCRAMThroughAuthService logs in with SCRAM through this package's
// client, as postcote's smtpd or a Dovecot login process would: the
// server-final message comes as a CONT whose signature the SCRAM client
// checks, then the OK.
func TestSCRAMThroughAuthService(t *testing.T) {
	sock := scramAuthServer(t)
	cl, err := NewClient(sock, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	mechs, err := cl.Mechanisms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range mechs {
		got = append(got, m.Name+" "+strings.Join(m.Flags, ","))
	}
	if strings.Join(got, "; ") != "PLAIN plaintext; SCRAM-SHA-256 mutual-auth; SCRAM-SHA-1 mutual-auth" {
		t.Errorf("MECH lines: %q", got)
	}
	tests := []struct {
		mech, user, pw, want string
		err                  error
	}{
		{"SCRAM-SHA-256", "scram@example.jp", "pencil", "scram@example.jp", nil},
		{"SCRAM-SHA-256", "plain@example.jp", "pencil", "plain@example.jp", nil},
		{"SCRAM-SHA-1", "plain@example.jp", "pencil", "plain@example.jp", nil},
		{"SCRAM-SHA-256", "scram@example.jp", "wrong", "", sasl.ErrAuthFailed},
		{"SCRAM-SHA-1", "scram@example.jp", "pencil", "", sasl.ErrAuthFailed}, // stored for SHA-256 only
		{"SCRAM-SHA-256", "crypt@example.jp", "pencil", "", sasl.ErrAuthFailed},
	}
	for _, tt := range tests {
		sc, err := sasl.NewSCRAMClient(tt.mech, tt.user, tt.pw, "")
		if err != nil {
			t.Fatal(err)
		}
		_, first, err := sc.Start()
		if err != nil {
			t.Fatal(err)
		}
		user, err := cl.Authenticate(ctx, tt.mech, sasl.Request{Service: "smtp"}, first, sc.Next)
		if user != tt.want || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("%s %s/%s: %q, %v; want %q, %v", tt.mech, tt.user, tt.pw, user, err, tt.want, tt.err)
		}
	}
	// PLAIN still works on the same connection.
	if u, err := cl.CheckPassword(ctx, sasl.Request{Service: "smtp", User: "plain@example.jp", Password: "pencil"}); err != nil || u != "plain@example.jp" {
		t.Errorf("PLAIN: %q %v", u, err)
	}
}

// TestSCRAMAuthProtocolDialog checks the lines on the wire, without an
// initial response as Postfix sends "AUTH SCRAM-SHA-256" alone.
func TestSCRAMAuthProtocolDialog(t *testing.T) {
	sock := scramAuthServer(t)
	c, r := dialHandshake(t, sock)
	sc, _ := sasl.NewSCRAMClient("SCRAM-SHA-256", "scram@example.jp", "pencil", "")
	_, first, _ := sc.Start()
	io.WriteString(c, "AUTH\t7\tSCRAM-SHA-256\tservice=smtp\trip=192.0.2.9\n")
	if l, _ := r.ReadString('\n'); l != "CONT\t7\t\n" {
		t.Fatalf("want an empty challenge, got %q", l)
	}
	io.WriteString(c, "CONT\t7\t"+base64.StdEncoding.EncodeToString(first)+"\n")
	resp, err := sc.Next(readCont(t, r, "7"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "CONT\t7\t"+base64.StdEncoding.EncodeToString(resp)+"\n")
	if resp, err = sc.Next(readCont(t, r, "7")); err != nil || len(resp) != 0 {
		t.Fatalf("server-final: %q %v", resp, err)
	}
	io.WriteString(c, "CONT\t7\t\n")
	if l, _ := r.ReadString('\n'); l != "OK\t7\tuser=scram@example.jp\n" {
		t.Fatalf("got %q", l)
	}
	// A wrong proof ends in a plain FAIL.
	sc, _ = sasl.NewSCRAMClient("SCRAM-SHA-256", "scram@example.jp", "pencil1", "")
	_, first, _ = sc.Start()
	io.WriteString(c, "AUTH\t8\tSCRAM-SHA-256\tservice=smtp\tresp="+base64.StdEncoding.EncodeToString(first)+"\n")
	resp, err = sc.Next(readCont(t, r, "8"))
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "CONT\t8\t"+base64.StdEncoding.EncodeToString(resp)+"\n")
	if l, _ := r.ReadString('\n'); l != "FAIL\t8\n" {
		t.Fatalf("wrong password: got %q", l)
	}
}

// readCont reads "CONT id base64" and decodes it.
func readCont(t *testing.T, r *bufio.Reader, id string) []byte {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	data, ok := strings.CutPrefix(strings.TrimSuffix(l, "\n"), "CONT\t"+id+"\t")
	if !ok {
		t.Fatalf("want CONT %s, got %q", id, l)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSCRAMNeedsCredentialsLookup: SCRAM configured with a checker that
// can only verify passwords is a configuration error, not a silent gap.
func TestSCRAMNeedsCredentialsLookup(t *testing.T) {
	_, err := NewServer(Options{Checker: &fakeChecker{}, Mechanisms: []string{"plain", "scram-sha-256"}})
	if err == nil || !strings.Contains(err.Error(), "SCRAM-SHA-256") {
		t.Errorf("NewServer: %v", err)
	}
}
