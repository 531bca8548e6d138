package rewrite

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// FuzzRewriteHeaders checks that header rewriting never fails on
// arbitrary input, keeps the message byte for byte when no address
// changes, and only ever changes address headers' values.
func FuzzRewriteHeaders(f *testing.F) {
	for _, s := range []string{
		"From: a@x.example\r\n\r\nbody",
		"To: \"Doe, John\" <j@x.example> (work), keep@x.example\r\n\r\n",
		"To: friends: a@x.example, B <b@x.example>;\r\n",
		"Cc: <@r:a@b>,\r\n\t(c(d)) \"q\\\"\" <x@y>\n\n",
		"From: <\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ctx := context.Background()
		same := func(_ context.Context, _, a string) (string, error) { return a, nil }
		got, err := io.ReadAll(CleanHeaders(ctx, bytes.NewReader(in), HeaderOptions{Rewrite: same}))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("identity rewrite changed the message:\n%q\n%q", in, got)
		}
		change := func(_ context.Context, _, a string) (string, error) { return "z" + a, nil }
		got, err = io.ReadAll(CleanHeaders(ctx, bytes.NewReader(in), HeaderOptions{Rewrite: change}))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(got, []byte("\n")) != bytes.Count(in, []byte("\n")) {
			t.Fatalf("line count changed:\n%q\n%q", in, got)
		}
	})
}

// FuzzSplitResults checks the comma-list splitter never produces empty
// or untrimmed elements.
func FuzzSplitResults(f *testing.F) {
	f.Add("a@b, \"c,d\"@e ,, f")
	f.Fuzz(func(t *testing.T, s string) {
		for _, r := range splitResults([]string{s}) {
			if r == "" || strings.TrimSpace(r) != r {
				t.Fatalf("bad element %q from %q", r, s)
			}
		}
	})
}
