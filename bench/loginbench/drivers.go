package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// driver is one passdb/userdb set-up measured. conf writes what the
// servers need into dir (readable by Dovecot's unprivileged auth
// processes) and returns the passdb and userdb sections.
type driver struct {
	key, label string
	conf       func(b *backends, dir string) (pass, user db, err error)
}

var drivers = []driver{
	{"passwd-file", "passwd-file", func(b *backends, dir string) (db, db, error) {
		path := filepath.Join(dir, "users")
		if err := os.WriteFile(path, []byte(passwdFile(b.sets, b.uid, b.gid)), 0o644); err != nil {
			return db{}, db{}, err
		}
		return db{"passwd-file", path}, db{"passwd-file", path}, nil
	}},
	{"ldap-bind", "LDAP auth_bind", func(b *backends, dir string) (db, db, error) {
		return ldapDriver(b, dir, true)
	}},
	{"ldap-attrs", "LDAP pass_attrs", func(b *backends, dir string) (db, db, error) {
		return ldapDriver(b, dir, false)
	}},
	{"mysql", "SQL MariaDB", func(b *backends, dir string) (db, db, error) {
		connect, err := b.mariadb()
		if err != nil {
			return db{}, db{}, err
		}
		return writeExt(dir, "dovecot-sql.conf.ext", "sql", sqlConf("mysql", connect))
	}},
	{"pgsql", "SQL PostgreSQL", func(b *backends, dir string) (db, db, error) {
		connect, err := b.postgres()
		if err != nil {
			return db{}, db{}, err
		}
		return writeExt(dir, "dovecot-sql.conf.ext", "sql", sqlConf("pgsql", connect))
	}},
}

func ldapDriver(b *backends, dir string, bind bool) (db, db, error) {
	s, err := b.ldap()
	if err != nil {
		return db{}, db{}, err
	}
	return writeExt(dir, "dovecot-ldap.conf.ext", "ldap", ldapConf(s.URI, s.AdminPW, bind))
}

// writeExt writes a driver's .conf.ext and names it in both sections.
// Its mode is 0644 so that Dovecot's auth processes (user dovecot) can
// read it; the folder is the run's temporary one and its passwords are
// made for the run.
func writeExt(dir, name, driver, text string) (db, db, error) {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return db{}, db{}, fmt.Errorf("write %s: %w", name, err)
	}
	return db{driver, path}, db{driver, path}, nil
}

func findDriver(key string) (driver, bool) {
	for _, d := range drivers {
		if d.key == key {
			return d, true
		}
	}
	return driver{}, false
}
