package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os/user"
	"strconv"
	"strings"

	"postcote/internal/testenv"
	"postcote/internal/userdb"
)

// domain is the users' mail domain.
const domain = "bench.test"

// Scheme is a password scheme measured: a cheap one and SHA512-CRYPT.
type Scheme struct {
	Key   string // "cheap" or "sha512-crypt"
	Label string
	// Prefix of the user names (cheap0007@bench.test).
	Prefix string
}

var (
	schemeCheap  = Scheme{Key: "cheap", Label: "cheap", Prefix: "cheap"}
	schemeSHA512 = Scheme{Key: "sha512-crypt", Label: "SHA512-CRYPT", Prefix: "crypt"}
	schemes      = []Scheme{schemeCheap, schemeSHA512}
)

// userSet is the users of one scheme, with their passwords in clear and
// the hashes the back ends store.
type userSet struct {
	scheme   Scheme
	accounts []account
	// stored is what a passwd-file or SQL row holds: {PLAIN}pw for the
	// cheap set, {SHA512-CRYPT}$6$… for the other.
	stored []string
	// ldap is the userPassword value: {SSHA} for the cheap set (slapd
	// verifies it itself when the passdb binds as the user, and knows no
	// {PLAIN}), {CRYPT}$6$… for the other (slapd and both servers verify
	// it with crypt(3)'s SHA-512).
	ldap []string
}

// makeUsers makes n users of each scheme with random passwords.
func makeUsers(n int) (map[string]*userSet, error) {
	sets := map[string]*userSet{}
	for _, s := range schemes {
		set := &userSet{scheme: s}
		for i := 0; i < n; i++ {
			secret := make([]byte, 9)
			rand.Read(secret)
			pw := hex.EncodeToString(secret)
			name := fmt.Sprintf("%s%04d@%s", s.Prefix, i, domain)
			var stored, ldap string
			switch s {
			case schemeCheap:
				stored = "{PLAIN}" + pw
				h, err := userdb.Generate("SSHA", pw)
				if err != nil {
					return nil, err
				}
				ldap = h
			default:
				h, err := userdb.Generate("SHA512-CRYPT", pw)
				if err != nil {
					return nil, err
				}
				_, data := userdb.SplitScheme(h)
				stored, ldap = h, "{CRYPT}"+data
			}
			set.accounts = append(set.accounts, account{name, pw})
			set.stored = append(set.stored, stored)
			set.ldap = append(set.ldap, ldap)
		}
		sets[s.Key] = set
	}
	return sets, nil
}

// mailOwner is the uid and gid every user's mail is stored as: nobody's.
// Dovecot refuses root (first_valid_uid), so postcote gets the same.
func mailOwner() (uid, gid int, err error) {
	u, err := user.Lookup("nobody")
	if err != nil {
		return 0, 0, fmt.Errorf("mail owner: %w", err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// passwdFile is the users in Dovecot's passwd-file format
// (user:password:uid:gid:gecos:home:shell:extra); the home is set by the
// userdb's override_fields.
func passwdFile(sets map[string]*userSet, uid, gid int) string {
	var b strings.Builder
	for _, s := range schemes {
		set := sets[s.Key]
		for i, a := range set.accounts {
			fmt.Fprintf(&b, "%s:%s:%d:%d::/nonexistent::\n", a.user, set.stored[i], uid, gid)
		}
	}
	return b.String()
}

// LDAP: the directory is dc=bench,dc=test with one ou=people entry per
// user, uid = the local part, mail = the address.
const (
	ldapSuffix  = "dc=bench,dc=test"
	ldapAdminDN = "cn=admin," + ldapSuffix
)

func ldapEntries(sets map[string]*userSet, uid, gid int) string {
	var b strings.Builder
	b.WriteString("dn: ou=people," + ldapSuffix + "\nobjectClass: organizationalUnit\nou: people\n\n")
	for _, s := range schemes {
		set := sets[s.Key]
		for i, a := range set.accounts {
			local, _, _ := strings.Cut(a.user, "@")
			fmt.Fprintf(&b, "dn: uid=%s,ou=people,%s\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\n"+
				"cn: %s\nsn: %s\nuid: %s\nmail: %s\nhomeDirectory: /nonexistent\nuidNumber: %d\ngidNumber: %d\nuserPassword: %s\n\n",
				local, ldapSuffix, local, local, local, a.user, uid, gid, set.ldap[i])
		}
	}
	return b.String()
}

// ldapConf is a dovecot-ldap.conf.ext in guide 000's shape. With bind,
// the passdb binds as the user (auth_bind_userdn: slapd checks the
// password); without, it searches as the admin and reads userPassword
// (pass_attrs), and the server checks the password itself.
func ldapConf(uri, adminPW string, bind bool) string {
	pass := "auth_bind = no\npass_attrs = mail=user,userPassword=password\n"
	if bind {
		pass = "auth_bind = yes\nauth_bind_userdn = uid=%n,ou=people," + ldapSuffix + "\n"
	}
	return fmt.Sprintf(`uris = %s
dn = %s
dnpass = %s
%sbase = ou=people,%s
scope = subtree
user_attrs = uidNumber=uid,gidNumber=gid
user_filter = (&(objectClass=posixAccount)(mail=%%u))
pass_filter = (&(objectClass=posixAccount)(mail=%%u))
`, uri, ldapAdminDN, adminPW, pass, ldapSuffix)
}

// SQL: guide 002's users table, trimmed to what the queries read.
const usersTable = `CREATE TABLE users (
  username VARCHAR(128) NOT NULL PRIMARY KEY,
  password VARCHAR(255) NOT NULL,
  uid INTEGER NOT NULL,
  gid INTEGER NOT NULL
)`

func sqlInserts(sets map[string]*userSet, uid, gid int) []string {
	var out []string
	for _, s := range schemes {
		set := sets[s.Key]
		for i, a := range set.accounts {
			// Names and hashes are [a-z0-9@.$/{}-], nothing to escape.
			out = append(out, fmt.Sprintf("INSERT INTO users VALUES ('%s', '%s', %d, %d)", a.user, set.stored[i], uid, gid))
		}
	}
	return out
}

// sqlConf is a dovecot-sql.conf.ext in guide 002's shape.
func sqlConf(driver, connect string) string {
	return fmt.Sprintf(`driver = %s
connect = %s
default_pass_scheme = SHA512-CRYPT
password_query = SELECT username AS user, password FROM users WHERE username = '%%u'
user_query = SELECT uid, gid FROM users WHERE username = '%%u'
`, driver, connect)
}

// backends holds the servers the drivers need, started on first use.
type backends struct {
	h        *harness
	sets     map[string]*userSet
	uid, gid int
	slapd    *testenv.Slapd
	mysql    string // connect string, "" until started
	pgsql    string
}

func (b *backends) ldap() (*testenv.Slapd, error) {
	if b.slapd != nil {
		return b.slapd, nil
	}
	err := b.h.do(func() {
		b.slapd = testenv.StartSlapd(b.h, testenv.SlapdOptions{
			Suffix: ldapSuffix, AdminDN: ldapAdminDN, AdminPassword: randomHex(12),
			Indexes: []string{"uid eq", "mail eq"},
			LDIF:    []string{ldapEntries(b.sets, b.uid, b.gid)},
		})
	})
	if err != nil {
		b.slapd = nil
		return nil, fmt.Errorf("slapd: %w", err)
	}
	return b.slapd, nil
}

func (b *backends) mariadb() (string, error) {
	if b.mysql != "" {
		return b.mysql, nil
	}
	pw := randomHex(12)
	err := b.h.do(func() {
		m := testenv.StartMariaDB(b.h)
		m.CreateDatabase("dovecotDB", "dovecot", pw)
		m.Exec("USE dovecotDB; " + usersTable)
		m.Exec(append([]string{"USE dovecotDB"}, sqlInserts(b.sets, b.uid, b.gid)...)...)
		b.mysql = fmt.Sprintf("host=127.0.0.1 port=%d dbname=dovecotDB user=dovecot password=%s", m.Port, pw)
	})
	if err != nil {
		return "", fmt.Errorf("mariadb: %w", err)
	}
	return b.mysql, nil
}

func (b *backends) postgres() (string, error) {
	if b.pgsql != "" {
		return b.pgsql, nil
	}
	pw := randomHex(12)
	err := b.h.do(func() {
		p := testenv.StartPostgres(b.h)
		p.CreateDatabase("dovecotDB", "dovecot", pw)
		p.Exec("dovecotDB", usersTable, "ALTER TABLE users OWNER TO dovecot")
		p.Exec("dovecotDB", sqlInserts(b.sets, b.uid, b.gid)...)
		b.pgsql = fmt.Sprintf("host=127.0.0.1 port=%d dbname=dovecotDB user=dovecot password=%s sslmode=disable", p.Port, pw)
	})
	if err != nil {
		return "", fmt.Errorf("postgresql: %w", err)
	}
	return b.pgsql, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
