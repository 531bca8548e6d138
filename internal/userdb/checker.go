package userdb

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/mailstore"
	"postcote/internal/sasl"
)

// DefaultUsernameChars is Dovecot's auth_username_chars default: the only
// bytes a user name may contain. Anything else ("*", "(", ")", "\", NUL,
// "'", "%", ":", newline, space) fails the login before any database is
// asked.
const DefaultUsernameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@"

// maxUsernameLen bounds a user name (Dovecot's auth protocol allows long
// lines; no mail system has names this long).
const maxUsernameLen = 255

// CheckerOptions are the auth settings of dovecot.conf the Checker obeys.
type CheckerOptions struct {
	Log *maillog.Logger
	// Verbose is auth_verbose: log every failed login and its reason
	// (unknown user, password mismatch, nologin). Errors are always
	// logged.
	Verbose bool

	UsernameFormat string // auth_username_format; "%Lu" by default
	UsernameChars  string // auth_username_chars; "" allows every byte but NUL
	DefaultRealm   string // auth_default_realm: domain added to names without "@"
	// UsernameTranslation is auth_username_translation: pairs of bytes,
	// each first byte of a pair replaced by the second ("%@" turns
	// "user%domain" into "user@domain"), applied before the chars check.
	UsernameTranslation string

	FailureDelay    time.Duration // auth_failure_delay; 0 = no delay (tests)
	MaxFailureDelay time.Duration // cap of the growing delay; 0 = no growth
	FailureHalfLife time.Duration // how fast failure scores decay
	MaxTracked      int           // most IPs + users remembered

	// first_valid_uid, last_valid_uid, first_valid_gid, last_valid_gid:
	// 0 for a "last" bound means no bound.
	FirstValidUID, LastValidUID int
	FirstValidGID, LastValidGID int

	IDs IDResolver // uid/gid names; nil means /etc/passwd and /etc/group

	Now   func() time.Time                                 // clock; nil = time.Now
	Sleep func(ctx context.Context, d time.Duration) error // nil = real timer
}

// DefaultCheckerOptions returns Dovecot 2.3's defaults.
func DefaultCheckerOptions() CheckerOptions {
	return CheckerOptions{
		UsernameFormat:  "%Lu",
		UsernameChars:   DefaultUsernameChars,
		FailureDelay:    2 * time.Second,
		MaxFailureDelay: 15 * time.Second,
		FailureHalfLife: 10 * time.Minute,
		MaxTracked:      100000,
		FirstValidUID:   500,
		FirstValidGID:   1,
	}
}

// Checker runs logins against passdbs and user lookups against userdbs,
// in configuration order, as Dovecot's auth process does with its default
// result_success = return-ok, result_failure = continue,
// result_internalfail = continue: the first passdb that accepts wins; if
// none does and any of them could not answer, the result is a temporary
// failure, never a wrong password.
type Checker struct {
	passdbs []PassDB
	userdbs []UserDB
	opts    CheckerOptions
	ids     IDResolver
	fails   *failureTracker
}

// NewChecker returns a Checker over the given databases.
func NewChecker(passdbs []PassDB, userdbs []UserDB, opts CheckerOptions) *Checker {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Sleep == nil {
		opts.Sleep = sleepContext
	}
	if opts.MaxTracked <= 0 {
		opts.MaxTracked = 100000
	}
	ids := opts.IDs
	if ids == nil {
		ids = NewSystemIDs("", "")
	}
	return &Checker{
		passdbs: passdbs, userdbs: userdbs, opts: opts, ids: ids,
		fails: newFailureTracker(opts.Now, opts.FailureHalfLife, opts.MaxTracked),
	}
}

var _ sasl.PasswordChecker = (*Checker)(nil)

// LoginRefusedError is a failed login whose password was right but that
// the passdb refuses (nologin, allow_nets). It matches sasl.ErrAuthFailed.
type LoginRefusedError struct {
	Reason string // the passdb's "reason" field, or what check failed
}

func (e *LoginRefusedError) Error() string {
	if e.Reason == "" {
		return sasl.ErrAuthFailed.Error()
	}
	return sasl.ErrAuthFailed.Error() + ": " + e.Reason
}

// Is makes errors.Is(err, sasl.ErrAuthFailed) true.
func (e *LoginRefusedError) Is(target error) bool { return target == sasl.ErrAuthFailed }

// AuthResult is a successful login.
type AuthResult struct {
	User         string // canonical user name
	Fields       Fields // passdb extra fields
	UserdbFields Fields // userdb_ fields (prefetch)
}

// CheckPassword implements sasl.PasswordChecker.
func (c *Checker) CheckPassword(ctx context.Context, req sasl.Request) (string, error) {
	res, err := c.Authenticate(ctx, req)
	if err != nil {
		return "", err
	}
	return res.User, nil
}

// addrParts returns the IP and port of a network address ("" for unix
// sockets and nil).
func addrParts(a net.Addr) (ip, port string) {
	switch v := a.(type) {
	case *net.TCPAddr:
		return v.IP.String(), strconv.Itoa(v.Port)
	case *net.UDPAddr:
		return v.IP.String(), strconv.Itoa(v.Port)
	case nil:
		return "", ""
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().String(), strconv.Itoa(int(ap.Port()))
	}
	return "", ""
}

// normalizeUser applies auth_default_realm, auth_username_translation,
// auth_username_chars and
// auth_username_format (Dovecot's auth_request_fix_username). The format is
// expanded once: a "%" in the name is never taken as a variable.
func (c *Checker) normalizeUser(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty user name")
	}
	if len(name) > maxUsernameLen {
		return "", fmt.Errorf("user name longer than %d bytes", maxUsernameLen)
	}
	if c.opts.DefaultRealm != "" && !strings.Contains(name, "@") {
		name += "@" + c.opts.DefaultRealm
	}
	if tr := c.opts.UsernameTranslation; tr != "" {
		b := []byte(name)
		for i := range b {
			for j := 0; j+1 < len(tr); j += 2 {
				if b[i] == tr[j] {
					b[i] = tr[j+1]
					break
				}
			}
		}
		name = string(b)
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if b == 0 || (c.opts.UsernameChars != "" && strings.IndexByte(c.opts.UsernameChars, b) < 0) {
			return "", fmt.Errorf("username character disallowed by auth_username_chars: 0x%02x", b)
		}
	}
	if c.opts.UsernameFormat != "" {
		name = Expand(c.opts.UsernameFormat, Vars{User: name})
	}
	if name == "" {
		return "", errors.New("user name empty after auth_username_format")
	}
	return name, nil
}

// logUser renders a user name for a log line without letting control
// characters forge lines.
func logUser(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)[1 : len(strconv.Quote(s))-1]
}

// Authenticate checks req.User's password against the passdbs.
func (c *Checker) Authenticate(ctx context.Context, sreq sasl.Request) (AuthResult, error) {
	rip, rport := addrParts(sreq.Remote)
	lip, lport := addrParts(sreq.Local)
	user, err := c.normalizeUser(sreq.User)
	if err != nil {
		c.verbose("auth(%s,%s): %v", logUser(sreq.User), rip, err)
		return AuthResult{}, c.failed(ctx, rip, "", sasl.ErrAuthFailed)
	}
	req := Request{
		User: user, OrigUser: sreq.User, Service: sreq.Service,
		RemoteIP: rip, RemotePort: rport, LocalIP: lip, LocalPort: lport,
		Secured: sreq.Secured,
	}
	var tempErr error
	for i, db := range c.passdbs {
		if err := ctx.Err(); err != nil {
			return AuthResult{}, fmt.Errorf("%w: %v", sasl.ErrTempFail, err)
		}
		res, err := db.Verify(ctx, req, sreq.Password)
		if err != nil {
			c.log("Error: %s(%s,%s): %v", dbName(db, "passdb", i), logUser(user), rip, err)
			if tempErr == nil {
				tempErr = err
			}
			continue
		}
		switch res.Status {
		case PassUnknownUser:
			c.verbose("%s(%s,%s): unknown user", dbName(db, "passdb", i), logUser(user), rip)
			continue
		case PassMismatch:
			c.verbose("%s(%s,%s): %s", dbName(db, "passdb", i), logUser(user), rip, res.Reason)
			continue
		}
		// PassOK.
		if err := checkAllowNets(res.Fields, rip); err != nil {
			c.verbose("%s(%s,%s): %v", dbName(db, "passdb", i), logUser(user), rip, err)
			return AuthResult{}, c.failed(ctx, rip, user, &LoginRefusedError{Reason: "allow_nets check failed"})
		}
		if res.Fields.Has("nologin") {
			reason := res.Fields.Value("reason")
			c.verbose("%s(%s,%s): login refused by nologin (reason: %q)", dbName(db, "passdb", i), logUser(user), rip, reason)
			// Delayed like any failure, so the reply's timing does not
			// tell that the password was right.
			return AuthResult{}, c.failed(ctx, rip, user, &LoginRefusedError{Reason: reason})
		}
		canonical := user
		if u := res.Fields.Value("user"); u != "" {
			canonical = u
		}
		c.fails.clear("user:" + user)
		return AuthResult{User: canonical, Fields: res.Fields, UserdbFields: res.UserdbFields}, nil
	}
	if tempErr != nil {
		return AuthResult{}, fmt.Errorf("%w: %v", sasl.ErrTempFail, tempErr)
	}
	return AuthResult{}, c.failed(ctx, rip, user, sasl.ErrAuthFailed)
}

// LookupCredentials returns the stored password of a user from the first
// passdb that can give it (for SCRAM and other mechanisms that need the
// stored form): stored is "{SCHEME}data" or data in scheme. An unknown
// user or a name auth_username_chars refuses is sasl.ErrAuthFailed (the
// caller delays and counts the failure through its own reply path); a back
// end failure wraps sasl.ErrTempFail.
func (c *Checker) LookupCredentials(ctx context.Context, service, name string) (user, stored, scheme string, err error) {
	user, err = c.normalizeUser(name)
	if err != nil {
		c.verbose("auth(%s): %v", logUser(name), err)
		return "", "", "", sasl.ErrAuthFailed
	}
	user, stored, scheme, fields, err := c.credentials(ctx, Request{User: user, OrigUser: name, Service: service})
	if err != nil {
		return "", "", "", err
	}
	if fields.Has("nologin") {
		return "", "", "", &LoginRefusedError{Reason: fields.Value("reason")}
	}
	return user, stored, scheme, nil
}

// credentials asks the passdbs that can return stored passwords for
// req.User (already normalized) and returns the first one's answer with
// its fields, the canonical name from its "user" field. An unknown user
// is sasl.ErrAuthFailed, not delayed; a back end failure wraps
// sasl.ErrTempFail.
func (c *Checker) credentials(ctx context.Context, req Request) (user, stored, scheme string, fields Fields, err error) {
	user = req.User
	var tempErr error
	for i, db := range c.passdbs {
		cdb, ok := db.(CredentialsDB)
		if !ok {
			continue
		}
		st, sch, res, err := cdb.LookupCredentials(ctx, req)
		if err != nil {
			c.log("Error: %s(%s): %v", dbName(db, "passdb", i), logUser(user), err)
			if tempErr == nil {
				tempErr = err
			}
			continue
		}
		if res.Status != PassOK {
			continue
		}
		if u := res.Fields.Value("user"); u != "" {
			user = u
		}
		return user, st, sch, res.Fields, nil
	}
	if tempErr != nil {
		return "", "", "", nil, fmt.Errorf("%w: %v", sasl.ErrTempFail, tempErr)
	}
	return "", "", "", nil, sasl.ErrAuthFailed
}

// failed records a failure for the client and user, waits the delay and
// returns err.
func (c *Checker) failed(ctx context.Context, rip, user string, err error) error {
	// A client without an IP (unix socket, auth protocol without rip)
	// is tracked by user name only, so that one bad local client does
	// not slow every other one.
	var keys []string
	if rip != "" {
		keys = append(keys, "ip:"+rip)
	}
	if user != "" {
		keys = append(keys, "user:"+user)
	}
	prev := c.fails.fail(keys...)
	d := failureDelay(c.opts.FailureDelay, c.opts.MaxFailureDelay, prev)
	if d > 0 {
		_ = c.opts.Sleep(ctx, d) // a cancelled wait still fails the login
	}
	return err
}

// NextFailureDelay returns how long the next failed login from rip for
// user would wait (for tests and doveadm).
func (c *Checker) NextFailureDelay(rip, user string) time.Duration {
	var prev float64
	if rip != "" {
		prev = c.fails.score("ip:" + rip)
	}
	if user != "" {
		prev = max(prev, c.fails.score("user:"+user))
	}
	return failureDelay(c.opts.FailureDelay, c.opts.MaxFailureDelay, prev)
}

// checkAllowNets applies the allow_nets passdb field: a comma- or
// space-separated list of IPs and networks; "local" matches connections
// without an IP (unix sockets).
func checkAllowNets(f Fields, rip string) error {
	nets, ok := f.Get("allow_nets")
	if !ok {
		return nil
	}
	var addr netip.Addr
	if rip != "" {
		a, err := netip.ParseAddr(rip)
		if err != nil {
			return fmt.Errorf("allow_nets: bad remote IP %q", rip)
		}
		addr = a.Unmap()
	}
	for _, n := range strings.FieldsFunc(nets, func(r rune) bool { return r == ',' || r == ' ' }) {
		if n == "local" {
			if rip == "" {
				return nil
			}
			continue
		}
		if !addr.IsValid() {
			continue
		}
		if p, err := netip.ParsePrefix(n); err == nil {
			if p.Contains(addr) {
				return nil
			}
			continue
		}
		if a, err := netip.ParseAddr(n); err == nil && a.Unmap() == addr {
			return nil
		}
	}
	return fmt.Errorf("allow_nets check failed: IP %s not in %s", rip, nets)
}

// Named is implemented by databases that can say which driver they are,
// for log lines in Dovecot's "driver(user,ip): message" shape.
type Named interface {
	DriverName() string
}

// dbName names the i-th database of a kind for the log.
func dbName(db any, kind string, i int) string {
	if n, ok := db.(Named); ok {
		return n.DriverName()
	}
	return fmt.Sprintf("%s #%d", kind, i+1)
}

func (c *Checker) log(format string, args ...any) {
	c.opts.Log.Printf("auth", format, args...)
}

// verbose logs a line only with auth_verbose.
func (c *Checker) verbose(format string, args ...any) {
	if c.opts.Verbose {
		c.log(format, args...)
	}
}

// UserInfo is a userdb answer in the mail store's terms, with all fields.
type UserInfo struct {
	mailstore.User
	Fields Fields // every userdb field (uid, gid, home, mail, quota_rule, ...)
}

// LookupUser finds name in the userdbs for service ("lmtp", "imap",
// "doveadm", ...). found is false for an unknown user or a name that
// auth_username_chars refuses. An error (wrapping sasl.ErrTempFail) means a
// back end could not answer or the answer is unusable (bad uid, uid
// outside first_valid_uid..last_valid_uid).
func (c *Checker) LookupUser(ctx context.Context, service, name string) (UserInfo, bool, error) {
	user, err := c.normalizeUser(name)
	if err != nil {
		c.verbose("userdb(%s): %v", logUser(name), err)
		return UserInfo{}, false, nil
	}
	req := Request{User: user, OrigUser: name, Service: service}
	var tempErr error
	for i, db := range c.userdbs {
		if err := ctx.Err(); err != nil {
			return UserInfo{}, false, fmt.Errorf("%w: %v", sasl.ErrTempFail, err)
		}
		fields, found, err := db.Lookup(ctx, req)
		if err != nil {
			c.log("Error: %s(%s): %v", dbName(db, "userdb", i), logUser(user), err)
			if tempErr == nil {
				tempErr = err
			}
			continue
		}
		if !found {
			continue
		}
		if needsUserCheck(db) {
			exists, err := c.passdbHasUser(ctx, req)
			if err != nil {
				if tempErr == nil {
					tempErr = err
				}
				continue
			}
			if !exists {
				continue
			}
		}
		info, err := c.userInfo(user, fields)
		if err != nil {
			c.log("Error: %s(%s): %v", dbName(db, "userdb", i), logUser(user), err)
			return UserInfo{}, false, fmt.Errorf("%w: %v", sasl.ErrTempFail, err)
		}
		return info, true, nil
	}
	if tempErr != nil {
		return UserInfo{}, false, fmt.Errorf("%w: %v", sasl.ErrTempFail, tempErr)
	}
	return UserInfo{}, false, nil
}

// passdbHasUser asks the passdbs that can look users up whether req.User
// exists (for a static userdb without allow_all_users).
func (c *Checker) passdbHasUser(ctx context.Context, req Request) (bool, error) {
	asked := false
	for _, db := range c.passdbs {
		cdb, ok := db.(CredentialsDB)
		if !ok {
			continue
		}
		if _, isStatic := db.(*staticPassDB); isStatic {
			continue // says yes to everyone
		}
		asked = true
		_, _, res, err := cdb.LookupCredentials(ctx, req)
		if err != nil {
			return false, err
		}
		if res.Status == PassOK {
			return true, nil
		}
	}
	if !asked {
		c.log("Error: userdb static(%s): no passdb can confirm the user exists; set allow_all_users=yes", logUser(req.User))
	}
	return false, nil
}

// userInfo converts the fields into the mail store's user.
func (c *Checker) userInfo(user string, f Fields) (UserInfo, error) {
	info := UserInfo{Fields: f}
	info.Name = user
	if u := f.Value("user"); u != "" {
		info.Name = u
	}
	info.UID, info.GID = -1, -1
	if s, ok := f.Get("uid"); ok {
		info.UID = parseID(s, c.ids.LookupUID)
		if info.UID < 0 {
			return info, fmt.Errorf("invalid uid %q", s)
		}
		info.Fields.Set("uid", strconv.Itoa(info.UID))
		if info.UID < c.opts.FirstValidUID || (c.opts.LastValidUID != 0 && info.UID > c.opts.LastValidUID) {
			return info, fmt.Errorf("mail access for users with UID %d not permitted (see first_valid_uid in config file)", info.UID)
		}
	}
	if s, ok := f.Get("gid"); ok {
		info.GID = parseID(s, c.ids.LookupGID)
		if info.GID < 0 {
			return info, fmt.Errorf("invalid gid %q", s)
		}
		info.Fields.Set("gid", strconv.Itoa(info.GID))
		if info.GID < c.opts.FirstValidGID || (c.opts.LastValidGID != 0 && info.GID > c.opts.LastValidGID) {
			return info, fmt.Errorf("mail access for users with GID %d not permitted (see first_valid_gid in config file)", info.GID)
		}
	}
	info.Home = f.Value("home")
	info.MailLocation = f.Value("mail")
	return info, nil
}

// IterateUsers calls fn with every user of every userdb that can list
// its users (doveadm user '*'); userdbs that cannot are skipped.
func (c *Checker) IterateUsers(ctx context.Context, fn func(user string) error) error {
	valid := IDRange{FirstUID: c.opts.FirstValidUID, LastUID: c.opts.LastValidUID, FirstGID: c.opts.FirstValidGID, LastGID: c.opts.LastValidGID}
	for i, db := range c.userdbs {
		err := iterateUserDB(ctx, db, valid, fn)
		if errors.Is(err, ErrIterateUnsupported) {
			continue
		}
		if err != nil {
			return fmt.Errorf("userdb #%d: %w", i+1, err)
		}
	}
	return nil
}
