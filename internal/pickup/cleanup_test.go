package pickup

import (
	"net/mail"
	"reflect"
	"strings"
	"testing"
	"time"

	"postcote/internal/queue"
)

var testSite = Site{MyHostname: "mx.example.com", MyOrigin: "example.com"}

var testNow = time.Date(2026, 11, 25, 2, 6, 36, 0, time.UTC)

func TestPrepare(t *testing.T) {
	tests := []struct {
		name    string
		sub     Submission
		msg     string
		login   string
		sender  string
		rcpts   []string
		content string
		wantErr error
	}{
		{
			name:   "bare body, everything added",
			sub:    Submission{Recipients: []string{"user"}},
			msg:    "hello\n",
			login:  "root",
			sender: "root@example.com",
			rcpts:  []string{"user@example.com"},
			content: "Received: by mx.example.com (postcote, from userid 0)\r\n\tid 4ABC; Wed, 25 Nov 2026 02:06:36 +0000 (UTC)\r\n" +
				"Message-Id: <20261125020636.4ABC@mx.example.com>\r\n" +
				"Date: Wed, 25 Nov 2026 02:06:36 +0000 (UTC)\r\n" +
				"From: root@example.com\r\n\r\nhello\r\n",
		},
		{
			name:   "-t with Bcc removed, header kept, full name",
			sub:    Submission{Extract: true, FullName: "Cron Daemon", Sender: "cron", SenderSet: true},
			msg:    "To: a@x.example, B <b@y.example>\nCc: c\nBcc: hidden@z.example\nSubject: hi\nMessage-ID: <m1@x>\nDate: Tue, 24 Nov 2026 10:00:00 +0000\n\nbody\n.\nend",
			login:  "root",
			sender: "cron@example.com",
			rcpts:  []string{"a@x.example", "b@y.example", "c@example.com", "hidden@z.example"},
			content: "Received: by mx.example.com (postcote, from userid 0)\r\n\tid 4ABC; Wed, 25 Nov 2026 02:06:36 +0000 (UTC)\r\n" +
				"To: a@x.example, B <b@y.example>\r\nCc: c@example.com\r\nSubject: hi\r\nMessage-ID: <m1@x>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n" +
				"From: Cron Daemon <cron@example.com>\r\n\r\nbody\r\n.\r\nend\r\n",
		},
		{
			name:   "Resent headers take precedence, duplicates removed, folded Bcc removed",
			sub:    Submission{Extract: true, Recipients: []string{"r@x.example"}},
			msg:    "From: me@example.com\r\nTo: old@x.example\r\nResent-To: r@x.example, R2@x.example\r\nResent-Bcc: s@x.example,\r\n t@x.example\r\n\r\nb\r\n",
			login:  "alice",
			sender: "alice@example.com",
			rcpts:  []string{"r@x.example", "R2@x.example", "s@x.example", "t@x.example"},
		},
		{
			name:   "null sender gets MAILER-DAEMON",
			sub:    Submission{Recipients: []string{"u@x.example"}, SenderSet: true},
			msg:    "Subject: x\n\nb\n",
			login:  "root",
			sender: "",
			rcpts:  []string{"u@x.example"},
		},
		{
			name:    "-t without recipients",
			sub:     Submission{Extract: true},
			msg:     "Subject: nobody\n\nb\n",
			login:   "root",
			wantErr: ErrNoRecipients,
		},
		{
			name:   "group syntax and a quoted full name",
			sub:    Submission{Extract: true, FullName: `J. "Q" Public`},
			msg:    "To: undisclosed-recipients:;\nCc: team: a@x.example, b@x.example;\n\nb\n",
			login:  "bob",
			sender: "bob@example.com",
			rcpts:  []string{"a@x.example", "b@x.example"},
		},
		{
			name:   "body without blank line after header, mbox From line dropped",
			sub:    Submission{Recipients: []string{"u@x.example"}},
			msg:    "From root Tue Nov 24 10:00:00 2026\nSubject: s\nnot a header line\nmore\n",
			login:  "root",
			sender: "root@example.com",
			rcpts:  []string{"u@x.example"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, content, err := Prepare(&tt.sub, []byte(tt.msg), 0, tt.login, "4ABC", testNow, testSite)
			if tt.wantErr != nil {
				if err != tt.wantErr {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if env.Sender != tt.sender {
				t.Errorf("sender = %q, want %q", env.Sender, tt.sender)
			}
			var got []string
			for _, r := range env.Recipients {
				got = append(got, r.Address)
			}
			if !reflect.DeepEqual(got, tt.rcpts) {
				t.Errorf("recipients = %q, want %q", got, tt.rcpts)
			}
			c := string(content)
			if tt.content != "" && c != tt.content {
				t.Errorf("content:\n%q\nwant\n%q", c, tt.content)
			}
			if strings.Contains(strings.ToLower(c), "bcc:") {
				t.Errorf("Bcc left in content: %q", c)
			}
			if strings.Contains(strings.ReplaceAll(c, "\r\n", ""), "\n") {
				t.Errorf("bare LF in content: %q", c)
			}
			if !strings.HasPrefix(c, "Received: by mx.example.com (postcote, from userid 0)\r\n\tid 4ABC; ") {
				t.Errorf("no Received header first: %q", c)
			}
			hdr, _, _ := strings.Cut(c, "\r\n\r\n")
			for _, h := range []string{"\r\nFrom:", "\r\nDate:", "\r\nMessage-I"} {
				if strings.Count(hdr, h) != 1 {
					t.Errorf("header must have one %q: %q", h, hdr)
				}
			}
		})
	}
}

func TestFromHeader(t *testing.T) {
	tests := []struct {
		name, sender string
		format       FromFormat
		want         string
	}{
		{"", "a@b", FromStandard, "a@b"},
		{"Jane Doe", "a@b", FromStandard, "Jane Doe <a@b>"},
		{"  Jane \t Doe ", "a@b", FromStandard, "Jane Doe <a@b>"},
		{"root", "root+examplehost@example.com", FromStandard, "root <root+examplehost@example.com>"},
		{"J. Doe", "a@b", FromStandard, `"J. Doe" <a@b>`},
		{"50% off", "a@b", FromStandard, `"50% off" <a@b>`},
		{"Hey!", "a@b", FromStandard, `"Hey!" <a@b>`},
		{"Doe, Jane", "a@b", FromStandard, `"Doe, Jane" <a@b>`},
		{`say "hi"`, "a@b", FromStandard, `"say \"hi\"" <a@b>`},
		{`back\slash`, "a@b", FromStandard, `"back\\slash" <a@b>`},
		{"Jürgen", "a@b", FromStandard, "=?utf-8?b?SsO8cmdlbg==?= <a@b>"},
		{"   ", "a@b", FromStandard, "<a@b>"},
		{"a\x15b\x7f", "a@b", FromStandard, "a b <a@b>"},
		{"Jane", "", FromStandard, "MAILER-DAEMON"},
		{"Jane Doe", "a@b", FromObsolete, "a@b (Jane Doe)"},
		{"J. (Jr) Doe", "a@b", FromObsolete, "a@b (J. (Jr) Doe)"},
		{"smiley :)", "a@b", FromObsolete, `a@b (smiley :\))`},
		{`a\b (`, "a@b", FromObsolete, `a@b (a\\b \()`},
		{"Jürgen", "a@b", FromObsolete, "a@b (=?utf-8?b?SsO8cmdlbg==?=)"},
		{"Jane", "", FromObsolete, "MAILER-DAEMON"},
		{"", "a@b", FromObsolete, "a@b"},
	}
	for _, tt := range tests {
		got := fromHeader(tt.name, tt.sender, tt.format)
		if got != tt.want {
			t.Errorf("fromHeader(%q, %q, %d) = %q, want %q", tt.name, tt.sender, tt.format, got, tt.want)
		}
		// What is written must read back as the sender (RFC 5322).
		if tt.sender != "" {
			a, err := mail.ParseAddress(got)
			if err != nil {
				t.Errorf("From: %s does not parse: %v", got, err)
			} else if a.Address != tt.sender {
				t.Errorf("From: %s parses as %q", got, a.Address)
			}
		}
	}
}

func TestParseFromFormat(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want FromFormat
		ok   bool
	}{{"standard", FromStandard, true}, {"obsolete", FromObsolete, true}, {" Obsolete ", FromObsolete, true},
		{"", 0, false}, {"comment", 0, false}} {
		got, err := ParseFromFormat(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
			t.Errorf("ParseFromFormat(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestGecosFullName(t *testing.T) {
	for _, tt := range []struct{ gecos, login, want string }{
		{"root", "root", "root"},
		{"Jane Doe,Room 1,555-1234,", "jane", "Jane Doe"},
		{"& Smith", "bob", "Bob Smith"},
		{"&;other", "bob", "Bob"},
		{"100%;x", "u", "100"},
		{"&", "", ""},
		{"&-&", "9lives", "9lives-9lives"},
		{"", "nobody", ""},
	} {
		if got := GecosFullName(tt.gecos, tt.login); got != tt.want {
			t.Errorf("GecosFullName(%q, %q) = %q, want %q", tt.gecos, tt.login, got, tt.want)
		}
	}
}

// TestOrigRecipient: the queue keeps a command-line recipient as it was
// given (Postfix's orig_to=), and a -t recipient as the header names it
// after qualification.
func TestOrigRecipient(t *testing.T) {
	sub := &Submission{Recipients: []string{"root", "<admin>", "u@x.example", "ROOT@example.com"}, Extract: true}
	env, _, err := Prepare(sub, []byte("To: hdr, v@x.example\nCc: root\n\nb\n"), 0, "bob", "4ABC", testNow, testSite)
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]string
	for _, r := range env.Recipients {
		got = append(got, [2]string{r.Address, r.OrigAddress})
	}
	want := [][2]string{
		{"root@example.com", "root"},
		{"admin@example.com", "admin"},
		{"u@x.example", "u@x.example"},
		{"hdr@example.com", "hdr@example.com"},
		{"v@x.example", "v@x.example"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("recipients (address, original) = %q, want %q", got, want)
	}
	if r := Recipients(sub, []byte("To: hdr\n\nb\n"), "example.com"); !reflect.DeepEqual(r, []string{"root@example.com", "admin@example.com", "u@x.example", "hdr@example.com"}) {
		t.Errorf("Recipients = %q", r)
	}
}

func TestQualify(t *testing.T) {
	for in, want := range map[string]string{
		"root": "root@example.com", "<root>": "root@example.com", "a@b": "a@b", "<a@b>": "a@b", "": "",
	} {
		if got := qualify(in, "example.com"); got != want {
			t.Errorf("qualify(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPrepareDSN(t *testing.T) {
	sub := &Submission{Recipients: []string{"u@x.example"}, Notify: "success,failure", EnvID: "E1", Ret: "hdrs", BodyType: "8bitmime"}
	env, _, err := Prepare(sub, []byte("b\n"), 1000, "bob", queue.ID("4ABC"), testNow, testSite)
	if err != nil {
		t.Fatal(err)
	}
	if env.Recipients[0].DSNNotify != "SUCCESS,FAILURE" || env.DSNEnvID != "E1" || env.DSNRet != "HDRS" || env.BodyType != "8BITMIME" {
		t.Errorf("DSN fields not carried: %+v", env)
	}
	if env.Protocol != "local" || env.ID != "4ABC" || !env.Arrival.Equal(testNow) {
		t.Errorf("envelope: %+v", env)
	}
}

func TestQualifyField(t *testing.T) {
	tests := []struct{ in, want string }{
		{"To: root", "To: root@example.com"},
		{"To: a@b.example,\n Jane <jane>", "To: a@b.example, Jane <jane@example.com>"},
		{"From: \"J. Doe\" <jd>", "From: \"J. Doe\" <jd@example.com>"},
		{"To: a@b.example (comment kept)", "To: a@b.example (comment kept)"},
		{"To: undisclosed-recipients:;", "To: undisclosed-recipients:;"},
		{"To: <broken", "To: <broken"},
		{"Cc: root (the admin), \"x, y\" <a@b>", "Cc: root@example.com (the admin), \"x, y\" <a@b>"},
		{"To: <>", "To: <>"},
	}
	for _, tt := range tests {
		m := splitMessage([]byte(tt.in + "\n\nbody\n"))
		got := strings.Join(qualifyField(m.fields[0], "example.com").lines, "\n")
		if got != tt.want {
			t.Errorf("qualifyField(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestPrepareHeaderFrom: the From: header Prepare adds follows the site's
// header_from_format, and a message with a From: keeps its own.
func TestPrepareHeaderFrom(t *testing.T) {
	tests := []struct {
		format FromFormat
		msg    string
		want   string
	}{
		{FromStandard, "Subject: s\n\nb\n", "\r\nFrom: Jane Doe <jane@example.com>\r\n"},
		{FromObsolete, "Subject: s\n\nb\n", "\r\nFrom: jane@example.com (Jane Doe)\r\n"},
		{FromObsolete, "From: Other <other@x.example>\n\nb\n", "\r\nFrom: Other <other@x.example>\r\n"},
	}
	for _, tt := range tests {
		site := testSite
		site.HeaderFrom = tt.format
		sub := &Submission{Recipients: []string{"u@x.example"}, FullName: "Jane Doe"}
		_, content, err := Prepare(sub, []byte(tt.msg), 1000, "jane", "4ABC", testNow, site)
		if err != nil {
			t.Fatal(err)
		}
		hdr, _, _ := strings.Cut(string(content), "\r\n\r\n")
		if !strings.Contains(hdr+"\r\n", tt.want) || strings.Count(hdr, "\r\nFrom:") != 1 {
			t.Errorf("format %d, %q: header\n%s\nwant one From: %q", tt.format, tt.msg, hdr, tt.want)
		}
	}
}
