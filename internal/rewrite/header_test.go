package rewrite

import (
	"context"
	"io"
	"strings"
	"testing"

	"postcote/internal/queue"
)

// upper rewrites every address it sees to a marked form, recording calls.
func marker(calls *[]string) func(context.Context, string, string) (string, error) {
	return func(_ context.Context, class, addr string) (string, error) {
		*calls = append(*calls, class+" "+addr)
		if strings.HasPrefix(addr, "keep") {
			return addr, nil
		}
		return "new+" + addr, nil
	}
}

func TestRewriteHeaders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		want  string
		calls string
	}{
		{"plain from", "From: a@x.example\r\nSubject: a@x.example\r\n\r\nbody a@x.example\r\n",
			"From: new+a@x.example\r\nSubject: a@x.example\r\n\r\nbody a@x.example\r\n", "header_sender a@x.example"},
		{"display name and comment kept", "To: \"Doe, John\" <j@x.example> (work), keep@x.example\r\n\r\n",
			"To: \"Doe, John\" <new+j@x.example> (work), keep@x.example\r\n\r\n",
			"header_recipient j@x.example|header_recipient keep@x.example"},
		{"folded header", "Cc: A <a@x.example>,\r\n\tb@x.example\r\nX: y\r\n\r\nz",
			"Cc: A <new+a@x.example>,\r\n\tnew+b@x.example\r\nX: y\r\n\r\nz",
			"header_recipient a@x.example|header_recipient b@x.example"},
		{"bare LF", "from: a@x.example\nreply-to: <r@x.example>\n\nbody\n",
			"from: new+a@x.example\nreply-to: <new+r@x.example>\n\nbody\n",
			"header_sender a@x.example|header_sender r@x.example"},
		{"group", "To: friends: a@x.example, B <b@x.example>;\r\n\r\n",
			"To: friends: new+a@x.example, B <new+b@x.example>;\r\n\r\n",
			"header_recipient a@x.example|header_recipient b@x.example"},
		{"empty group", "To: undisclosed-recipients:;\r\n\r\n", "To: undisclosed-recipients:;\r\n\r\n", ""},
		{"source route", "To: <@relay.example:a@x.example>\r\n\r\n", "To: <@relay.example:new+a@x.example>\r\n\r\n", "header_recipient a@x.example"},
		{"phrase without brackets left alone", "From: John Doe a@x.example\r\n\r\n", "From: John Doe a@x.example\r\n\r\n", ""},
		{"quoted local part", "From: \"a b\"@x.example\r\n\r\n", "From: new+\"a b\"@x.example\r\n\r\n", "header_sender \"a b\"@x.example"},
		{"no body separator", "From: a@x.example\r\n", "From: new+a@x.example\r\n", "header_sender a@x.example"},
		{"body starts without empty line", "From: a@x.example\r\nthis is body To: b@x.example\r\nTo: c@x.example\r\n",
			"From: new+a@x.example\r\nthis is body To: b@x.example\r\nTo: c@x.example\r\n", "header_sender a@x.example"},
		{"headers in body untouched", "Subject: s\r\n\r\nFrom: a@x.example\r\n", "Subject: s\r\n\r\nFrom: a@x.example\r\n", ""},
		{"received untouched", "Received: from x (x [1.2.3.4])\r\n\tfor <a@x.example>; date\r\n\r\n", "Received: from x (x [1.2.3.4])\r\n\tfor <a@x.example>; date\r\n\r\n", ""},
		{"unterminated angle", "To: <a@x.example\r\n\r\n", "To: <a@x.example\r\n\r\n", ""},
		{"empty", "", "", ""},
		{"resent and sender", "Resent-From: a@x.example\r\nSender: s@x.example\r\nBcc: b@x.example\r\n\r\n",
			"Resent-From: new+a@x.example\r\nSender: new+s@x.example\r\nBcc: new+b@x.example\r\n\r\n",
			"header_sender a@x.example|header_sender s@x.example|header_recipient b@x.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			got, err := cleanHeaders(tc.in, HeaderOptions{Rewrite: marker(&calls)})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if c := strings.Join(calls, "|"); c != tc.calls {
				t.Errorf("calls %q, want %q", c, tc.calls)
			}
		})
	}
}

func TestRewriteHeadersUnsafeReplacement(t *testing.T) {
	in := "From: a@x.example\r\n\r\n"
	got, err := cleanHeaders(in, HeaderOptions{Rewrite: func(context.Context, string, string) (string, error) {
		return "x@y\r\nBcc: evil@example", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got != in {
		t.Errorf("header injection passed: %q", got)
	}
}

// cleanHeaders runs CleanHeaders over in and reads the result.
func cleanHeaders(in string, o HeaderOptions) (string, error) {
	b, err := io.ReadAll(CleanHeaders(context.Background(), strings.NewReader(in), o))
	return string(b), err
}

func TestRewriteHeadersStreams(t *testing.T) {
	// A big body is not read before the caller reads it.
	var calls []string
	body := &countingReader{r: strings.NewReader("From: a@x.example\r\n\r\n" + strings.Repeat("body line\r\n", 1<<17))}
	r := CleanHeaders(context.Background(), body, HeaderOptions{Rewrite: marker(&calls)})
	if _, err := r.Read(make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	if body.n > 128<<10 {
		t.Errorf("read %d bytes before the body was asked for", body.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// BenchmarkCleanup10MB measures the cleanup stage on a 10 MB message
// with canonical and virtual alias maps: the body is streamed.
func BenchmarkCleanup10MB(b *testing.B) {
	msg := "From: Joe <joe@old.example>\r\nTo: a@x.example, b@x.example\r\nSubject: s\r\n\r\n" + strings.Repeat(strings.Repeat("x", 76)+"\r\n", 10<<20/78)
	rules := &Addresses{Canonical: memTable{"@old.example": {"@new.example"}},
		VirtualAlias: memTable{"group@x.example": {"a@x.example, b@x.example, c@x.example"}}}
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		c := &Cleanup{Next: discardQueue{}, Rules: rules}
		env := &queue.Envelope{Sender: "joe@old.example", Recipients: []queue.Recipient{{Address: "group@x.example"}}}
		if err := c.Enqueue(context.Background(), env, strings.NewReader(msg)); err != nil {
			b.Fatal(err)
		}
	}
}

type discardQueue struct{}

func (discardQueue) NewID() queue.ID { return "x" }
func (discardQueue) Enqueue(_ context.Context, _ *queue.Envelope, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
