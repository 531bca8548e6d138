package rewrite

import (
	"bytes"
	"context"
	"errors"
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
		"From:\b", // a control character is one address token
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

// FuzzCleanHeadersLimits runs CleanHeaders with small header_size_limit,
// header_address_token_limit and hopcount_limit values: it must never
// fail on input alone (only too many hops), never grow the message when
// nothing is rewritten, and never keep a header longer than the limit
// (counting one byte per line break), its name aside.
func FuzzCleanHeadersLimits(f *testing.F) {
	f.Add([]byte("Subject: "+strings.Repeat("y", 80)+"\r\n a\r\nTo: a@b, c@d\r\n\r\nbody"), uint8(20), uint8(3), uint8(2))
	f.Add([]byte("Received: x\nReceived: y\n\nb"), uint8(5), uint8(1), uint8(2))
	f.Fuzz(func(t *testing.T, in []byte, size, tokens, hops uint8) {
		same := func(_ context.Context, _, a string) (string, error) { return a, nil }
		o := HeaderOptions{SizeLimit: int(size) + 1, TokenLimit: int(tokens) + 1, HopLimit: int(hops), Rewrite: same}
		got, err := io.ReadAll(CleanHeaders(context.Background(), bytes.NewReader(in), o))
		if err != nil {
			if !errors.Is(err, ErrTooManyHops) {
				t.Fatalf("error on %q: %v", in, err)
			}
			return
		}
		if len(got) > len(in) {
			t.Fatalf("output grew: %q -> %q", in, got)
		}
		// Each header of the output (up to the first line that is not
		// one) fits the limit.
		for _, h := range splitHeaders(got) {
			n := len(strings.ReplaceAll(strings.TrimRight(h, "\r\n"), "\r\n", "\n"))
			// The field name and its colon are kept whatever the limit.
			if n > max(o.SizeLimit, strings.IndexByte(h, ':')+1) {
				t.Fatalf("header of %d bytes kept with limit %d: %q", n, o.SizeLimit, h)
			}
		}
	})
}

// splitHeaders returns the logical headers at the start of msg.
func splitHeaders(msg []byte) []string {
	var out []string
	for len(msg) > 0 && isFieldStart(msg) {
		end := 0
		for {
			i := bytes.IndexByte(msg[end:], '\n')
			if i < 0 {
				end = len(msg)
				break
			}
			end += i + 1
			if end >= len(msg) || (msg[end] != ' ' && msg[end] != '\t') {
				break
			}
		}
		out = append(out, string(msg[:end]))
		msg = msg[end:]
	}
	return out
}
