package ldapx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/testenv"
)

const peopleLDIF = `dn: ou=people,dc=example,dc=com
objectClass: organizationalUnit
ou: people

dn: uid=ann,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: posixAccount
cn: Ann
sn: A
uid: ann
mail: ann@example.com
uidNumber: 3001
gidNumber: 3001
homeDirectory: /home/ann
userPassword: ann-pass

dn: uid=bob,ou=people,dc=example,dc=com
objectClass: inetOrgPerson
objectClass: posixAccount
cn: Bob
sn: B
uid: bob
uidNumber: 3002
gidNumber: 3002
homeDirectory: /home/bob
userPassword: bob-pass
`

// manyLDIF adds n users under ou=many.
func manyLDIF(n int) string {
	var b strings.Builder
	b.WriteString("dn: ou=many,dc=example,dc=com\nobjectClass: organizationalUnit\nou: many\n\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "dn: uid=u%03d,ou=many,dc=example,dc=com\nobjectClass: account\nuid: u%03d\n\n", i, i)
	}
	return b.String()
}

func startSlapd(t *testing.T) *testenv.Slapd {
	t.Helper()
	return testenv.StartSlapd(t, testenv.SlapdOptions{LDIF: []string{peopleLDIF, manyLDIF(30)}})
}

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestPoolAgainstSlapd(t *testing.T) {
	s := startSlapd(t)
	admin := Config{URIs: []string{s.URI}, BindDN: s.AdminDN, BindPassword: s.AdminPW}

	t.Run("search", func(t *testing.T) {
		p := newPool(t, admin)
		es, err := p.Search(ctx(t), SearchRequest{Base: "ou=people,dc=example,dc=com", Filter: "(uid=ann)", Attributes: []string{"homeDirectory", "uidNumber"}})
		if err != nil || len(es) != 1 {
			t.Fatalf("search: %v, %d entries", err, len(es))
		}
		if es[0].DN != "uid=ann,ou=people,dc=example,dc=com" || es[0].Value("HOMEDIRECTORY") != "/home/ann" || es[0].Value("uidnumber") != "3001" {
			t.Fatalf("entry %+v", es[0])
		}
		if es[0].Value("mail") != "" {
			t.Error("attribute not asked for was returned")
		}
	})
	t.Run("scopes", func(t *testing.T) {
		p := newPool(t, admin)
		for _, tc := range []struct {
			base  string
			scope Scope
			want  int
		}{
			{"dc=example,dc=com", ScopeSubtree, 2},
			{"dc=example,dc=com", ScopeOneLevel, 0},
			{"ou=people,dc=example,dc=com", ScopeOneLevel, 2},
			{"uid=ann,ou=people,dc=example,dc=com", ScopeBase, 1},
			{"ou=people,dc=example,dc=com", ScopeBase, 0},
		} {
			es, err := p.Search(ctx(t), SearchRequest{Base: tc.base, Scope: tc.scope, Filter: "(objectClass=posixAccount)", Attributes: []string{}})
			if err != nil || len(es) != tc.want {
				t.Errorf("%s %s: %d entries, %v; want %d", tc.base, tc.scope, len(es), err, tc.want)
			}
		}
	})
	t.Run("escaped values match literally", func(t *testing.T) {
		p := newPool(t, admin)
		all, err := p.Search(ctx(t), SearchRequest{Base: "ou=people,dc=example,dc=com", Filter: "(uid=*)", Attributes: []string{}})
		if err != nil || len(all) != 2 {
			t.Fatalf("unescaped wildcard: %d, %v", len(all), err)
		}
		for _, v := range []string{"*", "a*", ")(uid=*", "ann)(|(uid=*", `\`, "ann\x00", "*)(objectClass=*"} {
			es, err := p.Search(ctx(t), SearchRequest{Base: "ou=people,dc=example,dc=com", Filter: "(uid=" + EscapeFilter(v) + ")"})
			if err != nil || len(es) != 0 {
				t.Errorf("uid=%q: %d entries, %v", v, len(es), err)
			}
		}
	})
	t.Run("no such base", func(t *testing.T) {
		p := newPool(t, admin)
		_, err := p.Search(ctx(t), SearchRequest{Base: "ou=nowhere,dc=example,dc=com"})
		if !errors.Is(err, ErrNoSuchObject) || IsTemporary(err) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("size limit and paging", func(t *testing.T) {
		p := newPool(t, admin)
		es, err := p.Search(ctx(t), SearchRequest{Base: "ou=many,dc=example,dc=com", Filter: "(uid=*)", SizeLimit: 2})
		if err != nil || len(es) != 2 {
			t.Fatalf("size limit 2: %d entries, %v", len(es), err)
		}
		seen := map[string]bool{}
		err = p.SearchEach(ctx(t), SearchRequest{Base: "ou=many,dc=example,dc=com", Filter: "(uid=*)", Attributes: []string{"uid"}}, 7, func(e *Entry) error {
			if seen[e.Value("uid")] {
				t.Errorf("%s twice", e.Value("uid"))
			}
			seen[e.Value("uid")] = true
			return nil
		})
		if err != nil || len(seen) != 30 {
			t.Fatalf("paged: %d entries, %v", len(seen), err)
		}
		stop := errors.New("enough")
		n := 0
		err = p.SearchEach(ctx(t), SearchRequest{Base: "ou=many,dc=example,dc=com", Filter: "(uid=*)"}, 7, func(*Entry) error {
			n++
			if n == 10 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 10 {
			t.Fatalf("stopped paged search: n=%d err=%v", n, err)
		}
		// The connection is still good after the abandoned search.
		if _, err := p.Search(ctx(t), SearchRequest{Base: "ou=people,dc=example,dc=com", Filter: "(uid=ann)"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("authenticate", func(t *testing.T) {
		p := newPool(t, Config{URIs: []string{s.URI}}) // anonymous searches
		dn := "uid=ann,ou=people,dc=example,dc=com"
		if err := p.Authenticate(ctx(t), dn, "ann-pass"); err != nil {
			t.Fatalf("right password: %v", err)
		}
		err := p.Authenticate(ctx(t), dn, "wrong")
		if !errors.Is(err, ErrInvalidCredentials) || IsTemporary(err) {
			t.Fatalf("wrong password: %v", err)
		}
		if err := p.Authenticate(ctx(t), dn, ""); !errors.Is(err, ErrEmptyPassword) {
			t.Fatalf("empty password: %v", err)
		}
		// Escaped DN values cannot name another entry.
		for _, v := range []string{"ann,ou=people", "bob,ou=people,dc=example,dc=com\x00", `ann\`, "*"} {
			err := p.Authenticate(ctx(t), "uid="+EscapeDN(v)+",ou=people,dc=example,dc=com", "ann-pass")
			if err == nil || IsTemporary(err) {
				t.Errorf("uid=%q: %v", v, err)
			}
		}
		// After binds as users, the pool searches anonymously again: the
		// anonymous identity cannot read userPassword, a user could read
		// its own.
		for i := 0; i < 3; i++ {
			es, err := p.Search(ctx(t), SearchRequest{Base: dn, Scope: ScopeBase, Attributes: []string{"userPassword", "uid"}})
			if err != nil || len(es) != 1 || es[0].Value("uid") != "ann" || es[0].Value("userPassword") != "" {
				t.Fatalf("search after bind: %v %+v", err, es)
			}
		}
	})
	t.Run("service bind refused is not a wrong password", func(t *testing.T) {
		p := newPool(t, Config{URIs: []string{s.URI}, BindDN: s.AdminDN, BindPassword: "not-it"})
		_, err := p.Search(ctx(t), SearchRequest{Base: "dc=example,dc=com"})
		if err == nil || errors.Is(err, ErrInvalidCredentials) || strings.Contains(err.Error(), "not-it") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bind DN without password refused", func(t *testing.T) {
		if _, err := NewPool(Config{URIs: []string{s.URI}, BindDN: s.AdminDN}); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("URIs tried in order", func(t *testing.T) {
		dead := closedPort(t)
		p := newPool(t, Config{URIs: []string{"ldap://" + dead, s.URI}, BindDN: s.AdminDN, BindPassword: s.AdminPW})
		if _, err := p.Search(ctx(t), SearchRequest{Base: "ou=people,dc=example,dc=com", Filter: "(uid=ann)"}); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("user binds and searches keep their own connections", func(t *testing.T) {
		var mu sync.Mutex
		var connects int
		cfg := admin
		cfg.Debugf = func(format string, args ...any) {
			if strings.HasPrefix(format, "ldap: connected") {
				mu.Lock()
				connects++
				mu.Unlock()
			}
		}
		p := newPool(t, cfg)
		for i := 0; i < 10; i++ {
			if _, err := p.Search(ctx(t), SearchRequest{Base: "ou=people,dc=example,dc=com", Filter: "(uid=bob)"}); err != nil {
				t.Fatal(err)
			}
			if err := p.Authenticate(ctx(t), "uid=bob,ou=people,dc=example,dc=com", "bob-pass"); err != nil {
				t.Fatal(err)
			}
		}
		if connects != 2 {
			t.Errorf("%d connections opened, want 2", connects)
		}
		// With room for one connection only, it is rebound as needed.
		cfg.MaxConns = 1
		connects = 0
		p1 := newPool(t, cfg)
		for i := 0; i < 3; i++ {
			if err := p1.Authenticate(ctx(t), "uid=bob,ou=people,dc=example,dc=com", "bob-pass"); err != nil {
				t.Fatal(err)
			}
			es, err := p1.Search(ctx(t), SearchRequest{Base: "uid=bob,ou=people,dc=example,dc=com", Scope: ScopeBase, Attributes: []string{"userPassword"}})
			if err != nil || len(es) != 1 {
				t.Fatal(err)
			}
			if es[0].Value("userPassword") != "bob-pass" {
				t.Fatal("search did not run as the admin after a user bind")
			}
		}
		if connects != 1 {
			t.Errorf("%d connections opened with MaxConns 1", connects)
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		p := newPool(t, Config{URIs: []string{s.URI}, BindDN: s.AdminDN, BindPassword: s.AdminPW, MaxConns: 3})
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if i%2 == 0 {
					errs <- p.Authenticate(ctx(t), "uid=bob,ou=people,dc=example,dc=com", "bob-pass")
					return
				}
				es, err := p.Search(ctx(t), SearchRequest{Base: "ou=people,dc=example,dc=com", Filter: "(uid=bob)"})
				if err == nil && len(es) != 1 {
					err = fmt.Errorf("%d entries", len(es))
				}
				errs <- err
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

func TestPoolTLS(t *testing.T) {
	s := startSlapd(t)
	other := testenv.NewTestCA(t, "some other CA")
	otherFile := other.WriteCert(t, t.TempDir())
	search := func(p *Pool) error {
		_, err := p.Search(ctx(t), SearchRequest{Base: "ou=people,dc=example,dc=com", Filter: "(uid=ann)"})
		return err
	}
	for _, tc := range []struct {
		name     string
		uri      string
		startTLS bool
		ca       string
		require  TLSRequireCert
		ok       bool
	}{
		{"StartTLS demand", s.URI, true, s.CAFile, TLSDemand, true},
		{"StartTLS hard", s.URI, true, s.CAFile, TLSHard, true},
		{"ldaps demand", s.LDAPSURI, false, s.CAFile, TLSDemand, true},
		{"ldaps with StartTLS set", s.LDAPSURI, true, s.CAFile, TLSDemand, true},
		{"StartTLS wrong CA demand", s.URI, true, otherFile, TLSDemand, false},
		{"ldaps wrong CA demand", s.LDAPSURI, false, otherFile, TLSDemand, false},
		{"ldaps wrong CA try", s.LDAPSURI, false, otherFile, TLSTry, false},
		{"ldaps wrong CA allow", s.LDAPSURI, false, otherFile, TLSAllow, true},
		{"StartTLS wrong CA never", s.URI, true, otherFile, TLSNever, true},
		{"localhost name in certificate", strings.Replace(s.LDAPSURI, "127.0.0.1", "localhost", 1), false, s.CAFile, TLSDemand, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPool(t, Config{URIs: []string{tc.uri}, StartTLS: tc.startTLS,
				TLS:    TLSOptions{CACertFile: tc.ca, RequireCert: tc.require},
				BindDN: s.AdminDN, BindPassword: s.AdminPW})
			err := search(p)
			if tc.ok && err != nil {
				t.Fatalf("want success: %v", err)
			}
			if !tc.ok && (err == nil || !IsTemporary(err)) {
				t.Fatalf("want a temporary failure, got %v", err)
			}
		})
	}
	t.Run("missing CA file", func(t *testing.T) {
		if _, err := NewPool(Config{URIs: []string{s.URI}, StartTLS: true, TLS: TLSOptions{CACertFile: filepath.Join(t.TempDir(), "nope.pem")}}); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("CA dir", func(t *testing.T) {
		dir := t.TempDir()
		data, _ := os.ReadFile(s.CAFile)
		os.WriteFile(filepath.Join(dir, "a.pem"), data, 0o644)
		p := newPool(t, Config{URIs: []string{s.URI}, StartTLS: true, TLS: TLSOptions{CACertDir: dir}})
		if err := search(p); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHostnameChecked: a certificate from the right CA but for another
// name is refused under demand, and accepted under allow.
func TestHostnameChecked(t *testing.T) {
	ca := testenv.NewTestCA(t, "CA")
	certPEM, keyPEM := ca.Issue(t, "other.example")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	caFile := ca.WriteCert(t, t.TempDir())
	for _, tc := range []struct {
		require TLSRequireCert
		ok      bool
	}{{TLSDemand, false}, {TLSTry, false}, {TLSAllow, true}, {TLSNever, true}} {
		b, err := newTLSBase(TLSOptions{CACertFile: caFile, RequireCert: tc.require})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			c, err := ln.Accept()
			if err == nil {
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		cl, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), b.forHost("127.0.0.1"))
		if err == nil {
			cl.Close()
		}
		ln.Close()
		if (err == nil) != tc.ok {
			t.Errorf("%s: handshake err = %v", tc.require, err)
		}
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestServerDownAndBack(t *testing.T) {
	s := startSlapd(t)
	p := newPool(t, Config{URIs: []string{s.URI}, BindDN: s.AdminDN, BindPassword: s.AdminPW, DialTimeout: time.Second, Timeout: 2 * time.Second})
	dn := "uid=ann,ou=people,dc=example,dc=com"
	if err := p.Authenticate(ctx(t), dn, "ann-pass"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Search(ctx(t), SearchRequest{Base: dn, Scope: ScopeBase}); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	err := p.Authenticate(ctx(t), dn, "ann-pass")
	if !IsTemporary(err) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("authenticate while down: %v", err)
	}
	if _, err := p.Search(ctx(t), SearchRequest{Base: dn, Scope: ScopeBase}); !IsTemporary(err) {
		t.Fatalf("search while down: %v", err)
	}
	s.Start()
	if err := p.Authenticate(ctx(t), dn, "ann-pass"); err != nil {
		t.Fatalf("authenticate after restart: %v", err)
	}
	if _, err := p.Search(ctx(t), SearchRequest{Base: dn, Scope: ScopeBase}); err != nil {
		t.Fatalf("search after restart: %v", err)
	}
	// Connections pooled before a restart are replaced silently.
	s.Stop()
	s.Start()
	if _, err := p.Search(ctx(t), SearchRequest{Base: dn, Scope: ScopeBase}); err != nil {
		t.Fatalf("search on stale pooled connection: %v", err)
	}
}

// TestSilentServer: a server that accepts and never answers costs a
// timeout, not a hang.
func TestSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	p := newPool(t, Config{URIs: []string{"ldap://" + ln.Addr().String()}, BindDN: "cn=x", BindPassword: "y", Timeout: 300 * time.Millisecond})
	start := time.Now()
	_, err = p.Search(ctx(t), SearchRequest{Base: "dc=example,dc=com"})
	if !IsTemporary(err) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	// A cancelled context ends the wait too.
	c, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	p2 := newPool(t, Config{URIs: []string{"ldap://" + ln.Addr().String()}, Timeout: time.Hour})
	start = time.Now()
	if err := p2.Authenticate(c, "cn=x", "y"); !IsTemporary(err) {
		t.Fatalf("cancelled: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	// With StartTLS the silent server holds the extended operation.
	p3 := newPool(t, Config{URIs: []string{"ldap://" + ln.Addr().String()}, StartTLS: true, DialTimeout: 300 * time.Millisecond})
	start = time.Now()
	if _, err := p3.Search(ctx(t), SearchRequest{}); !IsTemporary(err) {
		t.Fatalf("StartTLS to silent server: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("StartTLS took %v", d)
	}
}
