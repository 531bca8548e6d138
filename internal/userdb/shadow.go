package userdb

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// shadow(5): name:password:lastchg:min:max:warn:inactive:expire:reserved.
// The dates are days since 1970-01-01 (UTC); an empty numeric field is
// "not set" (-1 here, as getspnam() reports it). glibc also accepts the
// short form name:password.

// ShadowEntry is one line of shadow(5).
type ShadowEntry struct {
	Name     string
	Password string // crypt(3) hash; "!" or "*" first means locked, "" no password
	LastChange,
	MinDays,
	MaxDays,
	WarnDays,
	InactiveDays,
	Expire int64 // -1 when the field is empty
}

func parseShadowTable(r io.Reader) (*sysTable[ShadowEntry], error) {
	return parseSysTable(r, func(f []string) (*ShadowEntry, bool) {
		e, err := parseShadowFields(f)
		return e, err == nil
	})
}

// ParseShadowLine parses one shadow(5) line (without its newline).
func ParseShadowLine(line string) (ShadowEntry, error) {
	e, err := parseShadowFields(strings.Split(line, ":"))
	if err != nil {
		return ShadowEntry{}, err
	}
	return *e, nil
}

func parseShadowFields(f []string) (*ShadowEntry, error) {
	if len(f) != 2 && len(f) != 9 {
		return nil, fmt.Errorf("%w: %d fields, want 9", ErrMalformedEntry, len(f))
	}
	if f[0] == "" {
		return nil, fmt.Errorf("%w: empty name", ErrMalformedEntry)
	}
	e := &ShadowEntry{Name: f[0], Password: f[1],
		LastChange: -1, MinDays: -1, MaxDays: -1, WarnDays: -1, InactiveDays: -1, Expire: -1}
	if len(f) == 2 {
		return e, nil
	}
	dst := []*int64{&e.LastChange, &e.MinDays, &e.MaxDays, &e.WarnDays, &e.InactiveDays, &e.Expire}
	names := []string{"last change", "minimum age", "maximum age", "warning period", "inactivity period", "expiration date"}
	for i, p := range dst {
		s := f[2+i]
		if s == "" {
			continue
		}
		// glibc reads these with strtol: a signed decimal. A negative
		// value other than -1 has no meaning; refuse it rather than guess.
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < -1 || n > 1<<40 {
			return nil, fmt.Errorf("%w: %s %q", ErrMalformedEntry, names[i], s)
		}
		*p = n
	}
	return e, nil
}

// daysSinceEpoch is the "curdays" of shadow(5) and pam_unix.
func daysSinceEpoch(now time.Time) int64 {
	return now.Unix() / 86400
}

// validCryptField is Dovecot's IS_VALID_PASSWD: a password field that
// can hold a hash (not empty, not locked with "!" or "*").
func validCryptField(pw string) bool {
	return pw != "" && pw[0] != '!' && pw[0] != '*'
}

// lockedReason says why a password field cannot be used, for the log.
func lockedReason(pw string) string {
	switch {
	case pw == "":
		return "no password set (empty password field)"
	case pw[0] == '!':
		return "account locked (password field starts with '!')"
	}
	return "account disabled (password field starts with '*')"
}

// AccountExpired reports whether the account's expiration date (field 8)
// has come: today >= Expire, the rule of pam_unix and shadow's
// isexpired(). Expire 0 counts as expired, as pam_unix counts it.
func (e ShadowEntry) AccountExpired(now time.Time) bool {
	return e.Expire >= 0 && daysSinceEpoch(now) >= e.Expire
}

// PasswordAgeProblem reports what pam_unix's account check
// (check_shadow_expiry) refuses besides an expired account: a password
// that must be changed (last change 0) or that is older than its maximum
// age. Either needs passwd(1), which a mail login cannot run, so Dovecot
// (pam_acct_mgmt != PAM_SUCCESS) refuses the login. "" means none.
func (e ShadowEntry) PasswordAgeProblem(now time.Time) string {
	today := daysSinceEpoch(now)
	switch {
	case e.LastChange == 0:
		return "password change required (last change is 0)"
	case e.LastChange < 0 || today < e.LastChange || e.MaxDays < 0:
		return "" // aging disabled, or changed "in the future"
	case today-e.LastChange > e.MaxDays:
		if e.InactiveDays >= 0 && today-e.LastChange > e.MaxDays+e.InactiveDays {
			return "password expired and account inactive"
		}
		return "password expired (older than its maximum age)"
	}
	return ""
}

// parseBlockingArgs reads the args of the passwd and shadow drivers:
// only "blocking=yes|no", which Dovecot uses to run lookups in worker
// processes; postcote's lookups of local files never block the process,
// so it is accepted and has no effect.
func parseBlockingArgs(kind, args string) error {
	for _, kv := range ParseFields(args) {
		if kv.Key != "blocking" {
			return fmt.Errorf("%s: unknown setting %q", kind, kv.Key)
		}
		switch kv.Value {
		case "", "yes", "no":
		default:
			return fmt.Errorf("%s: blocking=%q: want yes or no", kind, kv.Value)
		}
	}
	return nil
}

// systemFiles returns the account files the drivers read: opts.IDs when it
// is a SystemIDs (tests, other roots), else the system's.
func systemFiles(opts Options) *SystemIDs {
	if s, ok := opts.IDs.(*SystemIDs); ok && s != nil {
		return s
	}
	return NewSystemFiles("", "", "")
}

// shadowPassDB is "passdb { driver = shadow }": the hash of shadow(5), in
// the CRYPT scheme. Locked, password-less and expired accounts are
// refused before any hashing (Dovecot refuses the first two as
// "invalid password field"; the expiry check is pam_unix's, which Debian's
// Dovecot would apply through PAM).
type shadowPassDB struct {
	files  *SystemIDs
	opts   Options
	limits Limits
	now    func() time.Time
}

func newShadowPassDB(args string, opts Options) (*shadowPassDB, error) {
	if err := parseBlockingArgs("passdb shadow", args); err != nil {
		return nil, err
	}
	db := &shadowPassDB{files: systemFiles(opts), opts: opts, limits: opts.limits(), now: time.Now}
	checkShadowReadable("passdb shadow", db.files, opts)
	return db, nil
}

// checkShadowReadable logs at start-up when the shadow file cannot be
// read (not root, not in group shadow), so that the cause of every
// failed login is in the log before the first one. It is not fatal: the
// file may become readable, and lookups report it until then.
func checkShadowReadable(kind string, files *SystemIDs, opts Options) {
	if _, err := files.shadow.load(); err != nil {
		opts.logf("Error: %s: %v (postcote must run as root or in group shadow to read it)", kind, err)
	}
}

// DriverName implements Named.
func (s *shadowPassDB) DriverName() string { return "shadow" }

func (s *shadowPassDB) LookupCredentials(ctx context.Context, req Request) (string, string, PassResult, error) {
	if err := ctx.Err(); err != nil {
		return "", "", PassResult{}, err
	}
	e, found, err := s.files.LookupShadow(req.User)
	if err != nil {
		return "", "", PassResult{}, fmt.Errorf("passdb shadow: %w", err)
	}
	if !found {
		return "", "", PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	}
	if !validCryptField(e.Password) {
		return "", "", PassResult{Status: PassMismatch, Reason: lockedReason(e.Password)}, nil
	}
	if e.AccountExpired(s.now()) {
		return "", "", PassResult{Status: PassMismatch, Reason: "account expired"}, nil
	}
	var f Fields
	f.Set("user", e.Name)
	return e.Password, "CRYPT", PassResult{Status: PassOK, Fields: f}, nil
}

func (s *shadowPassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	stored, scheme, res, err := s.LookupCredentials(ctx, req)
	if err != nil || res.Status != PassOK {
		return res, err
	}
	return verifyStored(s.opts, s.limits, "shadow", req, password, stored, scheme, res), nil
}
