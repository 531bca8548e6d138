package sasl

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"
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

// FuzzSASLprep: any input is prepared or refused without a panic, and a
// prepared string is UTF-8 without prohibited characters.
func FuzzSASLprep(f *testing.F) {
	for _, s := range []string{"user", "I\u00adX", "\u2168", "\u0627\u0031\u0628", "a\u00a0b", "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := SASLprep(s)
		if err != nil {
			return
		}
		if !utf8.ValidString(out) {
			t.Fatalf("SASLprep(%q) = %q, not UTF-8", s, out)
		}
		for _, r := range out {
			if prohibited(r) {
				t.Fatalf("SASLprep(%q) = %q holds U+%04X", s, out, r)
			}
		}
	})
}

// FuzzSCRAMClientServerFirst: the client takes any server-first-message
// without a panic, and answers only one that extends its nonce.
func FuzzSCRAMClientServerFirst(f *testing.F) {
	for _, s := range []string{
		"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
		"r=fyko+d2lbbFgONRv9qkxdawL,s=QSXCR+Q6sek8bf92,i=1",
		"m=x,r=a,s=b,i=c", "r=,s=,i=", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		cl, err := NewSCRAMClient("SCRAM-SHA-1", "user", "pencil", "")
		if err != nil {
			t.Fatal(err)
		}
		cl.nonce = fixedNonce("fyko+d2lbbFgONRv9qkxdawL")
		if _, _, err := cl.Start(); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.Next(msg); err == nil && !strings.Contains(string(msg), "r=fyko+d2lbbFgONRv9qkxdawL") {
			t.Fatalf("answered %q", msg)
		}
	})
}
