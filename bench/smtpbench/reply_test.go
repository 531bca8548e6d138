package main

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    reply
		wantErr string
	}{
		{"single line", "250 2.0.0 Ok\r\n", reply{250, "2.0.0 Ok"}, ""},
		{"multi-line", "250-fake\r\n250-PIPELINING\r\n250 8BITMIME\r\n", reply{250, "fake\nPIPELINING\n8BITMIME"}, ""},
		{"bare LF", "354 go ahead\n", reply{354, "go ahead"}, ""},
		{"code only", "250\r\n", reply{250, ""}, ""},
		{"code and space", "221 \r\n", reply{221, ""}, ""},
		{"not digits", "hello there\r\n", reply{}, "malformed"},
		{"short", "25\r\n", reply{}, "malformed"},
		{"code out of range", "650 what\r\n", reply{}, "out of range"},
		{"bad separator", "250x ok\r\n", reply{}, "malformed"},
		{"code changes", "250-a\r\n251 b\r\n", reply{}, "code changed"},
		{"line too long", "250 " + strings.Repeat("a", maxReplyLine) + "\r\n", reply{}, "longer than"},
		{"too many lines", strings.Repeat("250-a\r\n", maxReplyLines+1), reply{}, "more than"},
		{"eof mid-reply", "250-a\r\n", reply{}, "EOF"},
		{"eof", "", reply{}, "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readReply(bufio.NewReaderSize(strings.NewReader(tt.in), 16))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("readReply(%q) error %v, want one with %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("readReply(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestReadReplyLeavesNextReply(t *testing.T) {
	br := bufio.NewReader(strings.NewReader("250 one\r\n354 two\r\n"))
	for _, want := range []int{250, 354} {
		r, err := readReply(br)
		if err != nil || r.Code != want {
			t.Fatalf("got %+v, %v; want code %d", r, err, want)
		}
	}
	if _, err := readReply(br); !errors.Is(err, io.EOF) {
		t.Errorf("after the last reply: %v, want EOF", err)
	}
}
