package sasl

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
)

// fakeLookup knows users by password and records the outcomes reported
// to FinishSCRAM. "down" is a back end that cannot answer.
type fakeLookup struct {
	mu        sync.Mutex
	passwords map[string]string
	salt      []byte
	iter      int
	creds     *SCRAMCredentials // when set, returned as is
	finished  []bool
	reqs      []Request
}

func (f *fakeLookup) LookupSCRAM(ctx context.Context, req Request, mech string) (string, SCRAMCredentials, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if req.User == "down" {
		return "", SCRAMCredentials{}, fmt.Errorf("%w: ldap down", ErrTempFail)
	}
	pw, ok := f.passwords[req.User]
	if !ok {
		return "", SCRAMCredentials{}, ErrAuthFailed
	}
	if f.creds != nil {
		return req.User, *f.creds, nil
	}
	iter := f.iter
	if iter == 0 {
		iter = 4096
	}
	c, err := SCRAMKeys(mech, pw, f.salt, iter)
	return strings.ToLower(req.User), c, err
}

func (f *fakeLookup) FinishSCRAM(ctx context.Context, req Request, user string, ok bool) error {
	f.mu.Lock()
	f.finished = append(f.finished, ok)
	f.mu.Unlock()
	if !ok {
		return ErrAuthFailed
	}
	return nil
}

// CheckPassword makes fakeLookup a PasswordChecker, so NewServer takes it.
func (f *fakeLookup) CheckPassword(ctx context.Context, req Request) (string, error) {
	return "", ErrAuthFailed
}

func fixedNonce(s string) func() (string, error) {
	return func() (string, error) { return s, nil }
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSCRAMVectors runs the exchanges of RFC 5802 5 (SCRAM-SHA-1) and RFC
// 7677 3 (SCRAM-SHA-256) through the server, with the RFCs' nonces, and
// the client side against the same transcripts.
func TestSCRAMVectors(t *testing.T) {
	tests := []struct {
		mech, salt, cnonce, snonce, clientFirst, serverFirst, clientFinal, serverFinal string
	}{
		{
			mech: "SCRAM-SHA-1", salt: "QSXCR+Q6sek8bf92",
			cnonce:      "fyko+d2lbbFgONRv9qkxdawL",
			snonce:      "3rfcNHYJY1ZVvWVs7j",
			clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
		{
			mech: "SCRAM-SHA-256", salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
			cnonce:      "rOprNGfwEbeRWgbNEkqO",
			snonce:      "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
	}
	for _, tt := range tests {
		t.Run(tt.mech, func(t *testing.T) {
			lk := &fakeLookup{passwords: map[string]string{"user": "pencil"}, salt: mustB64(t, tt.salt)}
			srv := newSCRAMServer(tt.mech, lk, Request{Service: "imap"}, fixedNonce(tt.snonce))
			ctx := context.Background()
			chal, done, err := srv.Next(ctx, []byte(tt.clientFirst))
			if err != nil || done || string(chal) != tt.serverFirst {
				t.Fatalf("server-first = %q, %v, %v; want %q", chal, done, err, tt.serverFirst)
			}
			chal, done, err = srv.Next(ctx, []byte(tt.clientFinal))
			if err != nil || done || string(chal) != tt.serverFinal {
				t.Fatalf("server-final = %q, %v, %v; want %q", chal, done, err, tt.serverFinal)
			}
			if srv.User() != "" {
				t.Errorf("User() = %q before the exchange ended", srv.User())
			}
			if _, done, err = srv.Next(ctx, []byte{}); err != nil || !done {
				t.Fatalf("end = %v, %v", done, err)
			}
			if srv.User() != "user" || len(lk.finished) != 1 || !lk.finished[0] {
				t.Errorf("user %q, finished %v", srv.User(), lk.finished)
			}

			cl, err := NewSCRAMClient(tt.mech, "user", "pencil", "")
			if err != nil {
				t.Fatal(err)
			}
			cl.nonce = fixedNonce(tt.cnonce)
			mech, ir, err := cl.Start()
			if err != nil || mech != tt.mech || string(ir) != tt.clientFirst {
				t.Fatalf("client-first = %q %q %v", mech, ir, err)
			}
			resp, err := cl.Next([]byte(tt.serverFirst))
			if err != nil || string(resp) != tt.clientFinal {
				t.Fatalf("client-final = %q, %v; want %q", resp, err, tt.clientFinal)
			}
			if resp, err = cl.Next([]byte(tt.serverFinal)); err != nil || len(resp) != 0 {
				t.Fatalf("client after server-final = %q, %v", resp, err)
			}
		})
	}
}

// TestSCRAMClientChecksServer: a server that does not know the
// credentials (wrong signature) or reports an error is refused.
func TestSCRAMClientChecksServer(t *testing.T) {
	for _, final := range []string{"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=", "e=invalid-proof", "x=1", "v=!!"} {
		cl, _ := NewSCRAMClient("SCRAM-SHA-1", "user", "pencil", "")
		cl.nonce = fixedNonce("fyko+d2lbbFgONRv9qkxdawL")
		cl.Start()
		if _, err := cl.Next([]byte("r=fyko+d2lbbFgONRv9qkxdawLXX,s=QSXCR+Q6sek8bf92,i=4096")); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Next([]byte(final)); err == nil {
			t.Errorf("server-final %q accepted for another nonce's exchange", final)
		}
	}
	for _, first := range []string{
		"r=other,s=QSXCR+Q6sek8bf92,i=4096",                          // nonce not extended
		"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=4096",       // not extended at all
		"r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=999999999", // over the cap
		"r=fyko+d2lbbFgONRv9qkxdawLX,s=,i=4096",
		"m=x,r=fyko+d2lbbFgONRv9qkxdawLX,s=QSXCR+Q6sek8bf92,i=4096",
	} {
		cl, _ := NewSCRAMClient("SCRAM-SHA-1", "user", "pencil", "")
		cl.nonce = fixedNonce("fyko+d2lbbFgONRv9qkxdawL")
		cl.Start()
		if _, err := cl.Next([]byte(first)); err == nil {
			t.Errorf("server-first %q accepted", first)
		}
	}
}

// TestSCRAMRoundTrip runs the package's client against its server through
// NewServer, for both mechanisms and names that need escaping.
func TestSCRAMRoundTrip(t *testing.T) {
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256"} {
		for _, user := range []string{"alice", "a,b=c@example.org", "ÅSA"} {
			lk := &fakeLookup{passwords: map[string]string{user: "p,a=ss wörd"}, salt: []byte("0123456789abcdef")}
			srv := NewServer(strings.ToLower(mech), lk, Request{Service: "smtp"})
			if srv == nil {
				t.Fatalf("NewServer(%s) = nil", mech)
			}
			cl, err := NewSCRAMClient(mech, user, "p,a=ss wörd", "")
			if err != nil {
				t.Fatal(err)
			}
			got, err := run(srv, cl)
			if err != nil || got != strings.ToLower(user) {
				t.Errorf("%s %q: user %q, %v", mech, user, got, err)
			}
			if lk.reqs[0].User != user || lk.reqs[0].Service != "smtp" {
				t.Errorf("lookup request %+v", lk.reqs[0])
			}
		}
	}
}

// run drives server and client without an initial response, as a
// protocol does for a client that waits for the empty challenge.
func run(srv Server, cl *SCRAMClient) (string, error) {
	ctx := context.Background()
	chal, done, err := srv.Next(ctx, nil)
	if err != nil || done || len(chal) != 0 {
		return "", fmt.Errorf("first challenge %q %v %v", chal, done, err)
	}
	_, resp, err := cl.Start()
	if err != nil {
		return "", err
	}
	for {
		chal, done, err = srv.Next(ctx, resp)
		if err != nil {
			return "", err
		}
		if done {
			return srv.User(), nil
		}
		if resp, err = cl.Next(chal); err != nil {
			return "", err
		}
	}
}

// TestSCRAMFailures: each bad exchange ends with the right error class and
// e= value, and a wrong proof is reported to FinishSCRAM (so it is
// counted and delayed like a wrong PLAIN password).
func TestSCRAMFailures(t *testing.T) {
	const cnonce = "rOprNGfwEbeRWgbNEkqO"
	const full = cnonce + "SNONCE"
	good := "c=biws,r=" + full + ",p=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name         string
		first, final string
		creds        *SCRAMCredentials
		want         error
		value        string // e= value; "" when not a *SCRAMError
		finished     []bool
	}{
		{name: "wrong proof", first: "n,,n=user,r=" + cnonce, final: good, want: ErrAuthFailed, value: SCRAMInvalidProof, finished: []bool{false}},
		{name: "short proof", first: "n,,n=user,r=" + cnonce, final: "c=biws,r=" + full + ",p=AAAA", want: ErrAuthFailed, value: SCRAMInvalidProof, finished: []bool{false}},
		{name: "unknown user", first: "n,,n=nobody,r=" + cnonce, want: ErrAuthFailed},
		{name: "back end down", first: "n,,n=down,r=" + cnonce, want: ErrTempFail},
		{name: "channel binding required", first: "p=tls-unique,,n=user,r=" + cnonce, want: ErrMalformed, value: SCRAMChannelBindingNotSupported},
		{name: "bad cbind flag", first: "x,,n=user,r=" + cnonce, want: ErrMalformed, value: SCRAMOtherError},
		{name: "mandatory extension", first: "n,,m=ext,n=user,r=" + cnonce, want: ErrMalformed, value: SCRAMExtensionsNotSupported},
		{name: "bad name escape", first: "n,,n=us=er,r=" + cnonce, want: ErrMalformed, value: SCRAMInvalidUsernameEncoding},
		{name: "empty name", first: "n,,n=,r=" + cnonce, want: ErrMalformed, value: SCRAMInvalidUsernameEncoding},
		{name: "name with control", first: "n,,n=us\x01er,r=" + cnonce, want: ErrMalformed, value: SCRAMInvalidUsernameEncoding},
		{name: "NUL", first: "n,,n=us\x00er,r=" + cnonce, want: ErrMalformed, value: SCRAMInvalidEncoding},
		{name: "no nonce", first: "n,,n=user", want: ErrMalformed},
		{name: "nonce not printable", first: "n,,n=user,r=a b", want: ErrMalformed},
		{name: "no gs2 header", first: "n=user,r=" + cnonce, want: ErrMalformed},
		{name: "bad authzid", first: "n,b=x,n=user,r=" + cnonce, want: ErrMalformed},
		{name: "wrong nonce", first: "n,,n=user,r=" + cnonce, final: "c=biws,r=" + cnonce + "OTHER,p=AAAA", want: ErrMalformed},
		{name: "channel binding mismatch", first: "y,,n=user,r=" + cnonce, final: good, want: ErrMalformed, value: SCRAMChannelBindingsDontMatch},
		{name: "no proof", first: "n,,n=user,r=" + cnonce, final: "c=biws,r=" + full, want: ErrMalformed},
		{name: "proof not base64", first: "n,,n=user,r=" + cnonce, final: "c=biws,r=" + full + ",p=!!", want: ErrMalformed, value: SCRAMInvalidEncoding},
		{name: "iterations over cap", first: "n,,n=user,r=" + cnonce, creds: &SCRAMCredentials{Iterations: MaxSCRAMIterations + 1, Salt: []byte("s"), StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}, want: ErrAuthFailed, finished: []bool{false}},
		{name: "keys of the wrong hash", first: "n,,n=user,r=" + cnonce, creds: &SCRAMCredentials{Iterations: 4096, Salt: []byte("s"), StoredKey: make([]byte, 20), ServerKey: make([]byte, 20)}, want: ErrAuthFailed, finished: []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lk := &fakeLookup{passwords: map[string]string{"user": "pencil", "down": ""}, salt: []byte("salt"), creds: tt.creds}
			srv := newSCRAMServer("SCRAM-SHA-256", lk, Request{}, fixedNonce("SNONCE"))
			ctx := context.Background()
			_, done, err := srv.Next(ctx, []byte(tt.first))
			if err == nil {
				if done {
					t.Fatal("done without error after client-first")
				}
				_, done, err = srv.Next(ctx, []byte(tt.final))
			}
			if !done || !errors.Is(err, tt.want) {
				t.Fatalf("done %v, err %v; want %v", done, err, tt.want)
			}
			var se *SCRAMError
			if tt.value != "" && (!errors.As(err, &se) || se.Value != tt.value) {
				t.Errorf("err %v; want e=%s", err, tt.value)
			}
			if fmt.Sprint(lk.finished) != fmt.Sprint(tt.finished) && !(len(lk.finished) == 0 && len(tt.finished) == 0) {
				t.Errorf("FinishSCRAM calls %v; want %v", lk.finished, tt.finished)
			}
			if srv.User() != "" {
				t.Errorf("User() = %q after a failure", srv.User())
			}
			if _, done, err := srv.Next(ctx, []byte{}); !done || err == nil {
				t.Error("a finished exchange accepted more input")
			}
		})
	}
}

// TestSCRAMAuthzID: "a=" is honoured as PLAIN's authzid is.
func TestSCRAMAuthzID(t *testing.T) {
	tests := []struct {
		authzid string
		want    error
	}{
		{"", nil},
		{"alice", nil},
		{"bob", ErrAuthFailed},
	}
	for _, tt := range tests {
		lk := &fakeLookup{passwords: map[string]string{"alice": "pw"}, salt: []byte("salt")}
		cl, _ := NewSCRAMClient("SCRAM-SHA-256", "alice", "pw", tt.authzid)
		_, err := run(NewServer("SCRAM-SHA-256", lk, Request{}), cl)
		if !errors.Is(err, tt.want) {
			t.Errorf("authzid %q: %v; want %v", tt.authzid, err, tt.want)
		}
		if lk.reqs[0].AuthzID != tt.authzid {
			t.Errorf("authzid %q reached the lookup as %q", tt.authzid, lk.reqs[0].AuthzID)
		}
	}
}

// TestSCRAMEndsWithEmptyResponse: the response to server-final must be
// empty (RFC 4422 5).
func TestSCRAMEndsWithEmptyResponse(t *testing.T) {
	lk := &fakeLookup{passwords: map[string]string{"user": "pencil"}, salt: mustB64(t, "W22ZaJ0SNY7soEsUEjb6gQ==")}
	srv := newSCRAMServer("SCRAM-SHA-256", lk, Request{}, fixedNonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"))
	ctx := context.Background()
	srv.Next(ctx, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if _, _, err := srv.Next(ctx, []byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")); err != nil {
		t.Fatal(err)
	}
	if _, done, err := srv.Next(ctx, []byte("x")); !done || !errors.Is(err, ErrMalformed) || srv.User() != "" {
		t.Errorf("non-empty last response: done %v, err %v, user %q", done, err, srv.User())
	}
}

// TestNewServerNeedsLookup: SCRAM needs a checker that can give
// credentials; PLAIN does not.
func TestNewServerNeedsLookup(t *testing.T) {
	var plainOnly PasswordChecker = checkerFunc(func(context.Context, Request) (string, error) { return "", ErrAuthFailed })
	if NewServer("SCRAM-SHA-256", plainOnly, Request{}) != nil {
		t.Error("SCRAM server without a CredentialsLookup")
	}
	if NewServer("PLAIN", plainOnly, Request{}) == nil || NewServer("CRAM-MD5", plainOnly, Request{}) != nil {
		t.Error("NewServer PLAIN/CRAM-MD5")
	}
	for _, m := range Mechanisms {
		if NewServer(m, &fakeLookup{}, Request{}) == nil {
			t.Errorf("Mechanisms lists %s but NewServer does not know it", m)
		}
	}
	if !IsPlaintext("plain") || !IsPlaintext("LOGIN") || IsPlaintext("SCRAM-SHA-256") || IsPlaintext("SCRAM-SHA-1") {
		t.Error("IsPlaintext")
	}
}

type checkerFunc func(context.Context, Request) (string, error)

func (f checkerFunc) CheckPassword(ctx context.Context, r Request) (string, error) { return f(ctx, r) }

// TestSASLprep: the examples of RFC 4013 3 and a few more.
func TestSASLprep(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "I\u00adX", want: "IX"},    // soft hyphen mapped to nothing
		{in: "user", want: "user"},      // no transformation
		{in: "USER", want: "USER"},      // case preserved
		{in: "\u00aa", want: "a"},       // NFKC
		{in: "\u2168", want: "IX"},      // NFKC
		{in: "\u0007", err: true},       // prohibited
		{in: "\u0627\u0031", err: true}, // bidi check
		{in: "a\u00a0b", want: "a b"},   // non-ASCII space
		{in: "\u0627\u0031\u0628", want: "\u0627\u0031\u0628"},
		{in: "a\ue000", err: true}, // private use
		{in: "\xff", err: true},    // not UTF-8
		{in: "", want: ""},
	}
	for _, tt := range tests {
		got, err := SASLprep(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("SASLprep(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
