package main

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

// FuzzReadReply: any bytes from a server give a reply or an error, never a
// panic, and a reply always has a code from 200 to 599 and bounded text.
func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 2.0.0 Ok\r\n",
		"250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
		"354 go\n",
		"220-a\r\n250 b\r\n",
		"hello\r\n",
		"250",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(in), 16)
		r, err := readReply(br)
		if err != nil {
			if r.Text != "" {
				t.Errorf("error %v with text %q", err, r.Text)
			}
			return
		}
		if r.Code < 200 || r.Code > 599 {
			t.Errorf("code %d out of range", r.Code)
		}
		if len(r.Text) > maxReplyLine*maxReplyLines || strings.Count(r.Text, "\n") >= maxReplyLines {
			t.Errorf("text of %d bytes", len(r.Text))
		}
	})
}
