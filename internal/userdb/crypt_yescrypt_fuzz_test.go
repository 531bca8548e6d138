package userdb

import (
	"errors"
	"testing"
)

// FuzzYescrypt: any "$y$"/"$7$" string parses or is refused cleanly, a
// parsed one re-encodes to the same prefix, and verification under tight
// caps neither panics nor allocates beyond them.
func FuzzYescrypt(f *testing.F) {
	for _, s := range []string{
		"$y$j75$8bcHCEb1n/K1qAkvLeswt1$ZK9kc91BZG2aBKS9pMtpp9bby5ydd2GCtzP63MvMk62",
		"$y$/7.$saltsalt$Zbw0IufhU95VbChs.tO64HO4ESDEsJAMLU97IHhMIb3",
		"$y$.7.$saltsalt$404BJx7TUEQ0aBK8AsxJniOryTMIfA.NNGSjuFCTBoC",
		"$7$C6..../....SodiumChloride$KnaT/KYqe0Wkw8JJxj5dtK/JH3wZT3jEZzX4iCRKXQ0",
		"$y$j9T.0$OXJDkS8eVwGDqOrL5HAhV/$3g0vFa24PjQMFE22rWkC/9.KmxotyJWyppzMrKXP0r2",
		"$y$jzzzzzz$", "$y$", "$7$", "$gy$j9T$a$b", "$y$j75$$", "$y$j7T5zzzzzz$salt$",
	} {
		f.Add(s, "pass1")
	}
	lim := Limits{MaxYescryptMemoryKiB: 256, MaxYescryptTime: 2, MaxYescryptThreads: 2}
	f.Fuzz(func(t *testing.T, hash, pw string) {
		h, err := parseYescrypt(hash)
		if err == nil {
			if len(h.prefix) > len(hash) || hash[:len(h.prefix)] != h.prefix {
				t.Fatalf("prefix %q of %q", h.prefix, hash)
			}
			if len(h.salt) > yesMaxSaltSize && hash[1] == 'y' {
				t.Fatalf("salt of %d bytes", len(h.salt))
			}
		}
		ok, err := verifyYescrypt([]byte(pw), []byte(hash), lim)
		if ok && err != nil {
			t.Fatal("match with error")
		}
		if err != nil && !errors.Is(err, ErrBadHash) && !errors.Is(err, ErrCostTooHigh) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
