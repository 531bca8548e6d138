package lookup

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestInlineStatic(t *testing.T) {
	tests := []struct {
		spec string
		key  string
		want []string
	}{
		{"inline:{ a@example.com=x, b@example.com=y }", "A@Example.com", []string{"x"}},
		{"inline:{ a@example.com=x, b@example.com=y }", "c@example.com", nil},
		{"inline:{a=1,b=2}", "b", []string{"2"}},
		{"inline:{ { key = text with spaces, and commas } }", "key", []string{"text with spaces, and commas"}},
		{"inline:{}", "x", nil},
		{"static:OK", "anything", []string{"OK"}},
		{"static:{ 550 no such user }", "x", []string{"550 no such user"}},
		{"proxy:inline:{k=v}", "K", []string{"v"}},
		{"PROXY:static:v", "k", []string{"v"}},
	}
	for _, tc := range tests {
		tb, err := Open(tc.spec, Options{})
		if err != nil {
			t.Errorf("Open(%q): %v", tc.spec, err)
			continue
		}
		if got := lookupOne(t, tb, tc.key); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: Lookup(%q) = %q, want %q", tc.spec, tc.key, got, tc.want)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	for _, spec := range []string{
		"nocolon", ":name", "hash:", "btree:/etc/x", "inline:a=b", "inline:{ a }", "inline:{ a = b }", "inline:{ {a=b }",
		"static:{ x", "proxy:proxy:static:x", "proxy:nothing", "unix:shadow.byname",
		"hash:/nonexistent/file", "regexp:/nonexistent", "t y:x",
	} {
		if tb, err := Open(spec, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded: %T", spec, tb)
		}
	}
}

func TestUnix(t *testing.T) {
	pw := writeTable(t, "passwd", "root:x:0:0:root:/root:/bin/bash\n+nis\nvmail:x:5000:5000::/var/mail:/usr/sbin/nologin\n")
	gr := writeTable(t, "group", "mail:x:8:alice,bob\n")
	o := Options{PasswdFile: pw, GroupFile: gr}
	tb, err := Open("proxy:unix:passwd.byname", o)
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupOne(t, tb, "VMail"); !reflect.DeepEqual(got, []string{"vmail:x:5000:5000::/var/mail:/usr/sbin/nologin"}) {
		t.Errorf("got %q", got)
	}
	if got := lookupOne(t, tb, "nobody"); got != nil {
		t.Errorf("got %q", got)
	}
	g, err := Open("unix:group.byname", o)
	if err != nil {
		t.Fatal(err)
	}
	if got := lookupOne(t, g, "mail"); !reflect.DeepEqual(got, []string{"mail:x:8:alice,bob"}) {
		t.Errorf("got %q", got)
	}
	es, err := Dump(tb)
	if err != nil || len(es) != 2 || es[0].Key != "root" {
		t.Errorf("Dump = %+v, %v", es, err)
	}
}

func TestRegistryShares(t *testing.T) {
	src := copyGuide(t, "g003/virtual")
	r := NewRegistry(Options{})
	a, err := r.Open("hash:" + src)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Open("proxy:hash:" + src)
	if err != nil {
		t.Fatal(err)
	}
	if a.(shared).Table != b.(shared).Table.(*proxyTable).inner.(shared).Table {
		t.Error("hash:X and proxy:hash:X are not one table")
	}
	if len(r.tables) != 2 { // hash:X and proxy:hash:X
		t.Errorf("%d tables open", len(r.tables))
	}
	a.Close() // does nothing
	if got := lookupOne(t, b, "root@mail.example.jp"); len(got) != 1 {
		t.Errorf("got %q", got)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open("static:x"); err == nil {
		t.Error("closed registry opened a table")
	}
}

func TestExpandTemplate(t *testing.T) {
	q := func(s string) string { return "<" + s + ">" }
	tests := []struct {
		tmpl, value, key string
		result           bool
		want             string
		suppressed       bool
	}{
		{"(mail=%s)", "a@b.example.com", "", false, "(mail=<a@b.example.com>)", false},
		{"%u|%d|%1|%2|%3|%%", "a@b.example.com", "", false, "<a>|<b.example.com>|<com>|<example>|<b>|%", false},
		{"%U %D", "a@x.org", "", false, "<a> <x.org>", false},
		{"%u", "plain", "", false, "<plain>", false},
		{"%d", "plain", "", false, "", true},
		{"%u", "@domain", "", false, "", true},
		{"%4", "a@b.c", "", false, "", true},
		{"%d", "a@", "", false, "", true},
		{"%d", "a@b@c.org", "", false, "<c.org>", false},
		{"%s/mailbox/", "/home/mail/mail000", "mail000@mx.example.com", true, "</home/mail/mail000>/mailbox/", false},
		{"%d", "info@example.org", "example.org", true, "<example.org>", false},
		{"%u+%D", "x@r.org", "k@key.org", true, "<x>+<key.org>", false},
		{"%1", "x@r.org", "k@key.org", true, "<org>", false},
	}
	for _, tc := range tests {
		got, err := expandTemplate(tc.tmpl, tc.value, tc.key, tc.result, q)
		if tc.suppressed {
			if !errors.Is(err, errSuppressed) {
				t.Errorf("%q on %q: %q, %v; want suppressed", tc.tmpl, tc.value, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q on %q: %q, %v; want %q", tc.tmpl, tc.value, got, err, tc.want)
		}
	}
	for _, bad := range []string{"%x", "abc%", "%0"} {
		if checkTemplate(bad) == nil {
			t.Errorf("checkTemplate(%q) accepted", bad)
		}
	}
	if checkTemplate("(|(mail=%s)(uid=%u)) %% %D %9") != nil {
		t.Error("good template refused")
	}
}

// countingTable counts lookups and can fail.
type countingTable struct {
	n    atomic.Int64
	fail atomic.Bool
}

func (c *countingTable) Lookup(_ context.Context, key string) ([]string, error) {
	c.n.Add(1)
	if c.fail.Load() {
		return nil, &Error{Table: "test:x", Err: errors.New("down")}
	}
	if strings.HasPrefix(key, "miss") {
		return nil, nil
	}
	return []string{"v:" + key}, nil
}

func (c *countingTable) Close() error { return nil }

func TestCache(t *testing.T) {
	inner := &countingTable{}
	c := NewCache(inner, time.Minute, 2).(*Cache)
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if v, _ := c.Lookup(ctx, "a"); !reflect.DeepEqual(v, []string{"v:a"}) {
			t.Fatalf("got %q", v)
		}
		if v, _ := c.Lookup(ctx, "miss1"); v != nil {
			t.Fatalf("got %q", v)
		}
	}
	if inner.n.Load() != 2 {
		t.Errorf("%d inner lookups, want 2 (hits and misses cached)", inner.n.Load())
	}
	c.Lookup(ctx, "b") // evicts the least recently used: "a"
	if c.Len() != 2 {
		t.Errorf("Len = %d, want the bound 2", c.Len())
	}
	c.Lookup(ctx, "a")
	if inner.n.Load() != 4 {
		t.Errorf("%d inner lookups, want 4 after eviction", inner.n.Load())
	}
	now = now.Add(2 * time.Minute) // expired
	inner.fail.Store(true)
	if _, err := c.Lookup(ctx, "a"); !errors.Is(err, ErrLookup) {
		t.Errorf("err = %v", err)
	}
	inner.fail.Store(false)
	if v, err := c.Lookup(ctx, "a"); err != nil || v == nil {
		t.Errorf("after the error: %q, %v (errors must not be cached)", v, err)
	}
	if NewCache(inner, 0, 10) != Table(inner) {
		t.Error("zero TTL should give the table itself")
	}
}
