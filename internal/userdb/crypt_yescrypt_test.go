package userdb

import (
	"errors"
	"strings"
	"testing"
)

// Known answers from real tools on Debian 12 (libxcrypt 4.4.33):
// "mkpasswd -m yescrypt [-R cost]" (package whois) and crypt(3) called
// from a C program (gcc gen.c -lcrypt) with a chosen setting, which is
// also what Python's crypt.crypt() calls.
var yescryptVectors = []struct {
	password, hash, tool string
	slow                 bool // about a second: skipped with -short
}{
	{"pass1", "$y$j75$8bcHCEb1n/K1qAkvLeswt1$ZK9kc91BZG2aBKS9pMtpp9bby5ydd2GCtzP63MvMk62", "mkpasswd -R 1", false},
	{"pass3", "$y$j7T$kCzwPSpKaZTW9cAoa92Od.$Dc7pdho.Yt663Ztwe0euE.zbJEQ8Jpk8A1T7A3H8GD1", "mkpasswd -R 3", false},
	{"pass5", "$y$j9T$DICYQwFCqIJKUKuzq5jrl1$5oJT6aTwOfVyAFe4qsSs8rZZTwLXkJm4Sdh8UdPWZH9", "mkpasswd (default cost 5)", false},
	{"pass7", "$y$jBT$qrzEJXeATXF3D25hsVaKg.$V2Ov/7YcKs83I1jU9mGgOyd1K37n0/tOpRhRB0yAwD1", "mkpasswd -R 7", true},
	{"", "$y$j9T$55X40ptBuXNdHWtBRNbiC.$odk65ywHkQ8WNjaejbHCK7rolgG.DuRHrUBPBD9/dKA", "mkpasswd, empty password", false},
	{"correct horse battery staple", "$y$j9T$zloQhdk4RNVpxfVEfWyX00$Pj.SoYvX0Oz27FolNqmuWW0QFXG8rizWYYnKj45ZimC", "mkpasswd", false},
	{"p\xc3\xa4ss:w0rd with spaces", "$y$j9T$zloQhdk4RNVpxfVEfWyX00$OmCAWQw7UuvoaEgOKz..lB4ZHDO9PhKklVvrAHCUr2.", "crypt(3), UTF-8", false},
	{"pleaseletmein", "$y$jD5.7$LdJMENpBABJJ3hIHjB1Bi.$HboGM6qPrsK.StKYGt6KErmUYtioHreJd98oIugoNB6", "crypt(3), yescrypt TESTS-OK vector", true},
	{"test", "$y$j7T/.$saltsalt$0dc/BN2VaHRwbsSg91L1dlA3QPp0loAVo40wXXjZdh3", "crypt(3), t=1", false},
	{"test", "$y$j7T//$saltsalt$M6U7Nnxa3qcJxSPNH4Oy/nZn0i16kqJxOOA0TW6aLS8", "crypt(3), t=2", false},
	{"four threads", "$y$j9T.0$OXJDkS8eVwGDqOrL5HAhV/$3g0vFa24PjQMFE22rWkC/9.KmxotyJWyppzMrKXP0r2", "crypt(3), p=4", false},
	{"pt", "$y$j8T0.0$abcdefghABCDEFGH$DJTb5yXIA5IvHe2P7mYSDoedmNNh4ux83BKn7yhIP50", "crypt(3), p=2 t=3", false},
	{"Secret pw 1!", "$y$jB5$abcdefghijklmnop$/LPUepJOWcxjEwl24rRGd073lQe5KF1NaNQhgu6e4r/", "crypt(3), r=8", false},
	{"x", "$y$j75$$F6x4/3a6JxiQtidq1fi5YpRHXxWElSlk9y0PXcIxPm2", "crypt(3), empty salt", false},
	{"test", "$y$/7.$saltsalt$Zbw0IufhU95VbChs.tO64HO4ESDEsJAMLU97IHhMIb3", "crypt(3), WORM", false},
	{"worm", "$y$/9T$abcdefgh$vY62o2I8ZLnTAoQA5ZtNxB8wsfmddy3IQu8ROGvYHI1", "crypt(3), WORM r=32", false},
	{"test", "$y$.7.$saltsalt$404BJx7TUEQ0aBK8AsxJniOryTMIfA.NNGSjuFCTBoC", "crypt(3), classic scrypt flavor", false},
	{"classic", "$y$.8F$abcdefgh$OXnXvW7wRvlZ7rU0Evpi8y68AHmSzshHr55RKofgoL9", "crypt(3), classic scrypt flavor", false},
	{"secret", "$7$C6..../....SodiumChloride$KnaT/KYqe0Wkw8JJxj5dtK/JH3wZT3jEZzX4iCRKXQ0", "crypt(3), $7$ scrypt", false},
	{"scrypt", "$7$CU..../....abcdefgh$ScU0AFvV7kdzUBYy4Miw9mAQsRgIRvkld9CisDWg0W9", "crypt(3), $7$ scrypt", true},
}

func TestYescryptKnownAnswers(t *testing.T) {
	lim := DefaultLimits()
	for _, v := range yescryptVectors {
		t.Run(v.tool+"/"+v.hash[:8], func(t *testing.T) {
			if v.slow && testing.Short() {
				t.Skip("slow vector")
			}
			ok, err := VerifyPassword(v.password, "{CRYPT}"+v.hash, "", lim)
			if err != nil || !ok {
				got, _ := yescryptCrypt([]byte(v.password), v.hash, lim)
				t.Fatalf("%s: verify = %v, %v\n got  %s\n want %s", v.tool, ok, err, got, v.hash)
			}
			if !strings.HasPrefix(v.hash, "$y$j75$") && !strings.HasPrefix(v.hash, "$y$/7.$") {
				return // the checks below are the same for every cost
			}
			// Unprefixed, in a passdb whose default scheme is CRYPT (shadow).
			if ok, err := VerifyPassword(v.password, v.hash, "CRYPT", lim); !ok || err != nil {
				t.Errorf("unprefixed: %v, %v", ok, err)
			}
			if ok, err := VerifyPassword(v.password+"x", v.hash, "", lim); ok || err != nil {
				t.Errorf("wrong password: %v, %v", ok, err)
			}
		})
	}
}

func TestYescryptRefused(t *testing.T) {
	lim := DefaultLimits()
	tests := []struct {
		name, hash string
		want       error
	}{
		{"gost", "$gy$j9T$zloQhdk4RNVpxfVEfWyX00$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"setting only", "$y$j9T$zloQhdk4RNVpxfVEfWyX00", ErrBadHash},
		{"short hash", "$y$j9T$zloQhdk4RNVpxfVEfWyX00$Ms871YnMF", ErrBadHash},
		{"bad salt char", "$y$j9T$zlo*hdk4RNVpxfVEfWyX00$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"salt high bits", "$y$j9T$abc$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"no params", "$y$$salt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"truncated", "$y$j", ErrBadHash},
		{"flavor unknown", "$y$zzzzzz9T$salt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"other pwxform flavor", "$y$k9T$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"hash upgrade g", "$y$j9T1.$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"ROM", "$y$j9T5.$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"classic with t", "$y$.7./.$saltsalt$404BJx7TUEQ0aBK8AsxJniOryTMIfA.NNGSjuFCTBoC", ErrBadHash},
		{"N too large (cost 10, 512 MiB)", "$y$jET$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrCostTooHigh},
		{"N = 2^64", "$y$j" + yesEnc(64, 1) + "T$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"N = 2^63", "$y$j" + yesEnc(63, 1) + "T$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrCostTooHigh},
		{"r huge", "$y$j9" + yesEnc(1<<29, 1) + "$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrCostTooHigh},
		{"r*p 2^30", "$y$j9" + yesEnc(1<<15, 1) + yesEnc(1, 1) + yesEnc(1<<15, 2) + "$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", ErrBadHash},
		{"t huge", "$y$j7T" + yesEnc(2, 1) + yesEnc(1000, 1) + "$saltsalt$0dc/BN2VaHRwbsSg91L1dlA3QPp0loAVo40wXXjZdh3", ErrCostTooHigh},
		{"p huge", "$y$j7T" + yesEnc(1, 1) + yesEnc(512, 2) + "$saltsalt$0dc/BN2VaHRwbsSg91L1dlA3QPp0loAVo40wXXjZdh3", ErrCostTooHigh},
		{"RW N/p = 1", "$y$j" + yesEnc(1, 1) + "T" + yesEnc(1, 1) + yesEnc(2, 2) + "$saltsalt$0dc/BN2VaHRwbsSg91L1dlA3QPp0loAVo40wXXjZdh3", ErrBadHash},
		{"WORM p huge", "$y$/7T" + yesEnc(1, 1) + yesEnc(100, 2) + "$saltsalt$0dc/BN2VaHRwbsSg91L1dlA3QPp0loAVo40wXXjZdh3", ErrCostTooHigh},
		// Each under the memory cap, but the work multiplies: t=16 at
		// 256 MiB (cost 9), WORM p=16 t=16 at 128 MiB, r so large that
		// B and XY exceed the cap though V alone would not.
		{"t=16 at cost 9", "$y$jDT" + yesEnc(2, 1) + yesEnc(16, 1) + "$saltsalt$0dc/BN2VaHRwbsSg91L1dlA3QPp0loAVo40wXXjZdh3", ErrCostTooHigh},
		{"WORM p=16 t=16", "$y$/CT" + yesEnc(3, 1) + yesEnc(16, 2) + yesEnc(16, 1) + "$saltsalt$0dc/BN2VaHRwbsSg91L1dlA3QPp0loAVo40wXXjZdh3", ErrCostTooHigh},
		{"r with N=2", "$y$/" + yesEnc(1, 1) + yesEnc(1<<20, 1) + yesEnc(1, 1) + yesEnc(16, 2) + "$saltsalt$0dc/BN2VaHRwbsSg91L1dlA3QPp0loAVo40wXXjZdh3", ErrCostTooHigh},
		{"$7$ N 2^40", "$7$cU..../....abcdefgh$ScU0AFvV7kdzUBYy4Miw9mAQsRgIRvkld9CisDWg0W9", ErrCostTooHigh},
		{"$7$ r 0", "$7$CU.........abcdefgh$ScU0AFvV7kdzUBYy4Miw9mAQsRgIRvkld9CisDWg0W9", ErrBadHash},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := VerifyPassword("test", "{CRYPT}"+tt.hash, "", lim)
			if ok || !errors.Is(err, tt.want) {
				t.Fatalf("VerifyPassword(%q) = %v, %v; want %v", tt.hash, ok, err, tt.want)
			}
		})
	}
	// The work cap, not the memory cap, refuses t=16 at cost 9.
	if err := checkYescryptParams(yescryptParams{flags: yesRWDefaults, n: 1 << 16, r: 32, p: 1, t: 16}, lim); err == nil || !strings.Contains(err.Error(), "mixes") {
		t.Errorf("t=16 at cost 9: %v", err)
	}
	// libxcrypt's cost 9 (N=2^16, r=32: 256 MiB) is admitted, cost 10 not.
	if err := checkYescryptParams(yescryptParams{flags: yesRWDefaults, n: 1 << 16, r: 32, p: 1}, lim); err != nil {
		t.Errorf("cost 9: %v", err)
	}
	// A lower configured cap refuses the default cost-5 hash (16 MiB).
	small := lim
	small.MaxYescryptMemoryKiB = 8 * 1024
	if _, err := VerifyPassword("pass5", yescryptVectors[2].hash, "", small); !errors.Is(err, ErrCostTooHigh) {
		t.Errorf("8 MiB cap: %v", err)
	}
	// Zero caps mean the defaults, not "no cap".
	if _, err := VerifyPassword("x", "$y$jET$saltsalt$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", "", Limits{}); !errors.Is(err, ErrCostTooHigh) {
		t.Errorf("zero Limits: %v", err)
	}
	if _, err := VerifyPassword("x", "$gy$j9T$abcd$Ms871YnMF.QKRIdBb83cXPIs2PYV2yWjO79SIAotRx/", "", lim); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("gost: %v", err)
	}
}

// yesEnc is yescrypt's encode64_uint32 (the inverse of decodeYesUint32),
// to build settings with chosen parameters.
func yesEnc(v, min uint32) string {
	v -= min
	var start, end, chars, nbits uint32 = 0, 47, 1, 0
	for {
		count := (end + 1 - start) << nbits
		if v < count {
			break
		}
		start = end + 1
		end = start + (62-end)/2
		v -= count
		chars++
		nbits += 6
	}
	out := []byte{cryptAlphabet[start+(v>>nbits)]}
	for ; chars > 1; chars-- {
		nbits -= 6
		out = append(out, cryptAlphabet[(v>>nbits)&0x3f])
	}
	return string(out)
}

func TestYescryptEncoding(t *testing.T) {
	for _, n := range []uint32{1, 2, 47, 48, 100, 1000, 1 << 20, 1 << 29} {
		got, rest, err := decodeYesUint32(yesEnc(n, 1)+"$", 1)
		if err != nil || got != n || rest != "$" {
			t.Errorf("decodeYesUint32(yesEnc(%d)) = %d %q %v", n, got, rest, err)
		}
	}
	for _, in := range [][]byte{{}, {0}, {1, 2}, {0xff, 0xfe, 0xfd}, []byte("0123456789abcdef0123456789abcdef")} {
		enc := encodeYes64(in)
		got, err := decodeYes64(enc, 64)
		if err != nil || string(got) != string(in) {
			t.Errorf("round trip %x -> %q -> %x, %v", in, enc, got, err)
		}
	}
	for _, tt := range []struct {
		s    string
		min  uint32
		want uint32
	}{{"j", 0, 47}, {"9", 1, 12}, {"T", 1, 32}, {".", 2, 2}, {"0", 1, 3}} {
		got, rest, err := decodeYesUint32(tt.s, tt.min)
		if err != nil || got != tt.want || rest != "" {
			t.Errorf("decodeYesUint32(%q, %d) = %d %q %v", tt.s, tt.min, got, rest, err)
		}
	}
}

// BenchmarkYescryptDefault is one login against a hash at Debian's
// default cost (mkpasswd -m yescrypt: N=4096, r=32, 16 MiB).
func BenchmarkYescryptDefault(b *testing.B) {
	lim := DefaultLimits()
	for b.Loop() {
		if ok, err := VerifyPassword("pass5", yescryptVectors[2].hash, "", lim); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// yescryptCrypt computes the full crypt(3) string for a setting, as
// crypt("password", "$y$...") does.
func yescryptCrypt(plain []byte, setting string, lim Limits) (string, error) {
	h, err := parseYescrypt(setting)
	if err != nil {
		return "", err
	}
	if err := checkYescryptParams(h.params, lim); err != nil {
		return "", err
	}
	return h.prefix + "$" + encodeYes64(yescryptKDF(plain, h.salt, h.params)), nil
}
