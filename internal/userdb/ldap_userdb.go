package userdb

import (
	"context"
	"fmt"

	"postcote/internal/ldapx"
)

// ldapUserDB is the userdb side of the ldap driver: user_filter finds
// the entry (exactly one), user_attrs map its attributes to fields
// (homeDirectory=home,uidNumber=uid,gidNumber=gid by default), and
// iterate_filter/iterate_attrs list the users for doveadm user '*'.
type ldapUserDB struct {
	db        *ldapDB
	userAttrs attrMap
	iterAttrs attrMap
}

func newLDAPUserDB(args string, opts Options) (*ldapUserDB, error) {
	db, err := newLDAPDB("userdb", args, opts)
	if err != nil {
		return nil, err
	}
	ua, err := parseAttrMap("user_attrs", db.conf.UserAttrs)
	if err == nil {
		var ia attrMap
		if ia, err = parseAttrMap("iterate_attrs", db.conf.IterateAttrs); err == nil {
			return &ldapUserDB{db: db, userAttrs: ua, iterAttrs: ia}, nil
		}
	}
	db.Close()
	return nil, fmt.Errorf("userdb ldap %s: %w", db.conf.Path, err)
}

// DriverName implements Named.
func (u *ldapUserDB) DriverName() string { return "ldap" }

// Close closes the connections.
func (u *ldapUserDB) Close() error { return u.db.Close() }

// Lookup implements UserDB.
func (u *ldapUserDB) Lookup(ctx context.Context, req Request) (Fields, bool, error) {
	e, err := u.db.findOne(ctx, req, "user_filter", u.db.conf.UserFilter, u.userAttrs.attributes())
	if err != nil {
		return nil, false, fmt.Errorf("userdb ldap: %w", err)
	}
	if e == nil {
		return nil, false, nil
	}
	f := u.userAttrs.fieldsFrom(e, req.Vars(), u.db.warnf(req))
	if f == nil {
		f = Fields{} // found, even with no mapped attribute
	}
	return f, true, nil
}

// Iterate implements UserDB: every value of the attribute mapped to
// "user" in every entry iterate_filter matches under base.
func (u *ldapUserDB) Iterate(ctx context.Context, fn func(string) error) error {
	req := Request{}
	base := Expand(u.db.conf.Base, dnVars(req))
	filter := Expand(u.db.conf.IterateFilter, filterVars(req))
	warn := func(string, ...any) {} // several values are all users here
	err := u.db.pool.SearchEach(ctx, ldapx.SearchRequest{
		Base: base, Scope: u.db.scope, Filter: filter, Attributes: u.iterAttrs.attributes(),
	}, 500, func(e *ldapx.Entry) error {
		for _, a := range u.iterAttrs {
			if a.field != "user" {
				continue
			}
			if a.hasTmpl {
				f := attrMap{a}.fieldsFrom(e, req.Vars(), warn)
				if v := f.Value("user"); v != "" {
					if err := fn(v); err != nil {
						return err
					}
				}
				continue
			}
			for _, v := range e.Values(a.ldapName) {
				if err := fn(v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("userdb ldap iterate: %w", err)
	}
	return nil
}
