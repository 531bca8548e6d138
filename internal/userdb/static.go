package userdb

import (
	"context"
	"fmt"
	"strings"
)

// The static driver
// (https://doc.dovecot.org/2.3/configuration_manual/authentication/static_password_database/
// and .../static_user_database/): every user gets the fields of args,
// expanded per lookup.
//
//	passdb { driver = static  args = password=secret }      (or nopassword)
//	userdb { driver = static  args = uid=vmail gid=vmail home=/home/%u }
//
// A static passdb's password is PLAIN unless it carries a {SCHEME}. A
// static userdb answers for any name only with allow_all_users=yes;
// otherwise the Checker first asks the passdbs whether the user exists,
// as Dovecot does for lookups that did not come from a login.

// staticPassScheme is the scheme of a static password without a prefix.
const staticPassScheme = "PLAIN"

type staticPassDB struct {
	tmpl     Template // the other fields (nopassword, allow_nets, ...)
	password string   // unexpanded; "" with hasPass false = none
	hasPass  bool
	opts     Options
	limits   Limits
}

func newStaticPassDB(args string, opts Options) (*staticPassDB, error) {
	f := ParseFields(args)
	db := &staticPassDB{opts: opts, limits: opts.limits()}
	if pw, ok := f.Get("password"); ok {
		db.password, db.hasPass = pw, true
		f.Delete("password")
	}
	if !db.hasPass && !f.Has("nopassword") {
		return nil, fmt.Errorf("passdb static: args need password= or nopassword")
	}
	if name, _ := SplitScheme(db.password); name != "" {
		if _, _, _, err := lookupScheme(name); err != nil {
			return nil, fmt.Errorf("passdb static: %w", err)
		}
	}
	db.tmpl = Template{fields: f}
	if err := db.tmpl.check("passdb static args"); err != nil {
		return nil, err
	}
	if err := checkTemplate("passdb static args password", db.password); err != nil {
		return nil, err
	}
	return db, nil
}

func (s *staticPassDB) LookupCredentials(ctx context.Context, req Request) (string, string, PassResult, error) {
	if err := ctx.Err(); err != nil {
		return "", "", PassResult{}, err
	}
	var res PassResult
	res.Status = PassOK
	var all Fields
	s.tmpl.ApplyTo(&all, req.Vars())
	for _, kv := range all {
		if uk, ok := strings.CutPrefix(kv.Key, "userdb_"); ok {
			res.UserdbFields.Set(uk, kv.Value)
		} else {
			res.Fields.Set(kv.Key, kv.Value)
		}
	}
	stored := ""
	if s.hasPass {
		stored = Expand(s.password, req.Vars())
	}
	return stored, staticPassScheme, res, nil
}

func (s *staticPassDB) Verify(ctx context.Context, req Request, password string) (PassResult, error) {
	stored, scheme, res, err := s.LookupCredentials(ctx, req)
	if err != nil {
		return res, err
	}
	return verifyStored(s.opts, s.limits, "static", req, password, stored, scheme, res), nil
}

// DriverName implements Named.
func (s *staticPassDB) DriverName() string { return "static" }

type staticUserDB struct {
	tmpl          Template
	allowAllUsers bool
}

func newStaticUserDB(args string, _ Options) (*staticUserDB, error) {
	f := ParseFields(args)
	db := &staticUserDB{}
	if v, ok := f.Get("allow_all_users"); ok {
		switch strings.ToLower(v) {
		case "yes", "y", "1", "true":
			db.allowAllUsers = true
		case "no", "n", "0", "false":
		default:
			return nil, fmt.Errorf("userdb static: allow_all_users=%q is not yes or no", v)
		}
		f.Delete("allow_all_users")
	}
	db.tmpl = Template{fields: f}
	if err := db.tmpl.check("userdb static args"); err != nil {
		return nil, err
	}
	return db, nil
}

func (s *staticUserDB) Lookup(ctx context.Context, req Request) (Fields, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	var f Fields
	s.tmpl.ApplyTo(&f, req.Vars())
	return f, true, nil
}

// DriverName implements Named.
func (s *staticUserDB) DriverName() string { return "static" }

func (s *staticUserDB) Iterate(context.Context, func(string) error) error {
	return fmt.Errorf("userdb static: %w", ErrIterateUnsupported)
}

// needsUserCheck reports whether the answers of db must be confirmed by a
// passdb lookup before a user is taken to exist.
func needsUserCheck(db UserDB) bool {
	switch d := db.(type) {
	case *staticUserDB:
		return !d.allowAllUsers
	case *templateUserDB:
		return needsUserCheck(d.inner)
	}
	return false
}
