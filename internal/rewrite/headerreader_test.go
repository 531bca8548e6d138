package rewrite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
)

// TestHeaderSizeLimit checks header_size_limit against what Postfix 3.7
// keeps (observed with header_size_limit = 1000 on a running Postfix): a
// first line longer than the limit is cut at the limit, a continuation
// line that does not fit is dropped with every later one of the same
// header, other headers and the body are untouched, and nothing else in
// the header block is limited.
func TestHeaderSizeLimit(t *testing.T) {
	fold := func(first string, lines ...string) string {
		return first + "\r\n " + strings.Join(lines, "\r\n ") + "\r\n"
	}
	words := make([]string, 60)
	for i := range words {
		words[i] = fmt.Sprintf("word%04d", i) + strings.Repeat(" x", 20)
	}
	many := strings.Repeat("X-Many: a\r\n", 5000)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"short header kept", "Subject: hi\r\n\r\nbody\r\n", "Subject: hi\r\n\r\nbody\r\n"},
		{"long first line cut at the limit",
			"Subject: " + strings.Repeat("y", 1500) + "\r\nX: 1\r\n\r\nbody\r\n",
			"Subject: " + strings.Repeat("y", 991) + "\r\nX: 1\r\n\r\nbody\r\n"},
		{"folded header: lines that fit are kept",
			// Subject's first line is 57 bytes and each continuation 49 plus
			// the line break: 19 lines make 957 bytes, the 20th would make
			// 1007.
			fold("Subject: "+words[0], words[1:]...) + "\r\nbody",
			fold("Subject: "+words[0], words[1:19]...) + "\r\nbody"},
		{"continuation dropped, and every later one",
			"X-B: " + strings.Repeat("z", 990) + "\r\n aaaaaaaaaa\r\n b\r\n c\r\nX-D: ok\r\n\r\nb",
			"X-B: " + strings.Repeat("z", 990) + "\r\nX-D: ok\r\n\r\nb"},
		{"cut line then continuation",
			"X-C: " + strings.Repeat("q", 5000) + "\r\n d\r\nX-D: ok\r\n\r\nb",
			"X-C: " + strings.Repeat("q", 995) + "\r\nX-D: ok\r\n\r\nb"},
		{"bare LF line ends kept", "X-C: " + strings.Repeat("q", 1200) + "\n d\nX-D: ok\n\nb",
			"X-C: " + strings.Repeat("q", 995) + "\nX-D: ok\n\nb"},
		{"exactly the limit", "X-E: " + strings.Repeat("e", 995) + "\r\n\r\n", "X-E: " + strings.Repeat("e", 995) + "\r\n\r\n"},
		{"one byte over", "X-E: " + strings.Repeat("e", 996) + "\r\n\r\n", "X-E: " + strings.Repeat("e", 995) + "\r\n\r\n"},
		{"the header block as a whole is not limited", many + "\r\nbody", many + "\r\nbody"},
		{"no final line end", "X-E: " + strings.Repeat("e", 1200), "X-E: " + strings.Repeat("e", 995)},
		{"body lines are never cut", "S: s\r\n\r\n" + strings.Repeat("b", 5000) + "\r\n", "S: s\r\n\r\n" + strings.Repeat("b", 5000) + "\r\n"},
		{"body without empty line is never cut", "S: s\r\n" + strings.Repeat("b", 5000) + "\r\n", "S: s\r\n" + strings.Repeat("b", 5000) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := cleanHeaders(tc.in, HeaderOptions{SizeLimit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %.300q (%d bytes)\nwant %.300q (%d bytes)", got, len(got), tc.want, len(tc.want))
			}
		})
	}
}

// TestHeaderSizeLimitMemory sends a 4 MB header (folded, and as one line),
// a 1 MB address header that is rewritten, and a 1 MB header block through CleanHeaders with the default limit:
// what is kept is the limit, and the memory allocated stays near one
// header's worth plus the read buffer, not the message's size.
func TestHeaderSizeLimitMemory(t *testing.T) {
	folded := "X-Big: " + strings.Repeat(strings.Repeat("f", 76)+"\r\n ", 4<<20/79) + "end\r\n"
	oneLine := "X-Big: " + strings.Repeat("o", 4<<20) + "\r\n"
	block := strings.Repeat("X-Small: "+strings.Repeat("s", 60)+"\r\n", 1<<20/71)
	for _, tc := range []struct {
		name, header string
		kept         int // bytes of the header kept (line ends included)
	}{
		{"folded", folded, 0},
		{"one line", oneLine, DefaultHeaderLimit + 2},
		// Cut by header_address_token_limit first: 10240 tokens.
		{"1 MB address header", "To: " + strings.Repeat("someone@example.com, ", 1<<20/21) + "last@example.com\r\n", 0},
		{"many headers", block, len(block)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.header + "Subject: after\r\n\r\nbody\r\n"
			o := HeaderOptions{Rewrite: func(_ context.Context, _, a string) (string, error) { return "x" + a, nil }}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			n, err := io.Copy(io.Discard, CleanHeaders(context.Background(), strings.NewReader(msg), o))
			runtime.ReadMemStats(&after)
			if err != nil {
				t.Fatal(err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%s: %d bytes in, %d out, %d bytes allocated", tc.name, len(msg), n, alloc)
			if tc.kept > 0 && n != int64(tc.kept+len("Subject: after\r\n\r\nbody\r\n")) {
				t.Errorf("%d bytes out, want the header cut to %d", n, tc.kept)
			}
			if tc.kept == 0 && n > DefaultHeaderLimit+int64(DefaultHeaderLimit/76*3)+100 {
				t.Errorf("%d bytes out: more than the limit kept", n)
			}
			// The 64 KiB read buffer, one header (at most the limit plus
			// its line breaks) and the output slice growing to hold it.
			if alloc > 1<<20 {
				t.Errorf("%d bytes allocated for a %d-byte header: not bounded by header_size_limit", alloc, len(tc.header))
			}
		})
	}
	allocs := testing.AllocsPerRun(5, func() {
		io.Copy(io.Discard, CleanHeaders(context.Background(), strings.NewReader(oneLine+"\r\nbody\r\n"), HeaderOptions{}))
	})
	t.Logf("one 4 MB line: %.0f allocations per message", allocs)
}

// TestHopCount checks hopcount_limit: Postfix 3.7 refuses a message with
// 50 Received headers (49 from the client and its own) with "554 5.4.0
// Error: too many hops" and accepts 49.
func TestHopCount(t *testing.T) {
	received := func(n int) string {
		return strings.Repeat("Received: from h by x; Mon, 1 Jan 2024 00:00:00 +0000\r\n", n)
	}
	for _, tc := range []struct {
		name  string
		in    string
		limit int
		fail  bool
	}{
		{"49 pass", received(49) + "Subject: s\r\n\r\nb", 50, false},
		{"50 refused", received(50) + "Subject: s\r\n\r\nb", 50, true},
		{"lower case and folded", strings.Repeat("received: from h\r\n\tby x\r\n", 3) + "\r\n", 3, true},
		{"in the body they do not count", "Subject: s\r\n\r\n" + received(60), 50, false},
		{"no limit", received(60) + "\r\n", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cleanHeaders(tc.in, HeaderOptions{HopLimit: tc.limit})
			if !tc.fail {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) || !errors.Is(err, ErrTooManyHops) {
				t.Fatalf("err = %v, want *Error wrapping ErrTooManyHops", err)
			}
			code, status, text := ce.SMTPReply()
			if got := fmt.Sprintf("%d %s %s", code, status, text); got != "554 5.4.0 Error: too many hops" || ce.Temporary() {
				t.Errorf("reply %q (temporary %v)", got, ce.Temporary())
			}
		})
	}
}

// TestHeaderTokenLimit checks header_address_token_limit: Postfix 3.7
// with the limit at 20 turns "To: u0@mx.example.com, … u29@…" into
// "To: u0@example.com, u1@example.com, u2@mx" (masquerading on; 8
// tokens per address and comma).
func TestHeaderTokenLimit(t *testing.T) {
	var addrs []string
	for i := range 30 {
		addrs = append(addrs, fmt.Sprintf("u%d@mx.example.com", i))
	}
	in := "To: " + strings.Join(addrs, ", ") + "\r\nSubject: " + strings.Join(addrs, ", ") + "\r\n\r\n"
	same := func(_ context.Context, _, a string) (string, error) { return a, nil }
	got, err := cleanHeaders(in, HeaderOptions{TokenLimit: 20, Rewrite: same})
	if err != nil {
		t.Fatal(err)
	}
	want := "To: u0@mx.example.com, u1@mx.example.com, u2@mx.\r\nSubject: " + strings.Join(addrs, ", ") + "\r\n\r\n"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	// Without address rewriting the header is not parsed, so not cut.
	if got, _ := cleanHeaders(in, HeaderOptions{TokenLimit: 20}); got != in {
		t.Errorf("header cut without rewriting: %q", got)
	}
	for _, tc := range []struct {
		value string
		limit int
		want  string
		cut   bool
	}{
		{` a@b.c`, 5, ` a@b.c`, false},
		{` a@b.c`, 4, ` a@b.`, true},
		{` "x y" (c (d)) <a@[1.2.3.4]>`, 5, ` "x y" (c (d)) <a@`, true},
		{` "unclosed`, 1, ` "unclosed`, false},
		{` a`, 0, ` `, true},
		{" \b\x01x", 2, " \b\x01", true},
		{" \b", 1, " \b", false},
	} {
		got, cut := cutTokens(tc.value, tc.limit)
		if got != tc.want || cut != tc.cut {
			t.Errorf("cutTokens(%q, %d) = %q, %v; want %q, %v", tc.value, tc.limit, got, cut, tc.want, tc.cut)
		}
	}
}
