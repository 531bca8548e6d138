package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// OpenLDAP's slapd for tests. StartSlapd writes a cn=config tree
// (slapd.d, built with "slapadd -n0" from an LDIF, the way Debian's
// package builds its own), with the core, cosine, inetorgperson and nis
// schemas plus any extra schema LDIF, one mdb database for the suffix, a
// rootdn with a password, and TLS with a certificate issued by a TestCA
// for 127.0.0.1 and localhost. slapd listens on ldap://127.0.0.1:P (with
// StartTLS) and ldaps://127.0.0.1:Q, ports chosen free, and runs in the
// foreground ("-d") as a child of the test, stopped by pid in t.Cleanup.

// SlapdOptions configure StartSlapd. The zero value is a usable
// directory for dc=example,dc=com.
type SlapdOptions struct {
	// Suffix is the database's naming context; "dc=example,dc=com" when
	// empty. The suffix entry itself is created unless an LDIF has it.
	Suffix string
	// AdminDN and AdminPassword are the database's rootdn and rootpw;
	// "cn=admin,<suffix>" and a fixed test password when empty.
	AdminDN, AdminPassword string
	// ExtraSchema are schema files in cn=config LDIF form
	// ("dn: cn=NAME,cn=schema,cn=config" with olcAttributeTypes and
	// olcObjectClasses), added after the standard ones.
	ExtraSchema []string
	// ACL are olcAccess rules in order ("to attrs=userPassword by self
	// write by anonymous auth by * none"); empty means: userPassword
	// readable by nobody but usable to bind, everything else readable by
	// everyone.
	ACL []string
	// Indexes are olcDbIndex values ("uid eq", "mail eq,sub").
	Indexes []string
	// LDIF is loaded with ldapadd, as the admin, once slapd is up.
	LDIF []string
	// CA issues slapd's server certificate; nil makes a new one.
	CA *TestCA
	// Debug is slapd's -d level (0: errors only; see slapd(8)).
	Debug int
}

// Slapd is a running (or stopped) slapd.
type Slapd struct {
	URI      string // ldap://127.0.0.1:PORT (StartTLS available)
	LDAPSURI string // ldaps://127.0.0.1:PORT
	CA       *TestCA
	CAFile   string // PEM of the CA that signed slapd's certificate
	Suffix   string
	AdminDN  string
	AdminPW  string
	Dir      string // holds slapd.d, the database and the TLS files

	t        testing.TB
	bin      string
	ldapAdd  string
	debug    int
	proc     childProc // the running slapd (see mariadb.go)
	ldapPort int
	tlsPort  int
}

const defaultSlapdAdminPassword = "slapd-admin-secret"

// slapdBinaries finds slapd, slapadd and ldapadd (slapd and slapadd live
// in /usr/sbin, which is not on every user's PATH).
func slapdBinaries() (slapd, slapadd, ldapadd string, err error) {
	find := func(name string, dirs ...string) (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return p, nil
			}
		}
		return "", fmt.Errorf("%s not found", name)
	}
	if slapd, err = find("slapd", "/usr/sbin", "/usr/local/libexec", "/usr/libexec"); err != nil {
		return
	}
	if slapadd, err = find("slapadd", "/usr/sbin", "/usr/local/sbin"); err != nil {
		return
	}
	ldapadd, err = find("ldapadd", "/usr/bin", "/usr/local/bin")
	return
}

// StartSlapd starts slapd with opts and registers its stop with
// t.Cleanup. Without slapd installed the test is skipped when not root,
// and fails when root (make test installs it: scripts/install-test-deps.sh).
func StartSlapd(t testing.TB, opts SlapdOptions) *Slapd {
	t.Helper()
	bin, slapadd, ldapadd, err := slapdBinaries()
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("OpenLDAP slapd not installed (%v): install the Debian packages slapd and ldap-utils, or run make test as root", err)
		}
		t.Fatalf("OpenLDAP slapd not installed (%v): run scripts/install-test-deps.sh", err)
	}
	s := &Slapd{
		t: t, bin: bin, ldapAdd: ldapadd, debug: opts.Debug,
		Suffix: opts.Suffix, AdminDN: opts.AdminDN, AdminPW: opts.AdminPassword, CA: opts.CA,
		Dir: t.TempDir(),
	}
	if s.Suffix == "" {
		s.Suffix = "dc=example,dc=com"
	}
	if s.AdminDN == "" {
		s.AdminDN = "cn=admin," + s.Suffix
	}
	if s.AdminPW == "" {
		s.AdminPW = defaultSlapdAdminPassword
	}
	if s.CA == nil {
		s.CA = NewTestCA(t, "postcote slapd test CA")
	}
	s.CAFile = s.CA.WriteCert(t, s.Dir)
	certPEM, keyPEM := s.CA.Issue(t, "127.0.0.1", "localhost")
	certFile, keyFile := filepath.Join(s.Dir, "server.pem"), filepath.Join(s.Dir, "server.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"slapd.d", "data"} {
		if err := os.Mkdir(filepath.Join(s.Dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	conf := s.configLDIF(opts, certFile, keyFile)
	confFile := filepath.Join(s.Dir, "config.ldif")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(slapadd, "-n0", "-F", filepath.Join(s.Dir, "slapd.d"), "-l", confFile).CombinedOutput()
	if err != nil {
		t.Fatalf("slapadd -n0 (building cn=config): %v\n%s", err, out)
	}
	t.Cleanup(s.Stop)

	// A port found free may be taken before slapd binds it; try again
	// with new ones.
	for attempt := 0; ; attempt++ {
		ports := FreePorts(t, 2)
		s.ldapPort, s.tlsPort = ports[0], ports[1]
		s.URI = fmt.Sprintf("ldap://127.0.0.1:%d", s.ldapPort)
		s.LDAPSURI = fmt.Sprintf("ldaps://127.0.0.1:%d", s.tlsPort)
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("slapd did not start: %v\n%s", err, s.Log())
		}
	}

	ldif := strings.Join(opts.LDIF, "\n\n")
	if !hasEntry(ldif, s.Suffix) {
		ldif = suffixEntry(s.Suffix) + "\n\n" + ldif
	}
	s.Add(ldif)
	return s
}

// configLDIF renders the cn=config tree.
func (s *Slapd) configLDIF(opts SlapdOptions, certFile, keyFile string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: %s
olcTLSCACertificateFile: %s
olcTLSCertificateFile: %s
olcTLSCertificateKeyFile: %s

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

`, filepath.Join(s.Dir, "slapd.pid"), s.CAFile, certFile, keyFile)
	for _, name := range []string{"core", "cosine", "inetorgperson", "nis"} {
		fmt.Fprintf(&b, "include: file:///etc/ldap/schema/%s.ldif\n\n", name)
	}
	for _, p := range opts.ExtraSchema {
		abs, err := filepath.Abs(p)
		if err != nil {
			s.t.Fatal(err)
		}
		fmt.Fprintf(&b, "include: file://%s\n\n", abs)
	}
	fmt.Fprintf(&b, `dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcRootDN: cn=admin,cn=config
olcRootPW: %s

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: %s
olcDbDirectory: %s
olcDbMaxSize: 67108864
olcRootDN: %s
olcRootPW: %s
`, s.AdminPW, s.Suffix, filepath.Join(s.Dir, "data"), s.AdminDN, s.AdminPW)
	acl := opts.ACL
	if len(acl) == 0 {
		acl = []string{
			"to attrs=userPassword by self write by anonymous auth by * none",
			"to * by * read",
		}
	}
	for i, a := range acl {
		fmt.Fprintf(&b, "olcAccess: {%d}%s\n", i, strings.Join(strings.Fields(a), " "))
	}
	for _, ix := range opts.Indexes {
		fmt.Fprintf(&b, "olcDbIndex: %s\n", ix)
	}
	return b.String()
}

// hasEntry reports whether ldif holds an entry named dn.
func hasEntry(ldif, dn string) bool {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }
	for _, line := range strings.Split(ldif, "\n") {
		if v, ok := strings.CutPrefix(line, "dn:"); ok && norm(v) == norm(dn) {
			return true
		}
	}
	return false
}

// suffixEntry is the LDIF of the naming context's own entry.
func suffixEntry(suffix string) string {
	first, _, _ := strings.Cut(suffix, ",")
	attr, val, _ := strings.Cut(first, "=")
	switch strings.ToLower(strings.TrimSpace(attr)) {
	case "dc":
		return fmt.Sprintf("dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: %s\no: %s\n", suffix, val, val)
	case "o":
		return fmt.Sprintf("dn: %s\nobjectClass: organization\no: %s\n", suffix, val)
	case "ou":
		return fmt.Sprintf("dn: %s\nobjectClass: organizationalUnit\nou: %s\n", suffix, val)
	}
	return fmt.Sprintf("dn: %s\nobjectClass: top\nobjectClass: extensibleObject\n%s: %s\n", suffix, attr, val)
}

// Start starts slapd again after Stop, on the same ports and data.
func (s *Slapd) Start() {
	s.t.Helper()
	if err := s.start(); err != nil {
		s.t.Fatalf("slapd did not start again: %v\n%s", err, s.Log())
	}
}

func (s *Slapd) start() error {
	s.proc.name, s.proc.bin = "slapd", s.bin
	s.proc.args = []string{"-h", s.URI + "/ " + s.LDAPSURI + "/", "-F", filepath.Join(s.Dir, "slapd.d"), "-d", fmt.Sprint(s.debug)}
	if err := s.proc.start(nil); err != nil {
		return err
	}
	// Ready when both the ldap:// and the ldaps:// ports answer.
	if err := s.proc.waitReady(10*time.Second, s.ldapPort, func(ctx context.Context) error {
		return waitPort(ctx, Addr(s.tlsPort), nil)
	}); err != nil {
		s.Stop()
		return err
	}
	return nil
}

// Stop stops slapd (SIGTERM, then SIGKILL) and waits until it has
// exited. Stopping a stopped slapd does nothing.
func (s *Slapd) Stop() { s.proc.stop() }

// Running reports whether slapd is up.
func (s *Slapd) Running() bool { return s.proc.running() }

// Add loads LDIF entries with ldapadd, bound as the admin.
func (s *Slapd) Add(ldif string) {
	s.t.Helper()
	if strings.TrimSpace(ldif) == "" {
		return
	}
	pwFile := filepath.Join(s.Dir, "admin.pw")
	if err := os.WriteFile(pwFile, []byte(s.AdminPW), 0o600); err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.ldapAdd, "-x", "-H", s.URI, "-D", s.AdminDN, "-y", pwFile)
	cmd.Stdin = strings.NewReader(ldif)
	// ldapadd must not read the machine's ldap.conf or ~/.ldaprc.
	cmd.Env = append(os.Environ(), "LDAPNOINIT=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("ldapadd: %v\n%s", err, out)
	}
}

// Log returns what slapd printed.
func (s *Slapd) Log() string { return s.proc.Log() }

// Addr returns the ldap:// listener's host:port.
func (s *Slapd) Addr() string { return Addr(s.ldapPort) }
