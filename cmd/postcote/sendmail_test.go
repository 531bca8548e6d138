package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"postcote/internal/pickup"
	"postcote/internal/userdb"
)

func TestGetopt(t *testing.T) {
	tests := []struct {
		args []string
		opts []opt
		rest []string
		err  bool
	}{
		{[]string{"-t", "-i"}, []opt{{'t', ""}, {'i', ""}}, nil, false},
		{[]string{"-ti", "-fme@x", "u@y"}, []opt{{'t', ""}, {'i', ""}, {'f', "me@x"}}, []string{"u@y"}, false},
		{[]string{"-f", "me@x", "u@y", "-F", "Full Name"}, []opt{{'f', "me@x"}, {'F', "Full Name"}}, []string{"u@y"}, false},
		{[]string{"-oi", "-oem", "--", "-notanoption"}, []opt{{'o', "i"}, {'o', "em"}}, []string{"-notanoption"}, false},
		{[]string{"-q"}, []opt{{'q', ""}}, nil, false},
		{[]string{"-q1h", "-bp"}, []opt{{'q', "1h"}, {'b', "p"}}, nil, false},
		{[]string{"-f"}, nil, nil, true},
		{[]string{"-Z"}, nil, nil, true},
		{[]string{"-"}, nil, []string{"-"}, false},
	}
	for _, tt := range tests {
		opts, rest, err := getopt(tt.args, sendmailSpec, "q")
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.args, err)
			continue
		}
		if err == nil && (!reflect.DeepEqual(opts, tt.opts) || !reflect.DeepEqual(rest, tt.rest)) {
			t.Errorf("%q: %v %q, want %v %q", tt.args, opts, rest, tt.opts, tt.rest)
		}
	}
}

func TestReadMessage(t *testing.T) {
	tests := []struct {
		in      string
		dotEnds bool
		limit   int64
		want    string
		err     error
	}{
		{"a\n.\nb\n", true, 0, "a\n", nil},
		{"a\r\n.\r\nb\r\n", true, 0, "a\r\n", nil},
		{"a\n.\nb\n", false, 0, "a\n.\nb\n", nil},
		{"a\n..\nb", true, 0, "a\n..\nb", nil},
		{"a\n.", true, 0, "a\n", nil},
		{strings.Repeat("x", 70000) + "\n.\n", true, 0, strings.Repeat("x", 70000) + "\n", nil},
		{strings.Repeat("x", 65536) + ".\nmore\n", true, 0, strings.Repeat("x", 65536) + ".\nmore\n", nil},
		{strings.Repeat("x", 200), true, 100, "", pickup.ErrTooBig},
	}
	for _, tt := range tests {
		got, err := readMessage(strings.NewReader(tt.in), tt.dotEnds, tt.limit)
		if !errors.Is(err, tt.err) || (err == nil && string(got) != tt.want) {
			t.Errorf("readMessage(%.20q, %v) = %.20q, %v; want %.20q, %v", tt.in, tt.dotEnds, got, err, tt.want, tt.err)
		}
	}
}

func TestReadIDs(t *testing.T) {
	ids, err := readIDs(strings.NewReader("4AAA\n\n  4BBB  \r\n"))
	if err != nil || !reflect.DeepEqual(ids, []string{"4AAA", "4BBB"}) {
		t.Errorf("readIDs = %q, %v", ids, err)
	}
}

// TestSenderFullName: without -F the full name is $NAME when set (even
// empty), else the GECOS field of the user's passwd line, as Postfix's
// sendmail takes it.
func TestSenderFullName(t *testing.T) {
	passwd := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(passwd, []byte("root:x:0:0:root:/root:/bin/sh\n"+
		"jane:x:1000:1000:Jane Doe,Room 1,555-1234,:/home/jane:/bin/sh\n"+
		"bob:x:1001:1001:& Smith;ext:/home/bob:/bin/sh\n"+
		"nogecos:x:1002:1002::/home/n:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ids := userdb.NewSystemIDs(passwd, filepath.Join(t.TempDir(), "group"))
	noEnv := func(string) (string, bool) { return "", false }
	tests := []struct {
		name  string
		env   func(string) (string, bool)
		login string
		uid   int
		want  string
	}{
		{"root's GECOS", noEnv, "root", 0, "root"},
		{"first comma-separated part", noEnv, "jane", 1000, "Jane Doe"},
		{"ampersand is the capitalised login", noEnv, "bob", 1001, "Bob Smith"},
		{"empty GECOS", noEnv, "nogecos", 1002, ""},
		{"unknown user", noEnv, "ghost", 4242, ""},
		{"login whose uid differs", noEnv, "jane", 4242, ""},
		{"NAME wins", func(k string) (string, bool) { return "Cron Daemon", k == "NAME" }, "jane", 1000, "Cron Daemon"},
		{"NAME set empty wins too", func(k string) (string, bool) { return "", k == "NAME" }, "jane", 1000, ""},
	}
	for _, tt := range tests {
		if got := senderFullName(tt.env, ids, tt.login, tt.uid); got != tt.want {
			t.Errorf("%s: senderFullName = %q, want %q", tt.name, got, tt.want)
		}
	}
}
