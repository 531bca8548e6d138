package sasl

import (
	"context"
	"strings"
	"testing"
)

// FuzzSCRAMClientFirst: any client-first-message parses or fails without
// a panic, and a parsed one splits back into its header and bare part.
func FuzzSCRAMClientFirst(f *testing.F) {
	for _, s := range []string{
		"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
		"y,a=adm=2Cin,n=us=3Der,r=abc,x=ext",
		"p=tls-unique,,n=user,r=abc",
		"n,,m=ext,n=user,r=abc",
		"n,,n=us=er,r=abc",
		",,", "n,", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cf, err := parseClientFirst(msg)
		if err != nil {
			return
		}
		if cf.gs2Header+cf.bare != string(msg) || cf.user == "" || cf.nonce == "" {
			t.Fatalf("parsed %q as %+v", msg, cf)
		}
		// The whole state machine takes it too.
		lk := &fakeLookup{passwords: map[string]string{cf.user: "pw"}, salt: []byte("salt")}
		srv := newSCRAMServer("SCRAM-SHA-1", lk, Request{}, fixedNonce("S"))
		srv.Next(context.Background(), msg)
	})
}

// FuzzSCRAMClientFinal: any client-final-message after a valid first one
// fails or succeeds without a panic, and never succeeds with a wrong
// proof.
func FuzzSCRAMClientFinal(f *testing.F) {
	for _, s := range []string{
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=1,p=AAAA",
		"c=,r=,p=", "p=", ",", "",
	} {
		f.Add([]byte(s))
	}
	const valid = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	salt := []byte{0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81} // W22ZaJ0SNY7soEsUEjb6gQ==
	creds, err := SCRAMKeys("SCRAM-SHA-256", "pencil", salt, 4096)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if _, err := parseClientFinal(msg); err != nil {
			return
		}
		lk := &fakeLookup{passwords: map[string]string{"user": "pencil"}, creds: &creds}
		srv := newSCRAMServer("SCRAM-SHA-256", lk, Request{}, fixedNonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"))
		ctx := context.Background()
		if _, _, err := srv.Next(ctx, []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO")); err != nil {
			t.Fatal(err)
		}
		_, done, err := srv.Next(ctx, msg)
		// Only the RFC's proof (with extensions the RFC allows before
		// it, which the signature covers) can pass.
		if err == nil && (done || !strings.HasSuffix(string(msg), ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=") || string(msg) != valid) {
			t.Fatalf("accepted %q", msg)
		}
	})
}
