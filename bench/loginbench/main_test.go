package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	o, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.users != 200 || len(o.clients) != 2 || o.clients[0] != 1 || o.clients[1] != 10 || o.rounds != 2 ||
		len(o.drivers) != 5 || len(o.schemes) != 2 || o.mech != MechLogin || o.duration != 5*time.Second {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseFlags(strings.Fields("-clients 3 -drivers mysql,passwd-file -schemes cheap -mech plain -logins 50 -duration 0 -only postcote -dovecot-login high-performance"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if o.clients[0] != 3 || o.drivers[0].key != "mysql" || o.drivers[1].key != "passwd-file" || len(o.schemes) != 1 ||
		o.mech != MechPlain || o.logins != 50 || o.dovecot || !o.dovecotPerf {
		t.Errorf("parsed: %+v", o)
	}
	for _, bad := range []string{
		"-clients 0", "-clients x", "-drivers nis", "-schemes md5", "-mech cram", "-users 0",
		"-duration 0", "-rounds 0", "-only postfix", "-dovecot-login fast", "extra",
		"-duration 2h", "-timeout 0",
	} {
		if _, err := parseFlags(strings.Fields(bad), &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMakeUsersAndFiles(t *testing.T) {
	sets, err := makeUsers(3)
	if err != nil {
		t.Fatal(err)
	}
	cheap, crypt := sets["cheap"], sets["sha512-crypt"]
	if len(cheap.accounts) != 3 || len(crypt.accounts) != 3 || cheap.accounts[1].user != "cheap0001@bench.test" {
		t.Fatalf("users: %+v %+v", cheap, crypt)
	}
	if !strings.HasPrefix(cheap.stored[0], "{PLAIN}") || !strings.HasPrefix(cheap.ldap[0], "{SSHA}") ||
		!strings.HasPrefix(crypt.stored[0], "{SHA512-CRYPT}$6$") || !strings.HasPrefix(crypt.ldap[0], "{CRYPT}$6$") {
		t.Errorf("stored: %q %q %q %q", cheap.stored[0], cheap.ldap[0], crypt.stored[0], crypt.ldap[0])
	}
	if cheap.accounts[0].pass == cheap.accounts[1].pass {
		t.Error("two users share a password")
	}
	pf := passwdFile(sets, 65534, 65534)
	if n := strings.Count(pf, "\n"); n != 6 || !strings.Contains(pf, "cheap0002@bench.test:{PLAIN}"+cheap.accounts[2].pass+":65534:65534::") {
		t.Errorf("passwd-file:\n%s", pf)
	}
	ldif := ldapEntries(sets, 1, 2)
	if strings.Count(ldif, "\ndn: uid=") != 6 || !strings.Contains(ldif, "mail: crypt0000@bench.test\n") {
		t.Errorf("LDIF:\n%s", ldif)
	}
	if ins := sqlInserts(sets, 1, 2); len(ins) != 6 {
		t.Errorf("inserts: %q", ins)
	}
	if c := ldapConf("ldap://127.0.0.1:1", "pw", true); !strings.Contains(c, "auth_bind = yes\nauth_bind_userdn = uid=%n,ou=people,dc=bench,dc=test") {
		t.Errorf("auth_bind conf:\n%s", c)
	}
	if c := ldapConf("ldap://127.0.0.1:1", "pw", false); !strings.Contains(c, "pass_attrs = mail=user,userPassword=password") {
		t.Errorf("pass_attrs conf:\n%s", c)
	}
}

func TestReport(t *testing.T) {
	o, err := parseFlags(strings.Fields("-drivers passwd-file -schemes cheap -clients 1 -rounds 2"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	r := newReport(o, []kind{{key: "postcote", label: "postcote"}, {key: "dovecot", label: "Dovecot"}})
	p := point{"passwd-file", "cheap", 1}
	ms := time.Millisecond
	r.add(p, "postcote", Result{OK: 100, Elapsed: time.Second, P50: 2 * ms, P99: 5 * ms})
	r.add(p, "postcote", Result{OK: 300, Elapsed: time.Second, P50: 4 * ms, P99: 9 * ms})
	r.add(p, "dovecot", Result{OK: 50, Elapsed: time.Second, P50: 20 * ms, P99: 50 * ms})
	r.add(p, "dovecot", Result{OK: 50, Failed: 1, Elapsed: time.Second, P50: 20 * ms, P99: 50 * ms, Errors: []string{"x: refused"}})
	var b bytes.Buffer
	r.write(&b)
	out := b.String()
	// Medians: postcote 200/s, Dovecot 50/s; per-round ratios 2 and 6.
	for _, want := range []string{"passwd-file", "200.0", "3.0 ms", "7.0 ms", "50.0", "4.00× (2.00–6.00)", "failed logins:", "x: refused"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if r.failed != 1 {
		t.Errorf("failed = %d", r.failed)
	}
}

// TestHarness: a failing helper ends its goroutine, and the failure and
// the cleanups come back to the program.
func TestHarness(t *testing.T) {
	h := newHarness(t.Logf)
	var cleaned []int
	err := h.do(func() {
		h.Cleanup(func() { cleaned = append(cleaned, 1) })
		h.Cleanup(func() { cleaned = append(cleaned, 2) })
		dir := h.TempDir()
		if _, err := os.Stat(dir); err != nil {
			t.Error(err)
		}
		h.Fatalf("boom %d", 7)
		t.Error("Fatalf returned")
	})
	if err == nil || err.Error() != "boom 7" {
		t.Errorf("do = %v", err)
	}
	if err := h.do(func() { h.Skipf("no %s", "slapd") }); err == nil || !strings.Contains(err.Error(), "skipped: no slapd") {
		t.Errorf("skip = %v", err)
	}
	if err := h.do(func() {}); err != nil {
		t.Errorf("clean run = %v", err)
	}
	if err := h.close(); err != nil {
		t.Error(err)
	}
	if len(cleaned) != 2 || cleaned[0] != 2 || cleaned[1] != 1 {
		t.Errorf("cleanups ran as %v, want [2 1] then the temp dir", cleaned)
	}
}

// TestBenchEndToEnd runs the whole program, briefly, against postcote and
// (when installed) Dovecot with the passwd-file driver. It builds
// postcote, so it is skipped with -short; it needs root for Dovecot.
func TestBenchEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts postcote (and Dovecot); skipped with -short")
	}
	args := strings.Fields("-drivers passwd-file -users 4 -clients 2 -duration 300ms -rounds 1")
	if os.Geteuid() != 0 {
		args = append(args, "-only", "postcote")
	}
	var stdout, stderr bytes.Buffer
	if code := mainErr(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	out := stdout.String()
	lines := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "passwd-file") {
			lines++
		}
	}
	if lines != 2 {
		t.Errorf("want one line per scheme:\n%s", out)
	}
	if os.Geteuid() == 0 {
		if _, err := os.Stat(dovecotBinary); err == nil && !strings.Contains(out, "ratio postcote/dovecot") {
			t.Errorf("no ratio column:\n%s", out)
		}
	}
}
