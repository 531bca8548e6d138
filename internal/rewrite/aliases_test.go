package rewrite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestExpandAliases(t *testing.T) {
	files := map[string]string{
		"/etc/mail/staff":    "# staff\nann, bob\n\ncarl,\n  dave\n",
		"/etc/mail/commands": "|/usr/bin/vacation ann\n",
	}
	read := func(p string) ([]byte, error) {
		if s, ok := files[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	aliases := memTable{
		"postmaster": {"root"},
		"root":       {"admin@example.org, \\root"},
		"staff":      {":include:/etc/mail/staff"},
		"vac":        {":include:/etc/mail/commands"},
		"pipe":       {"|/usr/bin/procmail"},
		"quoted":     {"\"|/usr/bin/cmd -x\""},
		"file":       {"/var/log/mail.copy"},
		"self":       {"self, other"},
		"loop1":      {"loop2"},
		"loop2":      {"loop1"},
		"missing":    {":include:/nope"},
		"bob":        {"robert"},
	}
	show := func(ts []AliasTarget) string {
		var s []string
		for _, t := range ts {
			s = append(s, fmt.Sprintf("%d:%s", t.Kind, t.Value))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		name string
		in   string
		o    AliasOptions
		want string
		err  error
	}{
		{"no alias", "joe", AliasOptions{}, "0:joe", nil},
		{"chain and backslash", "postmaster", AliasOptions{}, "0:admin@example.org 0:root", nil},
		{"extension", "postmaster+x", AliasOptions{Delimiter: "+"}, "0:admin@example.org 0:root", nil},
		{"case folded", "PostMaster", AliasOptions{}, "0:admin@example.org 0:root", nil},
		{"include", "staff", AliasOptions{}, "0:ann 0:robert 0:carl 0:dave", nil},
		{"command refused", "pipe", AliasOptions{}, "", ErrAliasRefused},
		{"command allowed", "pipe", AliasOptions{AllowCommands: true}, "1:/usr/bin/procmail", nil},
		{"quoted command", "quoted", AliasOptions{AllowCommands: true}, "1:/usr/bin/cmd -x", nil},
		{"file refused", "file", AliasOptions{}, "", ErrAliasRefused},
		{"file allowed", "file", AliasOptions{AllowFiles: true}, "2:/var/log/mail.copy", nil},
		{"command in include needs include permission", "vac", AliasOptions{AllowCommands: true}, "", ErrAliasRefused},
		{"command in include allowed", "vac", AliasOptions{IncludeCommands: true}, "1:/usr/bin/vacation ann", nil},
		{"self", "self", AliasOptions{}, "0:self 0:other", nil},
		{"loop", "loop1", AliasOptions{MaxDepth: 20}, "", ErrAliasExpansion},
		{"missing include", "missing", AliasOptions{}, "", os.ErrNotExist},
		{"address with domain not expanded", "root@example.org", AliasOptions{}, "0:root@example.org", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.ReadFile = read
			got, err := ExpandAliases(context.Background(), aliases, tc.in, tc.o)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil || show(got) != tc.want {
				t.Errorf("ExpandAliases(%q) = %q, %v; want %q", tc.in, show(got), err, tc.want)
			}
		})
	}
	// Include files that include themselves many times end at MaxSteps.
	bomb := func(string) ([]byte, error) { return []byte(strings.Repeat(":include:/bomb\n", 50)), nil }
	if _, err := ExpandAliases(context.Background(), memTable{"list": {":include:/bomb"}}, "list", AliasOptions{ReadFile: bomb}); !errors.Is(err, ErrAliasExpansion) {
		t.Errorf("include bomb: %v, want ErrAliasExpansion", err)
	}
	if _, err := ExpandAliases(context.Background(), failTable{}, "x", AliasOptions{}); err == nil {
		t.Error("failing table: no error")
	}
}
