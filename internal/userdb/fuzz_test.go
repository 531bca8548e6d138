package userdb

import (
	"strings"
	"testing"
)

// FuzzParsePasswdLine: any line parses or fails cleanly, and what parses
// is consistent with the line.
func FuzzParsePasswdLine(f *testing.F) {
	for _, s := range []string{
		"", "#c", ":x", "user", "user:{PLAIN}pw", "u:p:1000:1000:gecos:/home/u:/bin/sh:userdb_mail=maildir:~/M a=b",
		"info@example.jp:{CRYPT}$2y$05$abc::::::", "u:p:vmail:vmail::/h::userdb_mail=sdbox:~/dbox",
		"u:p:1:1::/h:::maildir:~/Mail", "u:abcdefghijklm[13]", "u:x[56]", "u:p:0:0", "u:p:99999999999:1\r",
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, line string, forUserdb bool) {
		e, err := ParsePasswdLine(line, forUserdb, testIDs)
		if err != nil {
			if e != nil {
				t.Fatal("entry and error")
			}
			return
		}
		if e == nil {
			return
		}
		if e.User == "" || strings.Contains(e.User, ":") || !strings.HasPrefix(line, e.User) {
			t.Fatalf("user %q from %q", e.User, line)
		}
		if forUserdb && (e.UID == 0 || e.GID == 0) {
			t.Fatalf("root uid/gid accepted from %q", line)
		}
		if !forUserdb && (e.UID != -1 || e.GID != -1 || e.Home != "") {
			t.Fatalf("passdb parse kept userdb data from %q", line)
		}
	})
}

// FuzzVerifyPassword: no stored value can crash the verifier or make it
// match a password it was not made from; tight limits keep each run fast.
func FuzzVerifyPassword(f *testing.F) {
	for _, s := range []string{
		"{PLAIN}x", "{SSHA}ncdXGXXD6zaG76dSCVKVAQLH4vPcHaTa", "{CRYPT}$2y$05$cFavhDQAf/nLMrGgrOehfOuoRLfKeH823iYRXycmbzt6VJIo0fdg2",
		"{SHA512-CRYPT}$6$rounds=1000$salt$x", "$1$ab$cd", "{MD5}$1$", "{ARGON2ID}$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
		"{PBKDF2}$1$s$1$00", "{SCRAM-SHA-256}1,c2FsdA==,AAAA,AAAA", "{DES-CRYPT}abcdefghijklm", "{SHA.HEX}00", "{PLAIN-MD5.B64}AAAA", "{", "{}", "{X}", "$2y$99$",
		"$y$j75$8bcHCEb1n/K1qAkvLeswt1$ZK9kc91BZG2aBKS9pMtpp9bby5ydd2GCtzP63MvMk62", "$7$C6..../....SodiumChloride$KnaT/KYqe0Wkw8JJxj5dtK/JH3wZT3jEZzX4iCRKXQ0",
	} {
		f.Add("pw", s, "")
		f.Add("", s, "CRYPT")
	}
	lim := Limits{MaxBcryptCost: 6, MaxSHACryptRounds: 5000, MaxPBKDF2Rounds: 5000, MaxArgon2MemoryKiB: 1024,
		MaxArgon2Time: 2, MaxArgon2Threads: 2, MaxPasswordBytes: 256, MaxSHACryptWorkload: 5000 * 400,
		MaxYescryptMemoryKiB: 1024, MaxYescryptTime: 2, MaxYescryptThreads: 2}
	f.Fuzz(func(t *testing.T, plain, stored, def string) {
		ok, err := VerifyPassword(plain, stored, def, lim)
		if ok && err != nil {
			t.Fatal("match with error")
		}
		if ok && plain+"\x01" != plain {
			// A match must not also accept an unrelated password, except
			// for schemes that read a bounded prefix or store plaintext.
			name, _ := SplitScheme(stored)
			if name == "" {
				name = def
			}
			n := strings.ToUpper(name)
			if n == "" || strings.Contains(n, "CRYPT") {
				return
			}
			if again, _ := VerifyPassword(plain+"\x01", stored, def, lim); again {
				t.Fatalf("%q and %q+\\x01 both match %q", plain, plain, stored)
			}
		}
	})
}

// FuzzExpand: expansion never panics and substitutes a user name
// verbatim.
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"%u", "%Lu", "%{user}", "%-1.1n", "%99999999.99999999n", "%{", "%", "%%", "%{userdb:x:y}", "%LUERTMDXu"} {
		f.Add(s, "info@example.jp")
	}
	f.Fuzz(func(t *testing.T, tmpl, user string) {
		_, _ = ExpandCheck(tmpl, Vars{User: user})
		if got := Expand("<%u>", Vars{User: user}); got != "<"+user+">" {
			t.Fatalf("%%u of %q = %q", user, got)
		}
	})
}
