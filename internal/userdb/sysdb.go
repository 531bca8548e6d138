package userdb

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// The passwd drivers: system users from passwd(5), read through
// SystemIDs (no cgo, no NSS: an LDAP or SSSD user that only NSS knows is
// not seen).
//
//	userdb { driver = passwd }                    (guide 004)
//	userdb { driver = passwd  override_fields = uid=vmail gid=vmail home=/var/mail/%n/ }   (guide 002)
//	passdb { driver = passwd }                    (the crypt field of passwd)
//
// The userdb answers uid, gid, home and system_groups_user (the name
// whose supplementary groups the mail process gets), as Dovecot 2.3's
// userdb-passwd.c does. Its args take "blocking=yes|no" and, for
// compatibility, template fields that apply like override_fields
// (Dovecot warns to move them there; so does postcote). Iteration
// (doveadm user '*') lists the users whose uid and gid lie in
// first_valid_uid..last_valid_uid and first_valid_gid..last_valid_gid,
// skipping system daemons, as Dovecot's passwd_iterate_want_pw() does.

// IDRange is first_valid_uid..last_valid_uid and first_valid_gid..
// last_valid_gid; a zero Last means no upper bound.
type IDRange struct {
	FirstUID, LastUID int
	FirstGID, LastGID int
}

// contains reports whether uid and gid are both in range.
func (r IDRange) contains(uid, gid int) bool {
	return uid >= r.FirstUID && (r.LastUID == 0 || uid <= r.LastUID) &&
		gid >= r.FirstGID && (r.LastGID == 0 || gid <= r.LastGID)
}

// defaultIDRange is Dovecot's defaults (first_valid_uid = 500,
// first_valid_gid = 1).
func defaultIDRange() IDRange {
	d := DefaultCheckerOptions()
	return IDRange{FirstUID: d.FirstValidUID, LastUID: d.LastValidUID, FirstGID: d.FirstValidGID, LastGID: d.LastValidGID}
}

// rangeIterator is implemented by userdbs whose listing depends on the
// valid uid/gid range (the passwd userdb); the Checker passes its own.
type rangeIterator interface {
	iterateInRange(ctx context.Context, r IDRange, fn func(user string) error) error
}

// iterateInRange forwards to the wrapped userdb, so that override_fields
// around a passwd userdb keep its range filter.
func (t *templateUserDB) iterateInRange(ctx context.Context, r IDRange, fn func(string) error) error {
	if ri, ok := t.inner.(rangeIterator); ok {
		return ri.iterateInRange(ctx, r, fn)
	}
	return t.inner.Iterate(ctx, fn)
}

// iterateUserDB lists db's users, within r when the driver filters by
// uid range.
func iterateUserDB(ctx context.Context, db UserDB, r IDRange, fn func(string) error) error {
	if ri, ok := db.(rangeIterator); ok {
		return ri.iterateInRange(ctx, r, fn)
	}
	return db.Iterate(ctx, fn)
}

// passwdUserDB is "userdb { driver = passwd }".
type passwdUserDB struct {
	files *SystemIDs
	tmpl  Template // fields left in args (old-style templates)
	opts  Options
}

func newPasswdUserDB(args string, opts Options) (*passwdUserDB, error) {
	var tmpl Fields
	for _, kv := range ParseFields(args) {
		if kv.Key == "blocking" {
			if err := parseBlockingArgs("userdb passwd", kv.Key+"="+kv.Value); err != nil {
				return nil, err
			}
			continue
		}
		tmpl.Set(kv.Key, kv.Value)
	}
	db := &passwdUserDB{files: systemFiles(opts), tmpl: Template{fields: tmpl}, opts: opts}
	if err := db.tmpl.check("userdb passwd args"); err != nil {
		return nil, err
	}
	if !db.tmpl.Empty() {
		opts.logf("Warning: userdb passwd: Move templates args to override_fields setting")
	}
	return db, nil
}

// DriverName implements Named.
func (u *passwdUserDB) DriverName() string { return "passwd" }

func (u *passwdUserDB) Lookup(ctx context.Context, req Request) (Fields, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	e, found, err := u.files.LookupPasswd(req.User)
	if err != nil {
		return nil, false, fmt.Errorf("userdb passwd: %w", err)
	}
	if !found {
		u.opts.verbosef("passwd(%s): unknown user", logUser(req.User))
		return nil, false, nil
	}
	var f Fields
	f.Set("system_groups_user", e.Name)
	f.Set("uid", strconv.Itoa(e.UID))
	f.Set("gid", strconv.Itoa(e.GID))
	f.Set("home", e.Home)
	v := req.Vars()
	v.Home = e.Home
	u.tmpl.ApplyTo(&f, v)
	return f, true, nil
}

// Iterate lists the users in Dovecot's default uid/gid range; the Checker
// uses its configured range instead.
func (u *passwdUserDB) Iterate(ctx context.Context, fn func(string) error) error {
	return u.iterateInRange(ctx, defaultIDRange(), fn)
}

func (u *passwdUserDB) iterateInRange(ctx context.Context, r IDRange, fn func(string) error) error {
	users, err := u.files.Users()
	if err != nil {
		return fmt.Errorf("userdb passwd: %w", err)
	}
	for _, e := range users {
		if err := ctx.Err(); err != nil {
			return err
		}
		if !r.contains(e.UID, e.GID) {
			continue // daemons and such
		}
		if err := fn(e.Name); err != nil {
			return err
		}
	}
	return nil
}

// passwdPassDB is "passdb { driver = passwd }": the crypt(3) hash in the
// second field of passwd(5), which on current systems is "x" (the hash
// is in shadow: use the shadow or pam passdb).
type passwdPassDB struct {
	files  *SystemIDs
	opts   Options
	limits Limits
}

func newPasswdPassDB(args string, opts Options) (*passwdPassDB, error) {
	if err := parseBlockingArgs("passdb passwd", args); err != nil {
		return nil, err
	}
	return &passwdPassDB{files: systemFiles(opts), opts: opts, limits: opts.limits()}, nil
}

// DriverName implements Named.
func (p *passwdPassDB) DriverName() string { return "passwd" }

func (p *passwdPassDB) LookupCredentials(ctx context.Context, req Request) (string, string, PassResult, error) {
	if err := ctx.Err(); err != nil {
		return "", "", PassResult{}, err
	}
	e, found, err := p.files.LookupPasswd(req.User)
	if err != nil {
		return "", "", PassResult{}, fmt.Errorf("passdb passwd: %w", err)
	}
	if !found {
		return "", "", PassResult{Status: PassUnknownUser, Reason: "unknown user"}, nil
	}
	switch {
	case !validCryptField(e.Password):
		return "", "", PassResult{Status: PassMismatch, Reason: lockedReason(e.Password)}, nil
	case e.Password == "x" || strings.HasPrefix(e.Password, "##"):
		return "", "", PassResult{Status: PassMismatch,
			Reason: "password is in the shadow file (use passdb shadow or pam)"}, nil
	}
	var f Fields
	f.Set("user", e.Name)
	return e.Password, "CRYPT", PassResult{Status: PassOK, Fields: f}, nil
}

func (p *passwdPassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	stored, scheme, res, err := p.LookupCredentials(ctx, req)
	if err != nil || res.Status != PassOK {
		return res, err
	}
	return verifyStored(p.opts, p.limits, "passwd", req, password, stored, scheme, res), nil
}
