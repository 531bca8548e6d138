package pickup

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func TestServeSMTP(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // reply codes in order
		msgs    []string
		senders []string
		fail    bool
	}{
		{
			name: "one message, dot unstuffed",
			in:   "EHLO me\r\nMAIL FROM:<a@x.example> BODY=8BITMIME\r\nRCPT TO:<b@y.example>\r\nDATA\r\nSubject: s\r\n\r\n..dot\r\n.\r\nQUIT\r\n",
			want: []string{"220", "250", "250", "250", "354", "250", "221"},
			msgs: []string{"Subject: s\r\n\r\n.dot\r\n"}, senders: []string{"a@x.example"},
		},
		{
			name: "sequence errors",
			in:   "RCPT TO:<b@y>\r\nDATA\r\nMAIL FROM:<>\r\nMAIL FROM:<>\r\nDATA\r\nBOGUS\r\nVRFY x\r\nRSET\r\nNOOP\r\nHELO\r\nQUIT\r\n",
			want: []string{"220", "503", "503", "250", "503", "503", "502", "252", "250", "250", "501", "221"},
		},
		{
			name: "too big, then a good one",
			in:   "HELO me\r\nMAIL FROM:<a@x> SIZE=999999\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\n" + strings.Repeat("x", 200) + "\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<b@y>\r\nDATA\r\nok\r\n.\r\n",
			want: []string{"220", "250", "552", "250", "250", "354", "552", "250", "250", "354", "250"},
			msgs: []string{"ok\r\n"}, senders: []string{""},
		},
		{
			name: "submit fails: 451",
			in:   "MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\nok\r\n.\r\n",
			want: []string{"220", "250", "250", "354", "451"},
			fail: true,
		},
		{
			name: "long line, bad syntax",
			in:   strings.Repeat("N", 5000) + "\r\nMAIL FROM:a@x>\r\nMAIL FROM:<a@x> FOO=1\r\n",
			want: []string{"220", "500", "501", "555"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			var msgs, senders []string
			err := ServeSMTP(strings.NewReader(tt.in), &out, SMTPOptions{Hostname: "mx.example.com", MaxSize: 100,
				Submit: func(s *Submission, r io.Reader) error {
					if tt.fail {
						return errors.New("disk full")
					}
					b, _ := io.ReadAll(r)
					msgs = append(msgs, string(b))
					senders = append(senders, s.Sender)
					return nil
				}})
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			for _, l := range strings.Split(strings.TrimSuffix(out.String(), "\r\n"), "\r\n") {
				if len(l) >= 4 && l[3] == '-' {
					continue
				}
				codes = append(codes, l[:3])
			}
			if strings.Join(codes, " ") != strings.Join(tt.want, " ") {
				t.Errorf("replies %v, want %v\n%s", codes, tt.want, out.String())
			}
			if strings.Join(msgs, "|") != strings.Join(tt.msgs, "|") || strings.Join(senders, "|") != strings.Join(tt.senders, "|") {
				t.Errorf("messages %q from %q, want %q from %q", msgs, senders, tt.msgs, tt.senders)
			}
		})
	}
}

func TestServeSMTPCutOff(t *testing.T) {
	var out strings.Builder
	err := ServeSMTP(strings.NewReader("MAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\nDATA\r\npartial"), &out,
		SMTPOptions{Hostname: "h", Submit: func(*Submission, io.Reader) error { t.Fatal("submitted a cut-off message"); return nil }})
	if err == nil {
		t.Fatal("no error for input ending inside DATA")
	}
}

func FuzzServeSMTP(f *testing.F) {
	f.Add("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out strings.Builder
		ServeSMTP(strings.NewReader(in), &out, SMTPOptions{Hostname: "h", MaxSize: 1000,
			Submit: func(s *Submission, r io.Reader) error {
				if err := s.Validate(); err != nil {
					t.Fatalf("invalid submission accepted: %v", err)
				}
				io.Copy(io.Discard, r)
				return nil
			}})
	})
}
