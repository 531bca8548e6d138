package userdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"postcote/internal/maillog"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/sasl"
)

// fakePassDB answers from a function and records the names it was asked.
type fakePassDB struct {
	mu    sync.Mutex
	asked []string
	fn    func(req Request, pw string) (PassResult, error)
}

func (f *fakePassDB) Verify(_ context.Context, req Request, pw string) (PassResult, error) {
	f.mu.Lock()
	f.asked = append(f.asked, req.User)
	f.mu.Unlock()
	return f.fn(req, pw)
}

type fakeUserDB struct {
	fn func(req Request) (Fields, bool, error)
}

func (f *fakeUserDB) Lookup(_ context.Context, req Request) (Fields, bool, error) { return f.fn(req) }
func (f *fakeUserDB) Iterate(context.Context, func(string) error) error {
	return ErrIterateUnsupported
}

// fakeClock is an injectable clock; sleeps advance it and are recorded.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	return nil
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) lastSleep() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sleeps) == 0 {
		return 0
	}
	return c.sleeps[len(c.sleeps)-1]
}

func testChecker(t *testing.T, passdbs []PassDB, userdbs []UserDB) (*Checker, *fakeClock, *maillog.Buffer) {
	t.Helper()
	opts, buf := testOptions(t)
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	co := DefaultCheckerOptions()
	co.Log = opts.Log
	co.Verbose = true
	co.IDs = testIDs
	co.FailureDelay = 0
	co.Now = clock.Now
	co.Sleep = clock.Sleep
	co.FirstValidUID = 1000
	return NewChecker(passdbs, userdbs, co), clock, buf
}

func sreq(user, pw string) sasl.Request {
	return sasl.Request{
		Service: "imap", User: user, Password: pw,
		Remote: &net.TCPAddr{IP: net.ParseIP("192.0.2.10"), Port: 54321},
		Local:  &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 143},
	}
}

func newFileChecker(t *testing.T) (*Checker, *fakeClock, *maillog.Buffer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, usersFile)
	opts, _ := testOptions(t)
	p, err := NewPassDB("passwd-file", "scheme=CRYPT username_format=%u "+path, opts)
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUserDB("passwd-file", "username_format=%u "+path, "uid=vmail gid=vmail home=/home/vmail/%d/%n mail=sdbox:~/dbox", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	c, clock, buf := testChecker(t, []PassDB{p}, []UserDB{u})
	return c, clock, buf, path
}

func TestCheckPassword(t *testing.T) {
	c, _, logBuf, _ := newFileChecker(t)
	ctx := context.Background()
	tests := []struct {
		user, pw, want string
		wantErr        error
	}{
		{"info@example.jp", "info-pw", "info@example.jp", nil},
		{"Info@Example.JP", "info-pw", "info@example.jp", nil}, // auth_username_format=%Lu
		{"sales@example.jp", "Secret pw 1!", "sales@example.jp", nil},
		{"renamed@example.jp", "pw", "canonical@example.jp", nil},
		{"info@example.jp", "wrong", "", sasl.ErrAuthFailed},
		{"nobody@example.jp", "info-pw", "", sasl.ErrAuthFailed},
		{"closed@example.jp", "pw", "", sasl.ErrAuthFailed},
		{"", "x", "", sasl.ErrAuthFailed},
		{strings.Repeat("a", 300), "x", "", sasl.ErrAuthFailed},
	}
	for _, tt := range tests {
		got, err := c.CheckPassword(ctx, sreq(tt.user, tt.pw))
		if got != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("CheckPassword(%q, %q) = %q, %v; want %q, %v", tt.user, tt.pw, got, err, tt.want, tt.wantErr)
		}
	}
	_, err := c.CheckPassword(ctx, sreq("closed@example.jp", "pw"))
	var refused *LoginRefusedError
	if !errors.As(err, &refused) || refused.Reason != "Moved" {
		t.Errorf("nologin: %v", err)
	}
	log := logBuf.String()
	for _, want := range []string{"passwd-file(info@example.jp,192.0.2.10): password mismatch", "passwd-file(nobody@example.jp,192.0.2.10): unknown user", "login refused by nologin"} {
		if !strings.Contains(log, want) {
			t.Errorf("auth_verbose log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "info-pw") || strings.Contains(log, "Secret pw") || strings.Contains(log, "wrong") {
		t.Errorf("log mentions a password:\n%s", log)
	}
}

func TestCheckPasswordThroughSASL(t *testing.T) {
	c, _, _, _ := newFileChecker(t)
	s := sasl.NewServer("PLAIN", c, sreq("", ""))
	_, done, err := s.Next(context.Background(), []byte("\x00Info@example.jp\x00info-pw"))
	if !done || err != nil || s.User() != "info@example.jp" {
		t.Fatalf("PLAIN: done %v err %v user %q", done, err, s.User())
	}
}

// TestInjectionShapedNames: names with characters outside
// auth_username_chars never reach a database; with the check disabled,
// they still log in as nobody else, and "%" is never expanded again.
func TestInjectionShapedNames(t *testing.T) {
	rec := &fakePassDB{fn: func(req Request, pw string) (PassResult, error) {
		return PassResult{Status: PassOK}, nil
	}}
	c, _, _ := testChecker(t, []PassDB{rec}, nil)
	ctx := context.Background()
	bad := []string{"*", "a*", "(uid=*)", "a)(|(uid=*", "a\\b", "a\x00b", "a'b", "' OR '1'='1", "%u", "a%d", "a:b", "a\nb", "a b", "a/../b"}
	for _, name := range bad {
		if _, err := c.CheckPassword(ctx, sreq(name, "x")); !errors.Is(err, sasl.ErrAuthFailed) {
			t.Errorf("%q: %v", name, err)
		}
		if _, found, err := c.LookupUser(ctx, "lmtp", name); found || err != nil {
			t.Errorf("LookupUser(%q) = %v, %v", name, found, err)
		}
	}
	if len(rec.asked) != 0 {
		t.Errorf("passdb asked about %q", rec.asked)
	}

	// With auth_username_chars empty, the passwd-file still finds only
	// exact names, and "%" in a name stays literal.
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "info@example.jp:{PLAIN}pw\n%u:{PLAIN}percent\n")
	opts, _ := testOptions(t)
	p, err := NewPassDB("passwd-file", "username_format=%u "+path, opts)
	if err != nil {
		t.Fatal(err)
	}
	c2, _, _ := testChecker(t, []PassDB{p}, nil)
	c2.opts.UsernameChars = ""
	for _, name := range []string{"info@example.jp:", "info@example.jp\n", "info@example.jp\x00", "*", "%n@example.jp", "%{user}", "info@example.jp'", "info@example.j%"} {
		if u, err := c2.CheckPassword(ctx, sreq(name, "pw")); err == nil {
			t.Errorf("%q logged in as %q", name, u)
		}
	}
	// The literal "%u" user exists; its name is taken as-is.
	if u, err := c2.CheckPassword(ctx, sreq("%u", "percent")); err != nil || u != "%u" {
		t.Errorf("literal %%u: %q %v", u, err)
	}
	if _, err := c2.CheckPassword(ctx, sreq("%u", "pw")); err == nil {
		t.Error("%u expanded to another user")
	}
}

func TestCheckPasswordTempFail(t *testing.T) {
	down := &fakePassDB{fn: func(Request, string) (PassResult, error) {
		return PassResult{}, errors.New("ldap: connection refused")
	}}
	mismatch := &fakePassDB{fn: func(Request, string) (PassResult, error) {
		return PassResult{Status: PassMismatch, Reason: "password mismatch"}, nil
	}}
	ok := &fakePassDB{fn: func(Request, string) (PassResult, error) {
		return PassResult{Status: PassOK}, nil
	}}
	unknown := &fakePassDB{fn: func(Request, string) (PassResult, error) {
		return PassResult{Status: PassUnknownUser}, nil
	}}
	tests := []struct {
		name    string
		dbs     []PassDB
		wantErr error
	}{
		{"down only", []PassDB{down}, sasl.ErrTempFail},
		{"down then mismatch", []PassDB{down, mismatch}, sasl.ErrTempFail},
		{"mismatch then down", []PassDB{mismatch, down}, sasl.ErrTempFail},
		{"down then ok", []PassDB{down, ok}, nil},
		{"unknown then ok", []PassDB{unknown, ok}, nil},
		{"mismatch then ok", []PassDB{mismatch, ok}, nil},
		{"unknown then mismatch", []PassDB{unknown, mismatch}, sasl.ErrAuthFailed},
		{"none", nil, sasl.ErrAuthFailed},
	}
	for _, tt := range tests {
		c, _, _ := testChecker(t, tt.dbs, nil)
		_, err := c.CheckPassword(context.Background(), sreq("user@x", "pw"))
		if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.wantErr)
		}
		if errors.Is(err, sasl.ErrTempFail) && errors.Is(err, sasl.ErrAuthFailed) {
			t.Errorf("%s: both temp and auth failure", tt.name)
		}
	}
}

func TestAllowNets(t *testing.T) {
	tests := []struct {
		nets, rip string
		ok        bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"10.0.0.0/8, 192.0.2.0/24", "192.0.2.10", true},
		{"10.0.0.0/8,192.0.2.0/24", "198.51.100.1", false},
		{"::1 local", "", true},
		{"::1", "", false},
		{"2001:db8::/32", "2001:db8::5", true},
		{"192.0.2.10", "::ffff:192.0.2.10", true},
	}
	for _, tt := range tests {
		err := checkAllowNets(Fields{{"allow_nets", tt.nets}}, tt.rip)
		if (err == nil) != tt.ok {
			t.Errorf("allow_nets=%s rip=%s: %v", tt.nets, tt.rip, err)
		}
	}
	p := &fakePassDB{fn: func(Request, string) (PassResult, error) {
		return PassResult{Status: PassOK, Fields: Fields{{"allow_nets", "10.0.0.0/8"}}}, nil
	}}
	c, _, _ := testChecker(t, []PassDB{p}, nil)
	if _, err := c.CheckPassword(context.Background(), sreq("u@x", "pw")); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("allow_nets refused login: %v", err)
	}
}

// TestFailureDelayGrowth drives the delay with a fake clock: it doubles
// per recent failure of the IP or user up to the cap, decays with time,
// and a success clears the user's score.
func TestFailureDelayGrowth(t *testing.T) {
	c, clock, _, _ := newFileChecker(t)
	c.opts.FailureDelay = 2 * time.Second
	c.opts.MaxFailureDelay = 15 * time.Second
	ctx := context.Background()
	want := []time.Duration{2, 4, 8, 15, 15, 15}
	for i, w := range want {
		if _, err := c.CheckPassword(ctx, sreq("info@example.jp", "wrong")); !errors.Is(err, sasl.ErrAuthFailed) {
			t.Fatal(err)
		}
		if got := clock.lastSleep(); got != w*time.Second {
			t.Fatalf("failure %d: slept %v, want %v", i+1, got, w*time.Second)
		}
		clock.advance(time.Second)
	}
	// Another user from the same IP still waits: the IP's score counts.
	c.CheckPassword(ctx, sreq("sales@example.jp", "wrong"))
	if got := clock.lastSleep(); got != 15*time.Second {
		t.Errorf("same IP, other user: %v", got)
	}
	// Another IP guessing the same user waits too: the user's score counts.
	r := sreq("info@example.jp", "wrong")
	r.Remote = &net.TCPAddr{IP: net.ParseIP("198.51.100.7"), Port: 1}
	c.CheckPassword(ctx, r)
	if got := clock.lastSleep(); got != 15*time.Second {
		t.Errorf("other IP, same user: %v", got)
	}
	// Scores halve every FailureHalfLife: after a few hours all is forgiven.
	clock.advance(3 * time.Hour)
	if got := c.NextFailureDelay("192.0.2.10", "info@example.jp"); got != 2*time.Second {
		t.Errorf("after decay: %v", got)
	}
	// A success clears the user's score, not the IP's.
	for range 3 {
		c.CheckPassword(ctx, sreq("info@example.jp", "wrong"))
	}
	if _, err := c.CheckPassword(ctx, sreq("info@example.jp", "info-pw")); err != nil {
		t.Fatal(err)
	}
	if got := c.NextFailureDelay("203.0.113.1", "info@example.jp"); got != 2*time.Second {
		t.Errorf("user after success: %v", got)
	}
	if got := c.NextFailureDelay("192.0.2.10", "someone@else"); got != 15*time.Second {
		t.Errorf("IP after success: %v", got)
	}
	// nologin (right password, refused) waits like a wrong password.
	before := len(clock.sleeps)
	c.CheckPassword(ctx, sreq("closed@example.jp", "pw"))
	if len(clock.sleeps) != before+1 {
		t.Error("nologin refusal not delayed")
	}
	// A temporary failure is not delayed.
	n := len(clock.sleeps)
	down := &fakePassDB{fn: func(Request, string) (PassResult, error) { return PassResult{}, errors.New("down") }}
	c.passdbs = []PassDB{down}
	c.CheckPassword(ctx, sreq("info@example.jp", "x"))
	if len(clock.sleeps) != n {
		t.Error("temporary failure was delayed")
	}
}

func TestFailureTrackerBounded(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	f := newFailureTracker(clock.Now, time.Minute, 100)
	for i := range 10000 {
		f.fail(fmt.Sprintf("ip:10.0.%d.%d", i/256, i%256))
		clock.advance(time.Millisecond)
		if f.len() > 100 {
			t.Fatalf("after %d keys: %d tracked", i+1, f.len())
		}
	}
	// The newest keys survive pruning.
	if f.score("ip:10.0.39.15") == 0 {
		t.Error("newest key pruned")
	}
}

func TestNextFailureDelayDisabled(t *testing.T) {
	c, clock, _, _ := newFileChecker(t)
	for range 5 {
		c.CheckPassword(context.Background(), sreq("info@example.jp", "wrong"))
	}
	if len(clock.sleeps) != 0 || c.NextFailureDelay("192.0.2.10", "info@example.jp") != 0 {
		t.Errorf("FailureDelay 0 slept: %v", clock.sleeps)
	}
}

func TestLookupUser(t *testing.T) {
	c, _, _, _ := newFileChecker(t)
	ctx := context.Background()
	info, found, err := c.LookupUser(ctx, "lmtp", "Info@Example.jp")
	if err != nil || !found {
		t.Fatalf("LookupUser: %v %v", found, err)
	}
	if info.Name != "info@example.jp" || info.UID != 5000 || info.GID != 5000 ||
		info.Home != "/home/vmail/example.jp/info" || info.MailLocation != "sdbox:~/dbox" {
		t.Errorf("info = %+v", info)
	}
	if info.Fields.Value("uid") != "5000" {
		t.Errorf("fields = %v", info.Fields)
	}
	info, found, err = c.LookupUser(ctx, "imap", "sales@example.jp")
	if err != nil || !found || info.MailLocation != "maildir:~/Maildir" || info.Fields.Value("quota_rule") != "*:storage=1G" {
		t.Errorf("sales: %+v %v %v", info, found, err)
	}
	if _, found, err := c.LookupUser(ctx, "lmtp", "nobody@example.jp"); found || err != nil {
		t.Errorf("unknown: %v %v", found, err)
	}
	// uid 1001 is fine with first_valid_uid 1000; 1500 as the last is not.
	c.opts.LastValidUID = 1000
	if _, _, err := c.LookupUser(ctx, "lmtp", "crypt@example.jp"); !errors.Is(err, sasl.ErrTempFail) || !strings.Contains(err.Error(), "first_valid_uid") {
		t.Errorf("last_valid_uid: %v", err)
	}
	c.opts.LastValidUID = 0
	c.opts.FirstValidUID = 6000
	if _, _, err := c.LookupUser(ctx, "lmtp", "info@example.jp"); !errors.Is(err, sasl.ErrTempFail) {
		t.Errorf("first_valid_uid: %v", err)
	}

	var users []string
	if err := c.IterateUsers(ctx, func(u string) error { users = append(users, u); return nil }); err != nil || len(users) != 6 {
		t.Errorf("IterateUsers: %v %v", users, err)
	}
}

func TestLookupUserErrors(t *testing.T) {
	down := &fakeUserDB{fn: func(Request) (Fields, bool, error) { return nil, false, errors.New("sql: timeout") }}
	badUID := &fakeUserDB{fn: func(Request) (Fields, bool, error) { return Fields{{"uid", "nosuchuser"}}, true, nil }}
	none := &fakeUserDB{fn: func(Request) (Fields, bool, error) { return nil, false, nil }}
	good := &fakeUserDB{fn: func(r Request) (Fields, bool, error) {
		return Fields{{"uid", "2000"}, {"gid", "vmail"}, {"home", "/h/" + r.User}}, true, nil
	}}
	tests := []struct {
		name    string
		dbs     []UserDB
		found   bool
		wantErr error
	}{
		{"down", []UserDB{down}, false, sasl.ErrTempFail},
		{"down then none", []UserDB{down, none}, false, sasl.ErrTempFail},
		{"down then good", []UserDB{down, good}, true, nil},
		{"none then good", []UserDB{none, good}, true, nil},
		{"bad uid", []UserDB{badUID}, false, sasl.ErrTempFail},
		{"none", []UserDB{none}, false, nil},
	}
	for _, tt := range tests {
		c, _, _ := testChecker(t, nil, tt.dbs)
		_, found, err := c.LookupUser(context.Background(), "lmtp", "u@x")
		if found != tt.found || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
			t.Errorf("%s: %v %v", tt.name, found, err)
		}
	}
}

// TestStaticUserdbNeedsPassdb: a static userdb confirms users through the
// passdb unless allow_all_users=yes.
func TestStaticUserdbNeedsPassdb(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users")
	writeFile(t, path, "info@example.jp:{PLAIN}pw\n")
	opts, _ := testOptions(t)
	p, _ := NewPassDB("passwd-file", path, opts)
	u, err := NewUserDB("static", "uid=vmail gid=vmail home=/home/vmail/%d/%n", "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	c, _, _ := testChecker(t, []PassDB{p}, []UserDB{u})
	ctx := context.Background()
	if info, found, err := c.LookupUser(ctx, "lmtp", "info@example.jp"); !found || err != nil || info.Home != "/home/vmail/example.jp/info" || info.UID != 5000 {
		t.Errorf("known: %+v %v %v", info, found, err)
	}
	if _, found, err := c.LookupUser(ctx, "lmtp", "ghost@example.jp"); found || err != nil {
		t.Errorf("ghost: %v %v", found, err)
	}
	all, _ := NewUserDB("static", "uid=vmail gid=vmail home=/home/%u allow_all_users=yes", "", "", opts)
	c2, _, _ := testChecker(t, []PassDB{p}, []UserDB{all})
	if _, found, err := c2.LookupUser(ctx, "lmtp", "ghost@example.jp"); !found || err != nil {
		t.Errorf("allow_all_users: %v %v", found, err)
	}
}

func TestDefaultRealm(t *testing.T) {
	c, _, _, _ := newFileChecker(t)
	c.opts.DefaultRealm = "example.jp"
	if u, err := c.CheckPassword(context.Background(), sreq("info", "info-pw")); err != nil || u != "info@example.jp" {
		t.Errorf("realm: %q %v", u, err)
	}
}

func TestUsernameTranslation(t *testing.T) {
	c, _, _, _ := newFileChecker(t)
	c.opts.UsernameTranslation = "%@"
	if u, err := c.CheckPassword(context.Background(), sreq("info%example.jp", "info-pw")); err != nil || u != "info@example.jp" {
		t.Errorf("translation: %q %v", u, err)
	}
}

// TestFailureDelayNoIP: clients without an IP are tracked per user only.
func TestFailureDelayNoIP(t *testing.T) {
	c, clock, _, _ := newFileChecker(t)
	c.opts.FailureDelay = 2 * time.Second
	c.opts.MaxFailureDelay = 15 * time.Second
	local := sreq("info@example.jp", "wrong")
	local.Remote, local.Local = nil, nil
	for range 4 {
		c.CheckPassword(context.Background(), local)
	}
	if got := clock.lastSleep(); got != 15*time.Second {
		t.Errorf("same user: %v", got)
	}
	other := sreq("sales@example.jp", "wrong")
	other.Remote = nil
	c.CheckPassword(context.Background(), other)
	if got := clock.lastSleep(); got != 2*time.Second {
		t.Errorf("other local user slowed: %v", got)
	}
}

func TestLookupCredentials(t *testing.T) {
	c, _, _, _ := newFileChecker(t)
	ctx := context.Background()
	user, stored, scheme, err := c.LookupCredentials(ctx, "imap", "Sales@example.jp")
	if err != nil || user != "sales@example.jp" || scheme != "CRYPT" || !strings.HasPrefix(stored, "{SHA512-CRYPT}$6$") {
		t.Errorf("got %q %q %q %v", user, stored, scheme, err)
	}
	if ok, err := VerifyPassword("Secret pw 1!", stored, scheme, DefaultLimits()); !ok || err != nil {
		t.Errorf("stored password does not verify: %v", err)
	}
	if _, _, _, err := c.LookupCredentials(ctx, "imap", "nobody@example.jp"); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("unknown: %v", err)
	}
	if _, _, _, err := c.LookupCredentials(ctx, "imap", "a*"); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("bad name: %v", err)
	}
	if _, _, _, err := c.LookupCredentials(ctx, "imap", "closed@example.jp"); !errors.Is(err, sasl.ErrAuthFailed) {
		t.Errorf("nologin: %v", err)
	}
}
