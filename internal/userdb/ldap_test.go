package userdb

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/maillog"
	"postcote/internal/sasl"
	"postcote/internal/testenv"
)

// Tests of the ldap passdb/userdb against a real slapd loaded with the
// directories of guides 000 and 001 (testdata/ldap).

const (
	hanPassword     = "Han-s0lo pass"
	leiaPassword    = "Leia pass 2"
	mail000Password = "mail000 secret"
	mail001Password = "mail001 secret"
	readerPassword  = "reader-S3cret-dnpass"
	guide000DNPass  = "Passw0rd" // guide 000's dnpass, also the rootpw here
)

func readTestdata(t testing.TB, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ldap", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// setConf returns conf with each key of set replaced (or appended when
// absent); an empty value removes the key.
func setConf(conf string, set ...string) string {
	lines := strings.Split(conf, "\n")
	for i := 0; i+1 < len(set); i += 2 {
		key, val := set[i], set[i+1]
		found := false
		for j, l := range lines {
			k, _, ok := strings.Cut(l, "=")
			if ok && strings.TrimSpace(k) == key && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				found = true
				if val == "" {
					lines[j] = ""
				} else {
					lines[j] = key + " = " + val
				}
			}
		}
		if !found && val != "" {
			lines = append(lines, key+" = "+val)
		}
	}
	return strings.Join(lines, "\n")
}

func writeConf(t testing.TB, conf string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dovecot-ldap.conf.ext")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// slappasswd hashes pw with OpenLDAP's own tool, so that the test also
// checks postcote's scheme code against OpenLDAP's hashes.
func slappasswd(t testing.TB, scheme, pw string) string {
	t.Helper()
	bin, err := exec.LookPath("slappasswd")
	if err != nil {
		bin = "/usr/sbin/slappasswd"
	}
	out, err := exec.Command(bin, "-h", scheme, "-s", pw).Output()
	if err != nil {
		t.Skipf("slappasswd: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// guide000 starts slapd with guide 000's directory and returns it with
// the guide's dovecot-ldap.conf.ext pointed at it.
func guide000(t testing.TB) (*testenv.Slapd, string) {
	t.Helper()
	hanHash, err := Generate("SSHA", hanPassword)
	if err != nil {
		t.Fatal(err)
	}
	leiaHash, err := Generate("SSHA512", leiaPassword)
	if err != nil {
		t.Fatal(err)
	}
	ldif := strings.NewReplacer("@HAN_PASSWORD@", hanHash, "@LEIA_PASSWORD@", leiaHash).Replace(readTestdata(t, "guide000.ldif"))
	// slapd verifies {SSHA} itself; {SSHA512} needs a module, so leia's
	// hash is for the pass_attrs tests, where postcote verifies it.
	s := testenv.StartSlapd(t, testenv.SlapdOptions{
		Suffix: "dc=company,dc=com", AdminDN: "cn=admin,dc=company,dc=com", AdminPassword: guide000DNPass,
		LDIF: []string{ldif},
	})
	conf := strings.Replace(readTestdata(t, "guide000-dovecot-ldap.conf.ext"), "ldap://int-srv.company.com", s.URI, 1)
	return s, conf
}

// guide001 starts slapd with guide 001's schema, ACL and directory, and
// returns it with the guide's dovecot-ldap.conf.ext pointed at it.
func guide001(t testing.TB) (*testenv.Slapd, string) {
	t.Helper()
	ldif := strings.NewReplacer(
		"@READER_PASSWORD@", slappasswd(t, "{SSHA}", readerPassword),
		"@MAIL000_PASSWORD@", slappasswd(t, "{SSHA}", mail000Password),
		"@MAIL001_PASSWORD@", slappasswd(t, "{SSHA}", mail001Password),
	).Replace(readTestdata(t, "guide001.ldif"))
	s := testenv.StartSlapd(t, testenv.SlapdOptions{
		ExtraSchema: []string{filepath.Join("testdata", "ldap", "postfix.ldif")},
		// The guide's ACL.
		ACL: []string{
			`to attrs=userPassword by self =xw by anonymous auth by * none`,
			`to dn.subtree="ou=Mail,dc=example,dc=com" by dn.base="cn=mailAccountReader,ou=Manager,dc=example,dc=com" read by * none`,
		},
		Indexes: []string{"mailacceptinggeneralid eq,sub", "maildrop eq", "uid eq"},
		LDIF:    []string{ldif},
	})
	conf := strings.NewReplacer("@URI@", s.URI, "@DNPASS@", readerPassword, "@CAFILE@", s.CAFile).
		Replace(readTestdata(t, "guide001-dovecot-ldap.conf.ext"))
	return s, conf
}

type ldapEnv struct {
	pass    PassDB
	user    UserDB
	checker *Checker
	log     *maillog.Buffer
}

// newLDAPEnv builds the passdb and userdb of conf and a Checker over
// them (no failure delay; auth_debug on, so that the log shows every
// line there is).
func newLDAPEnv(t testing.TB, conf string) *ldapEnv {
	t.Helper()
	return newLDAPEnvDebug(t, conf, true)
}

func newLDAPEnvDebug(t testing.TB, conf string, debug bool) *ldapEnv {
	t.Helper()
	path := writeConf(t, conf)
	buf := &maillog.Buffer{}
	log := maillog.New(buf, "test", false)
	log.SetDebug(debug)
	opts := Options{Log: log, Verbose: true, IDs: testIDs}
	p, err := NewPassDB("ldap", path, opts)
	if err != nil {
		t.Fatal(err)
	}
	u, err := NewUserDB("ldap", path, "", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.(interface{ Close() error }).Close()
		u.(interface{ Close() error }).Close()
	})
	co := DefaultCheckerOptions()
	co.Log, co.Verbose, co.IDs, co.FailureDelay, co.MaxFailureDelay = log, true, testIDs, 0, 0
	return &ldapEnv{pass: p, user: u, checker: NewChecker([]PassDB{p}, []UserDB{u}, co), log: buf}
}

func tctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestLDAPGuide000AuthBindUserDN(t *testing.T) {
	s, conf := guide000(t)
	env := newLDAPEnv(t, conf)

	if _, ok := env.pass.(CredentialsDB); ok {
		t.Error("an auth_bind passdb offers LookupCredentials")
	}
	for _, tc := range []struct {
		user, pw string
		want     PassStatus
	}{
		{"han@company.com", hanPassword, PassOK},
		{"han@company.com", "wrong", PassMismatch},
		{"han@company.com", "", PassMismatch},
		{"han", hanPassword, PassOK}, // %n of "han" is "han": the DN is the same
		{"nobody@company.com", hanPassword, PassMismatch},
	} {
		res, err := env.pass.Verify(tctx(t), Request{User: tc.user, Service: "imap"}, tc.pw)
		if err != nil || res.Status != tc.want {
			t.Errorf("Verify(%q, %q) = %v, %v; want %v", tc.user, tc.pw, res.Status, err, tc.want)
		}
	}

	// Through the Checker, as IMAP and SMTP AUTH call it.
	user, err := env.checker.CheckPassword(tctx(t), sreq("han@company.com", hanPassword))
	if err != nil || user != "han@company.com" {
		t.Fatalf("CheckPassword = %q, %v", user, err)
	}
	if _, err := env.checker.CheckPassword(tctx(t), sreq("han@company.com", "nope")); !errors.Is(err, sasl.ErrAuthFailed) || errors.Is(err, sasl.ErrTempFail) {
		t.Fatalf("wrong password: %v", err)
	}

	info, found, err := env.checker.LookupUser(tctx(t), "lmtp", "han@company.com")
	if err != nil || !found {
		t.Fatalf("LookupUser: %v %v", found, err)
	}
	if info.Home != "/home/han" || info.UID != 3001 || info.GID != 3001 {
		t.Errorf("LookupUser = %+v", info)
	}
	if _, found, err := env.checker.LookupUser(tctx(t), "lmtp", "nobody@company.com"); found || err != nil {
		t.Errorf("unknown user: %v %v", found, err)
	}

	var users []string
	if err := env.checker.IterateUsers(tctx(t), func(u string) error { users = append(users, u); return nil }); err != nil {
		t.Fatal(err)
	}
	if strings.Join(users, ",") != "han,leia" {
		t.Errorf("iterate = %v", users)
	}
	_ = s
}

// TestLDAPInjection: names made to widen a filter or change a DN log in
// as nobody, whatever the driver mode, even with the Checker's
// auth_username_chars switched off.
func TestLDAPInjection(t *testing.T) {
	_, conf := guide000(t)
	modes := map[string]string{
		"auth_bind_userdn": conf,
		"search+bind":      setConf(conf, "auth_bind_userdn", ""),
		"pass_attrs":       setConf(conf, "auth_bind", "no"),
	}
	// Not in the list: "han@<anything>" in the auth_bind_userdn mode,
	// whose template uid=%n ignores the domain by design (as in
	// Dovecot), and " han", which the directory itself equates with
	// "han" (RFC 4518 insignificant space handling), as it equates "HAN".
	names := []string{
		"*", "*@company.com", "h*", "han*", ")(uid=*", "han)(mail=*@company.com",
		"*)(objectClass=*", `han\`, `han\2a`, "han\x00", "han\x00@company.com", "%", "%u", "%{user}",
		"han,ou=people,dc=company,dc=com", "han+cn=Han", "#han", "uid=han", "han\n",
	}
	searchOnly := []string{"han@company.com)(mail=*", "han@company.com\x00", "han@company.com*", "han@company.com)"}
	for mode, c := range modes {
		t.Run(mode, func(t *testing.T) {
			names := names
			if mode != "auth_bind_userdn" {
				names = append(names, searchOnly...)
			}
			env := newLDAPEnv(t, c)
			co := DefaultCheckerOptions()
			co.UsernameChars, co.UsernameFormat = "", "%u" // let everything through to the driver
			co.FailureDelay, co.MaxFailureDelay, co.IDs = 0, 0, testIDs
			ch := NewChecker([]PassDB{env.pass}, []UserDB{env.user}, co)
			for _, name := range names {
				for _, pw := range []string{hanPassword, leiaPassword, ""} {
					res, err := env.pass.Verify(tctx(t), Request{User: name, Service: "imap"}, pw)
					if err == nil && res.Status == PassOK {
						t.Errorf("%q with a real password logged in", name)
					}
					if u, err := ch.CheckPassword(tctx(t), sreq(name, pw)); err == nil {
						t.Errorf("Checker: %q logged in as %q", name, u)
					}
				}
				if _, found, err := env.user.Lookup(tctx(t), Request{User: name}); found || (err != nil && !strings.Contains(err.Error(), "multiple")) {
					t.Errorf("userdb %q: found=%v err=%v", name, found, err)
				}
			}
			// The real user still works in this mode.
			if res, err := env.pass.Verify(tctx(t), Request{User: "han@company.com"}, hanPassword); err != nil || res.Status != PassOK {
				t.Errorf("han: %v %v", res.Status, err)
			}
		})
	}
}

func TestLDAPSearchModes(t *testing.T) {
	_, conf := guide000(t)

	t.Run("search then bind", func(t *testing.T) {
		env := newLDAPEnv(t, setConf(conf, "auth_bind_userdn", ""))
		res, err := env.pass.Verify(tctx(t), Request{User: "han@company.com"}, hanPassword)
		if err != nil || res.Status != PassOK || res.Fields.Value("user") != "han@company.com" || res.Fields.Has("password") {
			t.Fatalf("Verify = %+v, %v", res, err)
		}
		if res, err := env.pass.Verify(tctx(t), Request{User: "han@company.com"}, "bad"); err != nil || res.Status != PassMismatch {
			t.Fatalf("wrong password: %v %v", res.Status, err)
		}
		if res, err := env.pass.Verify(tctx(t), Request{User: "ghost@company.com"}, hanPassword); err != nil || res.Status != PassUnknownUser {
			t.Fatalf("unknown: %v %v", res.Status, err)
		}
	})
	t.Run("several entries match", func(t *testing.T) {
		env := newLDAPEnv(t, setConf(conf, "auth_bind_userdn", "", "pass_filter", "(&(objectClass=posixAccount)(mail=*%d))"))
		_, err := env.pass.Verify(tctx(t), Request{User: "han@company.com"}, hanPassword)
		if err == nil || !strings.Contains(err.Error(), "multiple") {
			t.Fatalf("err = %v", err)
		}
		if _, err := env.checker.CheckPassword(tctx(t), sreq("han@company.com", hanPassword)); err == nil {
			t.Fatal("login succeeded")
		}
	})
	t.Run("password from pass_attrs", func(t *testing.T) {
		// The rootdn may read userPassword; postcote verifies the hash.
		env := newLDAPEnv(t, setConf(conf, "auth_bind", "no"))
		for _, tc := range []struct {
			user, pw string
			want     PassStatus
		}{
			{"han@company.com", hanPassword, PassOK},
			{"leia@company.com", leiaPassword, PassOK}, // {SSHA512}: slapd could not check it, postcote can
			{"leia@company.com", hanPassword, PassMismatch},
			{"han@company.com", "", PassMismatch},
			{"x@company.com", "", PassUnknownUser},
		} {
			res, err := env.pass.Verify(tctx(t), Request{User: tc.user}, tc.pw)
			if err != nil || res.Status != tc.want {
				t.Errorf("%s/%q: %v %v", tc.user, tc.pw, res.Status, err)
			}
		}
		stored, _, res, err := env.pass.(CredentialsDB).LookupCredentials(tctx(t), Request{User: "han@company.com"})
		if err != nil || res.Status != PassOK || !strings.HasPrefix(stored, "{SSHA}") {
			t.Fatalf("LookupCredentials = %q %v %v", stored, res.Status, err)
		}
	})
	t.Run("no password readable", func(t *testing.T) {
		// Anonymous searches cannot read userPassword (the default ACL):
		// a mismatch, not a crash, not a success.
		env := newLDAPEnv(t, setConf(conf, "auth_bind", "no", "dn", "", "dnpass", ""))
		res, err := env.pass.Verify(tctx(t), Request{User: "han@company.com"}, hanPassword)
		if err != nil || res.Status != PassMismatch {
			t.Fatalf("%v %v", res.Status, err)
		}
	})
	t.Run("templates", func(t *testing.T) {
		env := newLDAPEnv(t, setConf(conf,
			"user_attrs", "=home=%{ldap:homeDirectory}/mail, uidNumber=uid, gidNumber=gid, =mail=maildir:~/Maildir, =quota_rule=*:storage=%{ldap:mailQuota:1G}, =user=%{ldap:uid}@%d, cn=gecos, loginShell=shell, =groups=%{ldap_multi:objectClass:;}",
			"pass_attrs", "mail=user, =userdb_home=%{ldap:homeDirectory}, =allow_nets=127.0.0.0/8",
			"auth_bind_userdn", ""))
		f, found, err := env.user.Lookup(tctx(t), Request{User: "han@company.com"})
		if err != nil || !found {
			t.Fatal(found, err)
		}
		want := map[string]string{"home": "/home/han/mail", "uid": "3001", "gid": "3001", "mail": "maildir:~/Maildir",
			"quota_rule": "*:storage=1G", "user": "han@company.com", "gecos": "Han", "shell": "/bin/bash",
			"groups": "inetOrgPerson;posixAccount;shadowAccount"}
		for k, v := range want {
			if f.Value(k) != v {
				t.Errorf("%s = %q, want %q (all: %s)", k, f.Value(k), v, f)
			}
		}
		// leia has no loginShell: the plain mapping sets nothing.
		f, _, _ = env.user.Lookup(tctx(t), Request{User: "leia@company.com"})
		if f.Has("shell") {
			t.Errorf("shell set without the attribute: %s", f)
		}
		res, err := env.pass.Verify(tctx(t), Request{User: "han@company.com"}, hanPassword)
		if err != nil || res.Status != PassOK || res.UserdbFields.Value("home") != "/home/han" || res.Fields.Value("allow_nets") != "127.0.0.0/8" {
			t.Fatalf("passdb fields: %+v %v", res, err)
		}
		// allow_nets from the directory is applied by the Checker.
		if _, err := env.checker.CheckPassword(tctx(t), sreq("han@company.com", hanPassword)); err == nil {
			t.Error("allow_nets from pass_attrs not applied")
		}
	})
	t.Run("scope", func(t *testing.T) {
		for scope, found := range map[string]bool{"base": false, "onelevel": true, "subtree": true} {
			env := newLDAPEnv(t, setConf(conf, "scope", scope))
			_, ok, err := env.user.Lookup(tctx(t), Request{User: "han@company.com"})
			if err != nil || ok != found {
				t.Errorf("scope %s: found=%v err=%v", scope, ok, err)
			}
		}
		env := newLDAPEnv(t, setConf(conf, "scope", "base", "base", "uid=%n,ou=people,dc=company,dc=com"))
		if _, ok, err := env.user.Lookup(tctx(t), Request{User: "han@company.com"}); err != nil || !ok {
			t.Errorf("base = uid=%%n: %v %v", ok, err)
		}
		if _, ok, err := env.user.Lookup(tctx(t), Request{User: "ghost@company.com"}); err != nil || ok {
			t.Errorf("base of an unknown user: %v %v", ok, err)
		}
	})
}

func TestLDAPGuide001TLS(t *testing.T) {
	s, conf := guide001(t)

	check := func(t *testing.T, env *ldapEnv) {
		t.Helper()
		user, err := env.checker.CheckPassword(tctx(t), sreq("mail000", mail000Password))
		if err != nil || user != "mail000" {
			t.Fatalf("login: %q %v\n%s", user, err, env.log.String())
		}
		if _, err := env.checker.CheckPassword(tctx(t), sreq("mail000", mail001Password)); !errors.Is(err, sasl.ErrAuthFailed) {
			t.Fatalf("wrong password: %v", err)
		}
		info, found, err := env.checker.LookupUser(tctx(t), "imap", "mail000")
		if err != nil || !found || info.Home != "/home/mail/mail000" || info.UID != 20000 || info.GID != 20000 {
			t.Fatalf("LookupUser = %+v %v %v", info, found, err)
		}
	}
	t.Run("StartTLS as in the guide", func(t *testing.T) {
		check(t, newLDAPEnv(t, conf))
	})
	t.Run("ldaps", func(t *testing.T) {
		check(t, newLDAPEnv(t, setConf(conf, "uris", s.LDAPSURI, "tls", "no", "tls_require_cert", "demand")))
	})
	t.Run("several URIs, first down", func(t *testing.T) {
		check(t, newLDAPEnv(t, setConf(conf, "uris", "ldap://127.0.0.1:1 "+s.URI)))
	})
	t.Run("hosts instead of uris", func(t *testing.T) {
		check(t, newLDAPEnv(t, setConf(conf, "uris", "", "hosts", s.Addr())))
	})
	t.Run("certificate from another CA refused", func(t *testing.T) {
		other := testenv.NewTestCA(t, "not slapd's CA").WriteCert(t, t.TempDir())
		for _, c := range []string{
			setConf(conf, "tls_ca_cert_file", other, "tls_require_cert", "demand"),
			setConf(conf, "tls_ca_cert_file", other, "uris", s.LDAPSURI, "tls", "no"),
		} {
			env := newLDAPEnv(t, c)
			_, err := env.checker.CheckPassword(tctx(t), sreq("mail000", mail000Password))
			if !errors.Is(err, sasl.ErrTempFail) || errors.Is(err, sasl.ErrAuthFailed) {
				t.Fatalf("err = %v", err)
			}
			if _, _, err := env.checker.LookupUser(tctx(t), "imap", "mail000"); !errors.Is(err, sasl.ErrTempFail) {
				t.Fatalf("LookupUser err = %v", err)
			}
		}
		// tls_require_cert = never accepts it, as OpenLDAP does.
		check(t, newLDAPEnv(t, setConf(conf, "tls_ca_cert_file", other, "tls_require_cert", "never")))
	})
	t.Run("login by alias with search+bind", func(t *testing.T) {
		env := newLDAPEnv(t, setConf(conf, "auth_bind_userdn", "",
			"pass_filter", "(&(objectClass=postfixUser)(|(uid=%u)(mailacceptinggeneralid=%u)))",
			"pass_attrs", "uid=user"))
		user, err := env.checker.CheckPassword(tctx(t), sreq("info@example.org", mail000Password))
		if err != nil || user != "mail000" {
			t.Fatalf("alias login: %q %v", user, err)
		}
		// An alias two entries share is ambiguous: no login.
		if _, err := env.checker.CheckPassword(tctx(t), sreq("shared@example.org", mail000Password)); err == nil {
			t.Fatal("ambiguous alias logged in")
		}
		if _, err := env.checker.CheckPassword(tctx(t), sreq("*@example.org", mail000Password)); err == nil {
			t.Fatal("wildcard logged in")
		}
	})
	t.Run("slappasswd hash verified by postcote", func(t *testing.T) {
		// The reader may read ou=Mail but not userPassword; the rootdn can.
		env := newLDAPEnv(t, setConf(conf, "auth_bind", "no", "dn", s.AdminDN, "dnpass", s.AdminPW,
			"pass_attrs", "uid=user,userPassword=password", "pass_filter", "(&(objectClass=posixAccount)(uid=%u))"))
		if res, err := env.pass.Verify(tctx(t), Request{User: "mail000"}, mail000Password); err != nil || res.Status != PassOK {
			t.Fatalf("%v %v", res.Status, err)
		}
	})
}

// TestLDAPServerDown: a directory that stops answering gives a temporary
// failure (IMAP [UNAVAILABLE], SMTP 454 4.7.0), never a wrong password;
// once it is back the next login works on a new connection.
func TestLDAPServerDown(t *testing.T) {
	s, conf := guide001(t)
	for name, c := range map[string]string{
		"auth_bind_userdn": conf,
		"search+bind":      setConf(conf, "auth_bind_userdn", ""),
	} {
		t.Run(name, func(t *testing.T) {
			env := newLDAPEnv(t, c)
			if _, err := env.checker.CheckPassword(tctx(t), sreq("mail000", mail000Password)); err != nil {
				t.Fatal(err)
			}
			s.Stop()
			for _, pw := range []string{mail000Password, "wrong"} {
				_, err := env.checker.CheckPassword(tctx(t), sreq("mail000", pw))
				if !errors.Is(err, sasl.ErrTempFail) || errors.Is(err, sasl.ErrAuthFailed) {
					t.Errorf("while down (%q): %v", pw, err)
				}
			}
			if _, _, err := env.checker.LookupUser(tctx(t), "lmtp", "mail000"); !errors.Is(err, sasl.ErrTempFail) {
				t.Errorf("LookupUser while down: %v", err)
			}
			s.Start()
			if u, err := env.checker.CheckPassword(tctx(t), sreq("mail000", mail000Password)); err != nil || u != "mail000" {
				t.Fatalf("after restart: %q %v", u, err)
			}
			if _, found, err := env.checker.LookupUser(tctx(t), "lmtp", "mail000"); err != nil || !found {
				t.Fatalf("LookupUser after restart: %v %v", found, err)
			}
		})
	}
}

// TestLDAPDNPassNeverLogged runs logins of every kind, failures
// included, with auth_debug and debug_level = -1, and a wrong dnpass, and
// looks for the bind passwords in the log.
func TestLDAPDNPassNeverLogged(t *testing.T) {
	s, conf := guide001(t)
	var logs []string
	for _, c := range []string{
		setConf(conf, "debug_level", "-1"),
		setConf(conf, "debug_level", "-1", "auth_bind_userdn", ""),
		setConf(conf, "debug_level", "-1", "auth_bind_userdn", "", "dnpass", "wrong-"+readerPassword),
		setConf(conf, "debug_level", "-1", "auth_bind", "no", "dn", s.AdminDN, "dnpass", s.AdminPW),
	} {
		env := newLDAPEnv(t, c)
		for _, pw := range []string{mail000Password, "bad", ""} {
			env.checker.CheckPassword(tctx(t), sreq("mail000", pw))
		}
		env.checker.LookupUser(tctx(t), "imap", "mail000")
		logs = append(logs, env.log.String())
	}
	all := strings.Join(logs, "\n")
	if !strings.Contains(all, "debug: ldap: search") {
		t.Fatalf("debug lines missing; log:\n%s", all)
	}
	for _, secret := range []string{readerPassword, s.AdminPW, mail000Password} {
		if strings.Contains(all, secret) {
			t.Errorf("log contains a password %q:\n%s", secret, all)
		}
	}
}

func TestLDAPConfigErrors(t *testing.T) {
	opts, _ := testOptions(t)
	good := "uris = ldap://127.0.0.1:1\nbase = dc=example,dc=com\n"
	for name, conf := range map[string]string{
		"sasl_bind":          good + "sasl_bind = yes\n",
		"bad scope":          good + "scope = everything\n",
		"bad require cert":   good + "tls_require_cert = sometimes\n",
		"no uris":            "base = dc=x\n",
		"no base":            "uris = ldap://127.0.0.1:1\n",
		"bad attr map":       good + "user_attrs = =home\n",
		"unknown variable":   good + "user_filter = (uid=%Z)\n",
		"missing CA file":    good + "tls = yes\ntls_ca_cert_file = /nonexistent/ca.pem\n",
		"dn without dnpass":  good + "dn = cn=admin,dc=example,dc=com\n",
		"bad default scheme": good + "default_pass_scheme = ROT13\n",
	} {
		path := writeConf(t, conf)
		_, perr := NewPassDB("ldap", path, opts)
		_, uerr := NewUserDB("ldap", path, "", "", opts)
		if perr == nil && uerr == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := NewPassDB("ldap", "", opts); err == nil {
		t.Error("empty args accepted")
	}
	if _, err := NewPassDB("ldap", filepath.Join(t.TempDir(), "missing.conf.ext"), opts); err == nil {
		t.Error("missing file accepted")
	}
	// A directory that is down at start-up is not a configuration error.
	if _, err := NewPassDB("ldap", writeConf(t, good), opts); err != nil {
		t.Errorf("down at start-up: %v", err)
	}
	// Settings postcote cannot apply as written are accepted with a
	// warning.
	wopts, log := testOptions(t)
	if _, err := NewPassDB("ldap", writeConf(t, good+"ldap_version = 2\ntls_cipher_suite = HIGH:!aNULL\n"), wopts); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"ldap_version = 2 ignored", "tls_cipher_suite ignored"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("no warning %q in:\n%s", w, log.String())
		}
	}
}
