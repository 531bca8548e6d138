package userdb

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/sasl"
)

// scramUsers holds one user per way a stored password can (or cannot)
// serve SCRAM. The {SCRAM-*} and {SHA512-CRYPT} values were made by
// Dovecot 2.3.19's "doveadm pw -s SCHEME -p pencil".
const scramUsers = `sha256@example.jp:{SCRAM-SHA-256}4096,Yhkh+hjEMgk24YZsYy3P5g==,9ldF5DUpMvnCjZZt3X00hnDJHdcR6MNUjtEd1MBmfxQ=,hlEmTdadupvtOnkeU6KkgQjnYuSOMLErj+MyWheasJw=
sha1@example.jp:{SCRAM-SHA-1}4096,ise0OvTcluwt90eaI6GQ7A==,GK9Zo+2S7/7Lg1dcNjJ3USOTSy8=,MnZ5Tkfq9eK9xxlXcb2kV2rBBpw=
plain@example.jp:{PLAIN}pencil
b64@example.jp:{PLAIN.b64}cGVuY2ls
crypt@example.jp:{SHA512-CRYPT}$6$rgDQAwwO.CrIifXN$S7wcGYmxwIl3relsp9uNjp5ZMUow9jctid.czYK0hWMMvsaANk9bYh4zWV9fzGa1VUZpY8ZNEXR265zWplC7Q/
closed@example.jp:{PLAIN}pencil:::::: nologin reason=Moved
renamed@example.jp:{PLAIN}pencil:::::: user=canonical@example.jp
broken@example.jp:{SCRAM-SHA-256}4096,!!,x,y
`

func scramChecker(t *testing.T, users string) (*Checker, *fakeClock) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, users)
	opts, _ := testOptions(t)
	p, err := NewPassDB("passwd-file", "scheme=CRYPT username_format=%u "+path, opts)
	if err != nil {
		t.Fatal(err)
	}
	c, clock, _ := testChecker(t, []PassDB{p}, nil)
	return c, clock
}

// scramLogin runs a whole SCRAM exchange between sasl's client and server
// over c.
func scramLogin(c sasl.PasswordChecker, req sasl.Request, mech, user, pw string) (string, error) {
	srv := sasl.NewServer(mech, c, req)
	cl, err := sasl.NewSCRAMClient(mech, user, pw, "")
	if err != nil {
		return "", err
	}
	_, resp, err := cl.Start()
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	for {
		chal, done, err := srv.Next(ctx, resp)
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

func TestLookupSCRAM(t *testing.T) {
	c, _ := scramChecker(t, scramUsers)
	tests := []struct {
		mech, user, pw, want string
		err                  error
	}{
		{"SCRAM-SHA-256", "sha256@example.jp", "pencil", "sha256@example.jp", nil},
		{"SCRAM-SHA-256", "sha256@example.jp", "pencil2", "", sasl.ErrAuthFailed},
		{"SCRAM-SHA-1", "sha1@example.jp", "pencil", "sha1@example.jp", nil},
		{"SCRAM-SHA-1", "sha1@example.jp", "wrong", "", sasl.ErrAuthFailed},
		// A stored SCRAM value serves its own hash only.
		{"SCRAM-SHA-1", "sha256@example.jp", "pencil", "", sasl.ErrAuthFailed},
		{"SCRAM-SHA-256", "sha1@example.jp", "pencil", "", sasl.ErrAuthFailed},
		// A plaintext password serves both.
		{"SCRAM-SHA-256", "plain@example.jp", "pencil", "plain@example.jp", nil},
		{"SCRAM-SHA-1", "plain@example.jp", "pencil", "plain@example.jp", nil},
		{"SCRAM-SHA-256", "b64@example.jp", "pencil", "b64@example.jp", nil},
		{"SCRAM-SHA-256", "plain@example.jp", "Pencil", "", sasl.ErrAuthFailed},
		// A crypt hash cannot, even with the right password.
		{"SCRAM-SHA-256", "crypt@example.jp", "pencil", "", sasl.ErrAuthFailed},
		{"SCRAM-SHA-256", "nobody@example.jp", "pencil", "", sasl.ErrAuthFailed},
		{"SCRAM-SHA-256", "closed@example.jp", "pencil", "", sasl.ErrAuthFailed},
		{"SCRAM-SHA-256", "broken@example.jp", "pencil", "", sasl.ErrAuthFailed},
		{"SCRAM-SHA-256", "renamed@example.jp", "pencil", "canonical@example.jp", nil},
		// auth_username_format %Lu applies as for PLAIN.
		{"SCRAM-SHA-256", "SHA256@Example.JP", "pencil", "sha256@example.jp", nil},
		// auth_username_chars refuses before any lookup.
		{"SCRAM-SHA-256", "a*)(uid=*", "pencil", "", sasl.ErrAuthFailed},
	}
	for _, tt := range tests {
		got, err := scramLogin(c, sreq("", ""), tt.mech, tt.user, tt.pw)
		if got != tt.want || !errors.Is(err, tt.err) || (tt.err == nil && err != nil) {
			t.Errorf("%s %s/%s: %q, %v; want %q, %v", tt.mech, tt.user, tt.pw, got, err, tt.want, tt.err)
		}
	}
	// The PLAIN mechanism still works for every user, the crypt one too.
	for _, u := range []string{"sha256@example.jp", "sha1@example.jp", "plain@example.jp", "crypt@example.jp"} {
		if _, err := c.CheckPassword(context.Background(), sreq(u, "pencil")); err != nil {
			t.Errorf("PLAIN %s: %v", u, err)
		}
	}
}

// TestSCRAMFailureDelay: a password-guessing client over SCRAM slows down
// exactly as over PLAIN, on the same counter.
func TestSCRAMFailureDelay(t *testing.T) {
	c, clock := scramChecker(t, scramUsers)
	c.opts.FailureDelay = 2 * time.Second
	c.opts.MaxFailureDelay = 15 * time.Second
	want := []time.Duration{2, 4, 8, 15, 15}
	for i, w := range want {
		var err error
		if i%2 == 0 {
			_, err = scramLogin(c, sreq("", ""), "SCRAM-SHA-256", "sha256@example.jp", "guess")
		} else {
			_, err = c.CheckPassword(context.Background(), sreq("sha256@example.jp", "guess"))
		}
		if !errors.Is(err, sasl.ErrAuthFailed) {
			t.Fatalf("guess %d: %v", i, err)
		}
		if got := clock.lastSleep(); got != w*time.Second {
			t.Fatalf("guess %d: slept %v, want %v", i+1, got, w*time.Second)
		}
		clock.advance(time.Second)
	}
	// Unknown users and crypt users are delayed too.
	for _, u := range []string{"nobody@example.jp", "crypt@example.jp"} {
		n := len(clock.sleeps)
		scramLogin(c, sreq("", ""), "SCRAM-SHA-256", u, "pencil")
		if len(clock.sleeps) != n+1 {
			t.Errorf("%s: failure not delayed", u)
		}
	}
	// A success clears the user's score.
	if _, err := scramLogin(c, sreq("", ""), "SCRAM-SHA-256", "sha256@example.jp", "pencil"); err != nil {
		t.Fatal(err)
	}
	if got := c.NextFailureDelay("203.0.113.1", "sha256@example.jp"); got != 2*time.Second {
		t.Errorf("user score after success: next delay %v", got)
	}
}

// credsDown is a passdb whose back end is down.
type credsDown struct{}

func (credsDown) Verify(context.Context, Request, string) (PassResult, error) {
	return PassResult{}, errors.New("ldap: connection refused")
}

func (credsDown) LookupCredentials(context.Context, Request) (string, string, PassResult, error) {
	return "", "", PassResult{}, errors.New("ldap: connection refused")
}

func TestLookupSCRAMTempFail(t *testing.T) {
	c, clock, _ := testChecker(t, []PassDB{credsDown{}}, nil)
	_, err := scramLogin(c, sreq("", ""), "SCRAM-SHA-256", "user@example.jp", "pencil")
	if !errors.Is(err, sasl.ErrTempFail) || errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("back end down: %v", err)
	}
	if len(clock.sleeps) != 0 {
		t.Error("temporary failure delayed")
	}
}

// TestSCRAMDoveadm checks credentials that the installed Dovecot's doveadm
// makes now (skipped without doveadm).
func TestSCRAMDoveadm(t *testing.T) {
	doveadm, err := exec.LookPath("doveadm")
	if err != nil {
		t.Skip("doveadm not installed")
	}
	var users strings.Builder
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256"} {
		out, err := exec.Command(doveadm, "pw", "-s", mech, "-p", "tr0ub4dor&3").Output()
		if err != nil {
			t.Skipf("doveadm pw: %v", err)
		}
		users.WriteString(strings.ToLower(mech) + "@example.jp:" + strings.TrimSpace(string(out)) + "\n")
	}
	c, _ := scramChecker(t, users.String())
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256"} {
		u := strings.ToLower(mech) + "@example.jp"
		if got, err := scramLogin(c, sreq("", ""), mech, u, "tr0ub4dor&3"); err != nil || got != u {
			t.Errorf("%s: %q %v", mech, got, err)
		}
		if _, err := scramLogin(c, sreq("", ""), mech, u, "tr0ub4dor&4"); !errors.Is(err, sasl.ErrAuthFailed) {
			t.Errorf("%s wrong password: %v", mech, err)
		}
	}
}

// BenchmarkLookupSCRAM: the server's cost of the credentials lookup for a
// stored {SCRAM-SHA-256} (parse only) and a {PLAIN} password (PBKDF2 with
// 4096 iterations each time).
func BenchmarkLookupSCRAM(b *testing.B) {
	for _, user := range []string{"sha256@example.jp", "plain@example.jp"} {
		b.Run(strings.Split(user, "@")[0], func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "users")
			writeFile(b, path, scramUsers)
			p, err := NewPassDB("passwd-file", "scheme=CRYPT username_format=%u "+path, Options{})
			if err != nil {
				b.Fatal(err)
			}
			co := DefaultCheckerOptions()
			co.FailureDelay = 0
			c := NewChecker([]PassDB{p}, nil, co)
			ctx := context.Background()
			for b.Loop() {
				if _, _, err := c.LookupSCRAM(ctx, sreq(user, ""), "SCRAM-SHA-256"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
