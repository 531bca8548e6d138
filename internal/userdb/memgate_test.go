package userdb

import (
	"sync"
	"testing"
)

// Memory-hard checks wait for a slot of the gate: with one slot, four
// logins at once never hash at the same time; cheap schemes pass freely.
func TestMemoryGateBoundsConcurrentChecks(t *testing.T) {
	stored, err := Generate("ARGON2ID", "secret")
	if err != nil {
		t.Fatal(err)
	}
	lim := DefaultLimits()
	if lim.MemoryHard == nil {
		t.Fatal("DefaultLimits has no memory gate")
	}
	lim.MemoryHard = NewMemoryGate(1)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := VerifyPassword("secret", stored, "", lim); !ok || err != nil {
				t.Errorf("verify: %v %v", ok, err)
			}
		}()
	}
	wg.Wait()
	if p := lim.MemoryHard.Peak(); p != 1 {
		t.Errorf("peak %d memory-hard checks at once, want 1", p)
	}
	if ok, _ := VerifyPassword("secret", "{PLAIN}secret", "", lim); !ok {
		t.Error("PLAIN failed")
	}
	if p := lim.MemoryHard.Peak(); p != 1 {
		t.Errorf("a cheap scheme went through the gate (peak %d)", p)
	}
}

func TestMemoryHardSchemes(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		want      bool
	}{
		{"ARGON2ID", "$argon2id$v=19$m=65536,t=3,p=1$", true},
		{"argon2i", "", true},
		{"CRYPT", "$y$j9T$salt$hash", true},
		{"CRYPT", "$7$CU..../....salt$hash", true},
		{"CRYPT", "$6$salt$hash", false},
		{"CRYPT", "$2y$05$abc", false},
		{"SHA512-CRYPT", "$6$x$y", false},
		{"PLAIN", "$y$", false},
	} {
		if got := memoryHard(tc.name, []byte(tc.raw)); got != tc.want {
			t.Errorf("memoryHard(%s, %q) = %v, want %v", tc.name, tc.raw, got, tc.want)
		}
	}
}
