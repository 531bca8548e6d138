package userdb

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// maxCachedFiles bounds how many per-domain files a path template such as
// "/etc/dovecot/%d/passwd" keeps parsed in memory.
const maxCachedFiles = 1024

// passwdFileDB is the passwd-file driver, for a passdb or a userdb.
type passwdFileDB struct {
	path           string // may hold %variables
	hasVars        bool
	staticPrefix   string // directory the expanded path must stay under
	usernameFormat string
	scheme         string // passdb: scheme= or default_pass_scheme
	forUserdb      bool
	opts           Options
	ids            IDResolver
	limits         Limits

	single *passwdFile // the file, when the path has no variables

	mu    sync.Mutex
	files map[string]*passwdFile
}

// parsePasswdFileArgs reads "[scheme=S] [username_format=F] PATH" the way
// Dovecot's passdb/userdb passwd-file preinit does: options first, then
// the path, which is the rest of the line (it may contain spaces).
func parsePasswdFileArgs(kind, args string, allowScheme bool) (scheme, format, path string, err error) {
	format = "%u"
	rest := strings.TrimSpace(args)
	for rest != "" && !strings.HasPrefix(rest, "/") {
		tok, after, _ := strings.Cut(rest, " ")
		key, value, hasEq := strings.Cut(tok, "=")
		if !hasEq {
			break // a relative path
		}
		switch {
		case key == "scheme" && allowScheme:
			scheme = value
		case key == "username_format":
			format = value
		default:
			return "", "", "", fmt.Errorf("%s passwd-file: unknown setting %q", kind, key)
		}
		rest = strings.TrimLeft(after, " ")
	}
	if rest == "" {
		return "", "", "", fmt.Errorf("%s passwd-file: missing file path in args", kind)
	}
	if scheme != "" {
		if _, _, _, err := lookupScheme(scheme); err != nil {
			return "", "", "", fmt.Errorf("%s passwd-file: %w", kind, err)
		}
	}
	return scheme, format, rest, nil
}

func newPasswdFileDB(kind, args string, forUserdb bool, opts Options) (*passwdFileDB, error) {
	scheme, format, path, err := parsePasswdFileArgs(kind, args, !forUserdb)
	if err != nil {
		return nil, err
	}
	if err := checkTemplate(kind+" passwd-file username_format", format); err != nil {
		return nil, err
	}
	if err := checkTemplate(kind+" passwd-file path", path); err != nil {
		return nil, err
	}
	if scheme == "" {
		scheme = opts.DefaultPassScheme
	}
	if scheme == "" {
		scheme = "CRYPT"
	}
	db := &passwdFileDB{
		path: path, hasVars: HasVars(path), usernameFormat: format, scheme: scheme,
		forUserdb: forUserdb, opts: opts, ids: opts.ids(), limits: opts.limits(),
	}
	if db.hasVars {
		prefix := path[:strings.IndexByte(path, '%')]
		db.staticPrefix = prefix[:strings.LastIndexByte(prefix, '/')+1]
		db.files = map[string]*passwdFile{}
	} else {
		// Only "%%" escapes: the path is literal after expansion.
		db.path = Expand(path, Vars{})
		db.single = db.newFile(db.path)
		// Read now so that errors show at start-up, as Dovecot does; a
		// missing file is not fatal here, lookups will report it.
		if _, _, err := db.single.sync(); err != nil && !errors.Is(err, errNoFile) {
			return nil, err
		}
	}
	return db, nil
}

func (db *passwdFileDB) newFile(path string) *passwdFile {
	return &passwdFile{path: path, forUserdb: db.forUserdb, ids: db.ids, log: db.opts.logf}
}

// fileFor returns the file a request reads. For a path template the user
// name's parts lose everything from a "/" on (Dovecot's path_fix), and the
// result must stay under the template's static directory.
func (db *passwdFileDB) fileFor(req Request) (*passwdFile, error) {
	if !db.hasVars {
		return db.single, nil
	}
	v := req.Vars()
	v.Escape = func(s string) string {
		if i := strings.IndexByte(s, '/'); i >= 0 {
			return s[:i]
		}
		return s
	}
	path := filepath.Clean(Expand(db.path, v))
	if db.staticPrefix != "" && !strings.HasPrefix(path, db.staticPrefix) {
		return nil, fmt.Errorf("passwd-file %s: %w (expanded path leaves %s)", path, errNoFile, db.staticPrefix)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	f := db.files[path]
	if f == nil {
		if len(db.files) >= maxCachedFiles {
			for k := range db.files {
				delete(db.files, k)
				break
			}
		}
		f = db.newFile(path)
		db.files[path] = f
	}
	return f, nil
}

// dovecotStrEscape is Dovecot's str_escape(), which username_format
// expansion applies to the user name.
func dovecotStrEscape(s string) string {
	return applyModifier('E', s)
}

// entry finds the user's line. (nil, nil) means unknown user.
func (db *passwdFileDB) entry(ctx context.Context, req Request) (*Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := db.fileFor(req)
	if err != nil {
		db.opts.verbosef("passwd-file(%s,%s): no passwd file: %v", logUser(req.User), req.RemoteIP, err)
		return nil, nil
	}
	users, _, err := f.sync()
	if err != nil {
		if db.hasVars && errors.Is(err, errNoFile) {
			// With variables a missing file just means an unknown user.
			db.opts.verbosef("passwd-file(%s,%s): no passwd file: %s", logUser(req.User), req.RemoteIP, f.path)
			return nil, nil
		}
		db.opts.logf("Error: %v", err)
		return nil, err
	}
	v := req.Vars()
	v.Escape = dovecotStrEscape
	e := users[Expand(db.usernameFormat, v)]
	return e, nil
}

// extraFields splits and expands a line's extra fields.
func extraFields(e *Entry, v Vars) (pass, user Fields) {
	for _, tok := range e.Extra {
		k, val, _ := strings.Cut(tok, "=")
		if k == "" {
			continue
		}
		val = Expand(val, v)
		if uk, ok := strings.CutPrefix(k, "userdb_"); ok {
			if uk != "" {
				user.Set(uk, val)
			}
			continue
		}
		pass.Set(k, val)
	}
	return pass, user
}

// passwdFilePassDB is the passdb side.
type passwdFilePassDB struct{ db *passwdFileDB }

func newPasswdFilePassDB(args string, opts Options) (*passwdFilePassDB, error) {
	db, err := newPasswdFileDB("passdb", args, false, opts)
	if err != nil {
		return nil, err
	}
	return &passwdFilePassDB{db: db}, nil
}

func (p *passwdFilePassDB) LookupCredentials(ctx context.Context, req Request) (string, string, PassResult, error) {
	e, err := p.db.entry(ctx, req)
	if err != nil {
		return "", "", PassResult{}, fmt.Errorf("passdb passwd-file: %w", err)
	}
	if e == nil {
		return "", "", PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	}
	pf, uf := extraFields(e, req.Vars())
	return e.Password, p.db.scheme, PassResult{Status: PassOK, Fields: pf, UserdbFields: uf}, nil
}

func (p *passwdFilePassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	stored, scheme, res, err := p.LookupCredentials(ctx, req)
	if err != nil || res.Status != PassOK {
		return res, err
	}
	return verifyStored(p.db.opts, p.db.limits, "passwd-file", req, password, stored, scheme, res), nil
}

// verifyStored checks password against a stored one, honouring the
// "nopassword" field, and logs why a verification failed (never the
// password itself).
func verifyStored(opts Options, lim Limits, driver string, req Request, password, stored, scheme string, res PassResult) PassResult {
	if res.Fields.Has("nopassword") {
		if _, data := SplitScheme(stored); data == "" {
			return res
		}
		opts.logf("Error: %s(%s,%s): nopassword set but password is non-empty", driver, logUser(req.User), req.RemoteIP)
	}
	ok, err := VerifyPassword(password, stored, scheme, lim)
	if err != nil {
		res.Status, res.Reason = PassMismatch, err.Error()
		opts.logf("Error: %s(%s,%s): %v", driver, logUser(req.User), req.RemoteIP, err)
		return res
	}
	if !ok {
		res.Status, res.Reason = PassMismatch, "password mismatch"
	}
	return res
}

// DriverName implements Named.
func (p *passwdFilePassDB) DriverName() string { return "passwd-file" }

// passwdFileUserDB is the userdb side.
type passwdFileUserDB struct{ db *passwdFileDB }

func newPasswdFileUserDB(args string, opts Options) (*passwdFileUserDB, error) {
	db, err := newPasswdFileDB("userdb", args, true, opts)
	if err != nil {
		return nil, err
	}
	return &passwdFileUserDB{db: db}, nil
}

func (u *passwdFileUserDB) Lookup(ctx context.Context, req Request) (Fields, bool, error) {
	e, err := u.db.entry(ctx, req)
	if err != nil {
		return nil, false, fmt.Errorf("userdb passwd-file: %w", err)
	}
	if e == nil || e.NoUserdb {
		return nil, false, nil
	}
	var f Fields
	if e.UID >= 0 {
		f.Set("uid", strconv.Itoa(e.UID))
	}
	if e.GID >= 0 {
		f.Set("gid", strconv.Itoa(e.GID))
	}
	v := req.Vars()
	if e.Home != "" {
		f.Set("home", e.Home)
		v.Home = e.Home
	}
	_, uf := extraFields(e, v)
	for _, kv := range uf {
		f.Set(kv.Key, kv.Value)
	}
	return f, true, nil
}

// DriverName implements Named.
func (u *passwdFileUserDB) DriverName() string { return "passwd-file" }

func (u *passwdFileUserDB) Iterate(ctx context.Context, fn func(string) error) error {
	if u.db.hasVars {
		return fmt.Errorf("userdb passwd-file %s: %w with %%variable paths", u.db.path, ErrIterateUnsupported)
	}
	users, order, err := u.db.single.sync()
	if err != nil {
		return fmt.Errorf("userdb passwd-file: %w", err)
	}
	for _, name := range order {
		if err := ctx.Err(); err != nil {
			return err
		}
		if users[name].NoUserdb {
			continue // passdb-only line, as Lookup says
		}
		if err := fn(name); err != nil {
			return err
		}
	}
	return nil
}
