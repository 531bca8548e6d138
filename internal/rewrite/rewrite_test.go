package rewrite

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// memTable is an in-memory table; keys are compared exactly.
type memTable map[string][]string

func (m memTable) Lookup(_ context.Context, key string) ([]string, error) { return m[key], nil }

// failTable cannot answer.
type failTable struct{}

// errTableDown is what failTable answers.
var errTableDown = errors.New("server down")

func (failTable) Lookup(context.Context, string) ([]string, error) {
	return nil, errTableDown
}

// regexpTable is a tiny regexp: table for the guide 004 canonical map.
type regexpTable struct {
	re   *regexp.Regexp
	repl string
}

func (r regexpTable) Lookup(_ context.Context, key string) ([]string, error) {
	m := r.re.FindStringSubmatchIndex(key)
	if m == nil {
		return nil, nil
	}
	return []string{string(r.re.ExpandString(nil, r.repl, key, m))}, nil
}

func TestQualify(t *testing.T) {
	a := &Addresses{Myorigin: "example.com", Mydomain: "example.com", AppendDotMydomain: true}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"root", "root@example.com"},
		{"root@host", "root@host.example.com"},
		{"root@host.example.org", "root@host.example.org"},
		{"root@[127.0.0.1]", "root@[127.0.0.1]"},
	} {
		if got := a.Qualify(tc.in); got != tc.want {
			t.Errorf("Qualify(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := (&Addresses{Myorigin: "example.com"}).Qualify("root@host"); got != "root@host" {
		t.Errorf("without append_dot_mydomain: %q", got)
	}
}

func TestCanonicalize(t *testing.T) {
	guide004 := regexpTable{regexp.MustCompile(`^([^@]*)@([a-zA-Z0-9]*)\.(example\.com)`), "${1}+${2}@${3}"}
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		a     *Addresses
		class string
		in    string
		want  string
	}{
		{"guide 004 envelope sender", &Addresses{Canonical: guide004, CanonicalClasses: set(EnvelopeSender, HeaderSender, HeaderRecipient)},
			EnvelopeSender, "root@host.example.com", "root+host@example.com"},
		{"guide 004 header recipient", &Addresses{Canonical: guide004, CanonicalClasses: set(EnvelopeSender, HeaderSender, HeaderRecipient)},
			HeaderRecipient, "root@host.example.com", "root+host@example.com"},
		{"guide 004 not envelope recipient", &Addresses{Canonical: guide004, CanonicalClasses: set(EnvelopeSender, HeaderSender, HeaderRecipient)},
			EnvelopeRecipient, "root@host.example.com", "root@host.example.com"},
		{"default classes: all", &Addresses{Canonical: memTable{"a@x.example": {"b@y.example"}}},
			EnvelopeRecipient, "a@x.example", "b@y.example"},
		{"sender map before canonical", &Addresses{
			SenderCanonical: memTable{"a@x.example": {"b@x.example"}},
			Canonical:       memTable{"b@x.example": {"c@x.example"}}},
			EnvelopeSender, "a@x.example", "c@x.example"},
		{"sender map not for recipients", &Addresses{SenderCanonical: memTable{"a@x.example": {"b@x.example"}}},
			EnvelopeRecipient, "a@x.example", "a@x.example"},
		{"recipient map", &Addresses{RecipientCanonical: memTable{"a@x.example": {"b@x.example"}}},
			HeaderRecipient, "a@x.example", "b@x.example"},
		{"recipient map class off", &Addresses{RecipientCanonical: memTable{"a@x.example": {"b@x.example"}}, RecipientCanonicalClasses: set(EnvelopeRecipient)},
			HeaderRecipient, "a@x.example", "a@x.example"},
		{"extension propagated", &Addresses{Delimiter: "+", PropagateCanonical: true, Canonical: memTable{"a@x.example": {"b@y.example"}}},
			EnvelopeSender, "a+list@x.example", "b+list@y.example"},
		{"extension not propagated", &Addresses{Delimiter: "+", Canonical: memTable{"a@x.example": {"b@y.example"}}},
			EnvelopeSender, "a+list@x.example", "b@y.example"},
		{"full key first", &Addresses{Delimiter: "+", PropagateCanonical: true, Canonical: memTable{"a+list@x.example": {"l@y.example"}, "a@x.example": {"b@y.example"}}},
			EnvelopeSender, "a+list@x.example", "l@y.example"},
		{"domain rewrite keeps local part", &Addresses{Canonical: memTable{"@old.example": {"@new.example"}}},
			EnvelopeSender, "joe@old.example", "joe@new.example"},
		{"user key only for local domains", &Addresses{Myorigin: "example.com", Canonical: memTable{"joe": {"joe.smith@example.com"}}},
			EnvelopeSender, "joe@example.com", "joe.smith@example.com"},
		{"user key not for other domains", &Addresses{Myorigin: "example.com", Canonical: memTable{"joe": {"joe.smith@example.com"}}},
			EnvelopeSender, "joe@example.org", "joe@example.org"},
		{"domain case folded", &Addresses{Canonical: memTable{"a@x.example": {"b@x.example"}}},
			EnvelopeSender, "a@X.Example.", "b@x.example"},
		{"result qualified", &Addresses{Myorigin: "example.com", Canonical: memTable{"a@x.example": {"bob"}}},
			EnvelopeSender, "a@x.example", "bob@example.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.Canonicalize(ctx, tc.class, tc.in)
			if err != nil || got != tc.want {
				t.Errorf("Canonicalize(%s, %q) = %q, %v; want %q", tc.class, tc.in, got, err, tc.want)
			}
		})
	}
	if _, err := (&Addresses{Canonical: failTable{}}).Canonicalize(ctx, EnvelopeSender, "a@b.example"); err == nil {
		t.Error("failing table: no error")
	}
	if _, err := (&Addresses{}).Canonicalize(ctx, "envelope_bogus", "a@b.example"); err == nil {
		t.Error("unknown class: no error")
	}
}

func set(names ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range names {
		m[n] = true
	}
	return m
}

func TestExpand(t *testing.T) {
	ctx := context.Background()
	loop := memTable{"a@x.example": {"b@x.example"}, "b@x.example": {"a@x.example"}}
	wide := memTable{}
	var many []string
	for i := 0; i < 30; i++ {
		many = append(many, "u"+strings.Repeat("x", i)+"@x.example")
	}
	wide["all@x.example"] = []string{strings.Join(many, ", ")}
	for _, tc := range []struct {
		name    string
		a       *Addresses
		in      string
		want    []string
		wantErr error
	}{
		{"no maps", &Addresses{}, "a@x.example", []string{"a@x.example"}, nil},
		{"not found", &Addresses{VirtualAlias: memTable{}}, "a@x.example", []string{"a@x.example"}, nil},
		{"guide 003 postmaster to info", &Addresses{VirtualAlias: memTable{
			"admin@mail.example.jp": {"info@mail.example.jp"}, "postmaster@mail.example.jp": {"info@mail.example.jp"}}},
			"postmaster@mail.example.jp", []string{"info@mail.example.jp"}, nil},
		{"guide 000 group: several results", &Addresses{VirtualAlias: memTable{
			"group@lego.dk": {"noah@lego.dk", "johan@lego.dk", "magnus@lego.dk"}}},
			"group@lego.dk", []string{"noah@lego.dk", "johan@lego.dk", "magnus@lego.dk"}, nil},
		{"comma list", &Addresses{VirtualAlias: memTable{"g@x.example": {"a@x.example, b@x.example,c@x.example"}}},
			"g@x.example", []string{"a@x.example", "b@x.example", "c@x.example"}, nil},
		{"recursive", &Addresses{VirtualAlias: memTable{"a@x.example": {"b@x.example"}, "b@x.example": {"c@y.example", "d@y.example"}, "d@y.example": {"e@z.example"}}},
			"a@x.example", []string{"c@y.example", "e@z.example"}, nil},
		{"self kept", &Addresses{VirtualAlias: memTable{"a@x.example": {"a@x.example", "archive@x.example"}}},
			"a@x.example", []string{"a@x.example", "archive@x.example"}, nil},
		{"self kept case-insensitively", &Addresses{VirtualAlias: memTable{"a@x.example": {"A@x.example", "b@x.example"}}},
			"a@x.example", []string{"A@x.example", "b@x.example"}, nil},
		{"catch-all", &Addresses{VirtualAlias: memTable{"@x.example": {"catch@y.example"}, "known@x.example": {"k@y.example"}}},
			"anyone@x.example", []string{"catch@y.example"}, nil},
		{"exact before catch-all", &Addresses{VirtualAlias: memTable{"@x.example": {"catch@y.example"}, "known@x.example": {"k@y.example"}}},
			"known@x.example", []string{"k@y.example"}, nil},
		{"extension propagated", &Addresses{Delimiter: "+", PropagateVirtual: true, VirtualAlias: memTable{"a@x.example": {"b@y.example"}}},
			"a+tag@x.example", []string{"b+tag@y.example"}, nil},
		{"extension propagated through catch-all", &Addresses{Delimiter: "+", PropagateVirtual: true, VirtualAlias: memTable{"@x.example": {"b@y.example"}}},
			"a+tag@x.example", []string{"b+tag@y.example"}, nil},
		{"extension not propagated", &Addresses{Delimiter: "+", VirtualAlias: memTable{"a@x.example": {"b@y.example"}}},
			"a+tag@x.example", []string{"b@y.example"}, nil},
		{"several delimiters", &Addresses{Delimiter: "+-", PropagateVirtual: true, VirtualAlias: memTable{"a@x.example": {"b@y.example"}}},
			"a-tag@x.example", []string{"b-tag@y.example"}, nil},
		{"delimiter first char is no extension", &Addresses{Delimiter: "+", PropagateVirtual: true, VirtualAlias: memTable{"+a@x.example": {"b@y.example"}}},
			"+a@x.example", []string{"b@y.example"}, nil},
		{"loop", &Addresses{VirtualAlias: loop, RecursionLimit: 50}, "a@x.example", nil, ErrAliasExpansion},
		{"expansion limit", &Addresses{VirtualAlias: wide, ExpansionLimit: 10}, "all@x.example", nil, ErrAliasExpansion},
		{"within expansion limit", &Addresses{VirtualAlias: wide, ExpansionLimit: 30}, "all@x.example", many, nil},
		{"table failure", &Addresses{VirtualAlias: failTable{}}, "a@x.example", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.a.Expand(ctx, tc.in)
			if tc.name == "table failure" {
				if err == nil || errors.Is(err, ErrAliasExpansion) {
					t.Fatalf("err = %v, want a lookup error", err)
				}
				return
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("Expand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}
