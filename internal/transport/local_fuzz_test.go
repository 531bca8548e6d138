package transport

import (
	"bufio"
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func FuzzDeliveredTo(f *testing.F) {
	f.Add("Delivered-To: a@b\r\nDelivered-To:\r\n <C@D>\r\n\r\nDelivered-To: body@x\r\n")
	f.Add("Subject: x\n\n")
	f.Add("delivered-to:" + strings.Repeat("x", 5000) + "\n")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := DeliveredTo(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		for k := range got {
			if k == "" || k != strings.ToLower(k) {
				t.Fatalf("bad key %q", k)
			}
		}
	})
}

func FuzzExpandLocal(f *testing.F) {
	f.Add("$home/.forward${recipient_delimiter}${extension}")
	f.Add("${extension?x$user:y}${a:$$}$(home")
	f.Fuzz(func(t *testing.T, s string) {
		vars := map[string]string{"home": "/h", "user": "u", "extension": "e"}
		out, _ := expandLocal(s, vars)
		if len(out) > len(s)*8+64 {
			t.Fatalf("expansion of %q grew to %d bytes", s, len(out))
		}
	})
}

// FuzzMboxMessage checks the mbox writer: one "From " line, every other
// line that starts "From " quoted, no CRLF (but a lone CR before one),
// an empty line last.
func FuzzMboxMessage(f *testing.F) {
	f.Add("Subject: x\r\n\r\nFrom me\r\nbody")
	f.Add("From \rFrom \r\n\r\r\n")
	f.Add(strings.Repeat("a", 70000) + "\r\nFrom x\n")
	f.Fuzz(func(t *testing.T, s string) {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := writeMboxMessage(context.Background(), w, "s@x", []string{"Delivered-To: a@b"}, strings.NewReader(s), time.Unix(0, 0), true); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		out := b.String()
		if !strings.HasSuffix(out, "\n\n") {
			t.Fatalf("no empty line at the end: %q", out)
		}
		if !strings.Contains(s, "\r\r") && strings.Contains(out, "\r\n") {
			t.Fatalf("CRLF left in %q", out)
		}
		if strings.Count("\n"+out, "\nFrom ") != 1 {
			t.Fatalf("unquoted From line in %q", out)
		}
	})
}
