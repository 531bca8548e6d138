package userdb

import (
	"bufio"
	"crypto/des"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

type hashFixture struct {
	source, password, hash string
}

// loadHashFixtures reads testdata/hashes.tsv, generated once with
// doveadm pw and slappasswd (see the file's header).
func loadHashFixtures(t testing.TB) []hashFixture {
	t.Helper()
	f, err := os.Open("testdata/hashes.tsv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []hashFixture
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) != 3 {
			t.Fatalf("bad fixture line %q", line)
		}
		out = append(out, hashFixture{parts[0], parts[1], parts[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 100 {
		t.Fatalf("only %d fixtures", len(out))
	}
	return out
}

func TestVerifyFixtures(t *testing.T) {
	lim := DefaultLimits()
	seen := map[string]bool{}
	argon2Seen := 0
	for _, fx := range loadHashFixtures(t) {
		name, _ := SplitScheme(fx.hash)
		seen[strings.ToUpper(name)] = true
		wrongs := []string{"", fx.password + "x", strings.ToUpper(fx.password), fx.password[:len(fx.password)-1]}
		if strings.HasPrefix(name, "ARGON2") {
			// Argon2 costs 32-64 MiB and tens of milliseconds per try:
			// every fixture must match, wrong passwords are tried on two.
			argon2Seen++
			switch {
			case argon2Seen > 2 && testing.Short():
				continue
			case argon2Seen > 2:
				wrongs = nil
			default:
				wrongs = wrongs[1:2]
			}
		}
		t.Run(fx.source+"/"+fx.hash, func(t *testing.T) {
			t.Parallel()
			ok, err := VerifyPassword(fx.password, fx.hash, "", lim)
			if err != nil || !ok {
				t.Fatalf("VerifyPassword(%q) = %v, %v; want match", fx.password, ok, err)
			}
			for _, wrong := range wrongs {
				if wrong == fx.password {
					continue
				}
				// bcrypt and DES crypt look only at a prefix of the password.
				if strings.Contains(fx.hash, "$2y$") && len(fx.password) > 72 && strings.HasPrefix(wrong, fx.password[:72]) {
					continue
				}
				if isDES(fx.hash) && len(fx.password) > 8 && strings.HasPrefix(wrong, fx.password[:8]) {
					continue
				}
				ok, err := VerifyPassword(wrong, fx.hash, "", lim)
				if ok {
					t.Errorf("wrong password %q matched (err %v)", wrong, err)
				}
			}
		})
	}
	for _, s := range SchemeNames() {
		if !seen[s] {
			t.Errorf("scheme %s has no fixture", s)
		}
	}
}

func isDES(h string) bool {
	_, data := SplitScheme(h)
	return len(data) == 13 && !strings.HasPrefix(data, "$")
}

// TestVerifyFixturesDefaultScheme checks that the scheme named outside the
// data (passdb scheme=, default_pass_scheme) works as the prefix does.
func TestVerifyFixturesDefaultScheme(t *testing.T) {
	lim := DefaultLimits()
	for _, fx := range loadHashFixtures(t)[:40] {
		name, data := SplitScheme(fx.hash)
		if strings.HasPrefix(data, "{") {
			continue
		}
		ok, err := VerifyPassword(fx.password, data, name, lim)
		if err != nil || !ok {
			t.Errorf("VerifyPassword(%q, %q, %q) = %v, %v", fx.password, data, name, ok, err)
		}
	}
}

func TestVerifyGuideForms(t *testing.T) {
	lim := DefaultLimits()
	tests := []struct {
		name, stored, def string
		wantErr           error
	}{
		// Guide 001's LDAP userPassword; its password is not in the guide,
		// so the form must parse and a guess must fail.
		{"guide 001 SSHA", "{SSHA}ncdXGXXD6zaG76dSCVKVAQLH4vPcHaTa", "", nil},
		{"guide 001 SSHA reader", "{SSHA}GY6RPlSGKI7SPKnnT7i/ktb/3JGmCHLT", "", nil},
		// Guide 003's doveadm pw output in a passwd-file with scheme=CRYPT.
		{"guide 003 CRYPT bcrypt", "{CRYPT}$2y$05$cFavhDQAf/nLMrGgrOehfOuoRLfKeH823iYRXycmbzt6VJIo0fdg2", "CRYPT", nil},
		{"lower-case scheme", "{ssha}ncdXGXXD6zaG76dSCVKVAQLH4vPcHaTa", "", nil},
		{"unknown scheme", "{NOPE}abc", "", ErrUnknownScheme},
		{"unknown default", "abc", "NOPE", ErrUnknownScheme},
		{"bad encoding", "{SHA.XYZ}abc", "", ErrUnknownScheme},
		{"bad base64", "{SHA}!!!!", "", ErrBadHash},
		{"short SSHA", "{SSHA}LeB3Tcf68Sbl821T9mtwbFRX+NE=", "", ErrBadHash},
		{"wrong SHA length", "{SHA}YWJj", "", ErrBadHash},
		{"bad crypt", "{CRYPT}$9$x$y", "", ErrBadHash},
		{"sha512 scheme on md5 data", "{SHA512-CRYPT}$1$abc$def", "", ErrBadHash},
		{"argon2 garbage", "{ARGON2ID}$argon2id$v=19$m=x$a$b", "", ErrBadHash},
		{"argon2 old version", "{ARGON2I}$argon2i$v=16$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "", ErrBadHash},
		{"pbkdf2 garbage", "{PBKDF2}$1$salt$zz$00", "", ErrBadHash},
		{"bcrypt 2x", "{BLF-CRYPT}$2x$05$cFavhDQAf/nLMrGgrOehfOuoRLfKeH823iYRXycmbzt6VJIo0fdg2", "", ErrBadHash},
		{"bcrypt truncated", "{BLF-CRYPT}$2y$05$cFav", "", ErrBadHash},
		{"des bad salt", "{DES-CRYPT}!!RcW8bXnCcYI", "", ErrBadHash},
		{"scram fields", "{SCRAM-SHA-256}4096,abc", "", ErrBadHash},
		{"scram key size", "{SCRAM-SHA-1}4096,g4QMyXa5RBIQD8NVJ+LLDA==,aAw+h4JieB/YbvSyua4jcnQGM1zOFRhiED/vezRzv20=,0xD2TGX7+2moh7Tetbldw8F5K1Y=", "", ErrBadHash},
		{"empty crypt", "", "CRYPT", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword("guess", tt.stored, tt.def, lim)
			if ok {
				t.Fatal("matched")
			}
			if !errors.Is(err, tt.wantErr) && !(tt.wantErr == nil && err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestOverCapFailsFast: hashes asking for more work than the limits allow
// are refused before any hashing.
func TestOverCapFailsFast(t *testing.T) {
	lim := DefaultLimits()
	tests := []struct{ name, stored string }{
		{"bcrypt 31", "{BLF-CRYPT}$2y$31$cFavhDQAf/nLMrGgrOehfOuoRLfKeH823iYRXycmbzt6VJIo0fdg2"},
		{"bcrypt 17 via CRYPT", "{CRYPT}$2y$17$cFavhDQAf/nLMrGgrOehfOuoRLfKeH823iYRXycmbzt6VJIo0fdg2"},
		{"sha512 max rounds", "{SHA512-CRYPT}$6$rounds=999999999$CgIE0YyF2CA/C.Qz$0dggjT9uqW4C2szmS5al7y7vNGWpXqaP2xmgdFBULVory30vQBZGxXeo6AQPTa/k4uDxNebGJ66SmsGd3rlnd0"},
		{"sha256 2M rounds", "{CRYPT}$5$rounds=2000000$CgIE0YyF2CA/C.Qz$0dggjT9uqW4C2szmS5al7y7vNGWpXqaP2xm"},
		{"scram huge", "{SCRAM-SHA-256}99999999,d9jDj2nriEzZ0GbMon1yOA==,9lcWM1hsSReXRK5n2jGlh6YBvtVA/Pc6BFO4iPl/ErA=,aAw+h4JieB/YbvSyua4jcnQGM1zOFRhiED/vezRzv20="},
		{"pbkdf2 huge", "{PBKDF2}$1$QOHyLe1X3G9/WU1K$4000000000$fc2f547194ff8bad25593d1b646956428ebb1fef"},
		{"argon2 4GiB", "{ARGON2ID}$argon2id$v=19$m=4194304,t=3,p=1$piGer0dBka2//tvZPUoS/w$CnQzWxisQBywQOxZwicr0OwlwrcweXos62ZCanNQWcE"},
		{"argon2 t=1000", "{ARGON2ID}$argon2id$v=19$m=65536,t=1000,p=1$piGer0dBka2//tvZPUoS/w$CnQzWxisQBywQOxZwicr0OwlwrcweXos62ZCanNQWcE"},
		{"argon2 p=200", "{ARGON2ID}$argon2id$v=19$m=65536,t=1,p=200$piGer0dBka2//tvZPUoS/w$CnQzWxisQBywQOxZwicr0OwlwrcweXos62ZCanNQWcE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			ok, err := VerifyPassword("Secret pw 1!", tt.stored, "", lim)
			if ok || !errors.Is(err, ErrCostTooHigh) {
				t.Fatalf("got %v, %v; want ErrCostTooHigh", ok, err)
			}
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Fatalf("took %v", d)
			}
		})
	}
	// A long password against many (allowed) SHA-crypt rounds is refused
	// by the workload cap.
	long := strings.Repeat("p", 1000)
	ok, err := VerifyPassword(long, "{SHA512-CRYPT}$6$rounds=1000000$CgIE0YyF2CA/C.Qz$0dggjT9uqW4C2szmS5al7y7vNGWpXqaP2xmgdFBULVory30vQBZGxXeo6AQPTa/k4uDxNebGJ66SmsGd3rlnd0", "", lim)
	if ok || !errors.Is(err, ErrCostTooHigh) {
		t.Fatalf("long password: %v, %v", ok, err)
	}
	// Over MaxPasswordBytes never matches, even for PLAIN.
	if ok, _ := VerifyPassword(strings.Repeat("a", 2000), "{PLAIN}"+strings.Repeat("a", 2000), "", lim); ok {
		t.Fatal("over-long password matched")
	}
}

func TestGenerateRoundTrip(t *testing.T) {
	lim := DefaultLimits()
	for _, name := range append(SchemeNames(), "SHA256.HEX", "SSHA512.B64", "plain-md5.b64") {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pws := []string{"Secret pw 1!", "ü", ""}
			if strings.HasPrefix(name, "ARGON2") {
				pws = pws[:1]
			}
			for _, pw := range pws {
				h, err := Generate(name, pw)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.HasPrefix(h, "{"+strings.ToUpper(name)+"}") {
					t.Fatalf("%q lacks the scheme prefix", h)
				}
				if ok, err := VerifyPassword(pw, h, "", lim); !ok || err != nil {
					t.Fatalf("%q does not verify: %v", h, err)
				}
				if ok, _ := VerifyPassword("!"+pw, h, "", lim); ok {
					t.Fatalf("%q verifies a wrong password", h)
				}
			}
		})
	}
}

// TestGenerateFormat pins what doveadm pw prints for the default scheme
// and the common ones (Dovecot 2.3.19).
func TestGenerateFormat(t *testing.T) {
	tests := []struct {
		scheme string
		rounds int
		prefix string
		length int
	}{
		{"", 0, "{CRYPT}$2y$05$", 7 + 60},
		{"CRYPT", 0, "{CRYPT}$2y$05$", 7 + 60},
		{"BLF-CRYPT", 8, "{BLF-CRYPT}$2y$08$", 11 + 60},
		{"SHA512-CRYPT", 0, "{SHA512-CRYPT}$6$", 14 + 3 + 16 + 1 + 86},
		{"SHA512-CRYPT", 10000, "{SHA512-CRYPT}$6$rounds=10000$", 14 + 3 + 13 + 16 + 1 + 86},
		{"SHA256-CRYPT", 0, "{SHA256-CRYPT}$5$", 14 + 3 + 16 + 1 + 43},
		{"MD5-CRYPT", 0, "{MD5-CRYPT}$1$", 11 + 3 + 8 + 1 + 22},
		{"SSHA", 0, "{SSHA}", 6 + 32},
		{"SSHA512", 0, "{SSHA512}", 9 + 92},
		{"PBKDF2", 0, "{PBKDF2}$1$", 8 + 3 + 16 + 6 + 40},
		{"ARGON2ID", 0, "{ARGON2ID}$argon2id$v=19$m=65536,t=3,p=1$", 10 + 31 + 22 + 1 + 43},
		{"DES-CRYPT", 0, "{DES-CRYPT}", 11 + 13},
		{"PLAIN-MD5", 0, "{PLAIN-MD5}", 11 + 32},
	}
	for _, tt := range tests {
		h, err := GenerateRounds(tt.scheme, "Secret pw 1!", tt.rounds)
		if err != nil {
			t.Fatalf("%s: %v", tt.scheme, err)
		}
		if !strings.HasPrefix(h, tt.prefix) || len(h) != tt.length {
			t.Errorf("%s -r %d: %q (len %d), want prefix %q len %d", tt.scheme, tt.rounds, h, len(h), tt.prefix, tt.length)
		}
	}
	if _, err := Generate("NOPE", "x"); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("unknown scheme: %v", err)
	}
	if _, err := GenerateRounds("BLF-CRYPT", "x", 3); err == nil {
		t.Error("bcrypt cost 3 accepted")
	}
}

// TestDESAgainstStdlib checks the bit-level DES used by DES-CRYPT against
// crypto/des with an unperturbed E table.
func TestDESAgainstStdlib(t *testing.T) {
	keys := [][8]byte{{}, {1, 2, 3, 4, 5, 6, 7, 8}, {0x13, 0x34, 0x57, 0x79, 0x9b, 0xbc, 0xdf, 0xf1}}
	blocks := [][8]byte{{}, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}}
	for _, k := range keys {
		c, err := des.NewCipher(k[:])
		if err != nil {
			t.Fatal(err)
		}
		ks := desSubkeys(k)
		e := desE
		for _, b := range blocks {
			var want [8]byte
			c.Encrypt(want[:], b[:])
			got := desPack(desEncrypt(desUnpack(b), &ks, &e))
			if got != want {
				t.Errorf("key %x block %x: got %x want %x", k, b, got, want)
			}
		}
	}
}

func TestSplitScheme(t *testing.T) {
	tests := []struct{ in, scheme, data string }{
		{"{SHA}abc", "SHA", "abc"},
		{"{SHA.HEX}abc", "SHA.HEX", "abc"},
		{"abc", "", "abc"},
		{"{abc", "", "{abc"},
		{"{}abc", "", "abc"},
		{"$1$salt$hash", "MD5-CRYPT", "$1$salt$hash"},
		{"$1$salt$hash$ignored", "MD5-CRYPT", "$1$salt$hash"},
		{"$6$salt$hash", "", "$6$salt$hash"},
	}
	for _, tt := range tests {
		s, d := SplitScheme(tt.in)
		if s != tt.scheme || d != tt.data {
			t.Errorf("SplitScheme(%q) = %q, %q; want %q, %q", tt.in, s, d, tt.scheme, tt.data)
		}
	}
}

// TestEncodingGuess: without a suffix, fixed-size digests are read as hex
// when the length says so and as base64 otherwise (Dovecot's
// password_decode), in either letter case for hex.
func TestEncodingGuess(t *testing.T) {
	lim := DefaultLimits()
	for _, stored := range []string{
		"{SHA}2de0774dc7faf126e5f36d53f66b706c5457f8d1",
		"{SHA}LeB3Tcf68Sbl821T9mtwbFRX+NE=",
		"{PLAIN-MD5}16fYdSip1JpzEPYP7PDNSQ==",
		"{PLAIN-MD5}d7a7d87528a9d49a7310f60fecf0cd49",
		"{SHA256}E7E0D597D95A4EE303355C0D5275881EFFAD749D95A70532515D6EC69D2FAA90",
		"{sha256.hex}e7e0d597d95a4ee303355c0d5275881effad749d95a70532515d6ec69d2faa90",
	} {
		if ok, err := VerifyPassword("Secret pw 1!", stored, "", lim); !ok || err != nil {
			t.Errorf("%s: %v %v", stored, ok, err)
		}
	}
}

// TestSCRAMCredentials: the parsed parts of doveadm's SCRAM fixtures
// derive from the password as RFC 5802 3 says, ServerKey included.
func TestSCRAMCredentials(t *testing.T) {
	n := 0
	for _, fx := range loadHashFixtures(t) {
		name, data := SplitScheme(fx.hash)
		if !strings.HasPrefix(name, "SCRAM-") {
			continue
		}
		n++
		c, err := ParseSCRAM(name, data)
		if err != nil {
			t.Fatal(err)
		}
		stored, server, err := scramKeys(c.Hash, []byte(fx.password), c.Salt, c.Iterations)
		if err != nil {
			t.Fatal(err)
		}
		if string(stored) != string(c.StoredKey) || string(server) != string(c.ServerKey) {
			t.Errorf("%s: keys differ", fx.hash)
		}
	}
	if n < 6 {
		t.Fatalf("only %d SCRAM fixtures", n)
	}
	if _, err := ParseSCRAM("SCRAM-MD5", "1,a,b,c"); !errors.Is(err, ErrUnknownScheme) {
		t.Errorf("unknown SCRAM: %v", err)
	}
}
