package smtpd

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"
)

// FuzzParseCommand feeds arbitrary command lines through the command,
// MAIL/RCPT argument and parameter parsers: they must never panic, and
// what they accept must be consistent.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"MAIL FROM:<a@b.example> SIZE=10 BODY=8BITMIME",
		"RCPT TO:<@a,@b:user@d> NOTIFY=SUCCESS ORCPT=rfc822;a+2Bb",
		`rcpt to:<"q\"x"@[IPv6:::1]>`, "EHLO x", "", "MAIL FROM:", "BDAT 10 LAST",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		verb, arg := parseCommand(line)
		if verb != strings.ToUpper(verb) {
			t.Fatalf("verb %q not upper case", verb)
		}
		for _, kw := range []string{"FROM", "TO"} {
			p, params, err := parseMailArg(arg, kw)
			if err != nil {
				continue
			}
			for _, pr := range params {
				if pr.Key == "" || pr.HasValue && pr.Value == "" {
					t.Fatalf("bad param %+v from %q", pr, arg)
				}
				decodeXtext(pr.Value)
				parseNotify(pr.Value)
				parseORCPT(pr.Value)
			}
			// The internal form parses back to the same address.
			if !p.Null && !p.Quoted && p.Route == "" {
				q, err := parsePath(p.Raw)
				if err != nil || q.Address() != p.Address() {
					t.Fatalf("reparse of %q: %+v %v", p.Raw, q, err)
				}
			}
		}
	})
}

// FuzzParsePath checks the path parser alone.
func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"", "user@example.com", `"a b"@c`, "@a,@b:c@d", "x@[1.2.3.4]", "x@[IPv6:::1]", "a%b!c@d."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := parsePath(raw)
		if err != nil {
			return
		}
		if p.Null != (raw == "") {
			t.Fatalf("null mismatch for %q", raw)
		}
		if !p.Null && p.Local == "" {
			t.Fatalf("empty local part accepted: %q", raw)
		}
		if p.Domain != "" && !validDomain(p.Domain) {
			t.Fatalf("invalid domain accepted: %q", raw)
		}
		// The reply form is the internal form with the domain as sent.
		if !strings.EqualFold(strings.TrimSuffix(p.Display(), "."), strings.TrimSuffix(p.Address(), ".")) {
			t.Fatalf("Display %q and Address %q differ for %q", p.Display(), p.Address(), raw)
		}
	})
}

// FuzzDotReader feeds arbitrary DATA streams to the content reader: it
// must not panic, must never emit a bare LF, and must stop exactly at the
// first CRLF.CRLF.
func FuzzDotReader(f *testing.F) {
	for _, s := range []string{"a\r\n.\r\n", "..x\r\n.\r\n", "a\n.\nb\r\n.\r\n", "x\r", strings.Repeat("y", 5000) + "\r\n.\r\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		srv := &Server{opts: Options{Timeouts: Timeouts{Data: 1e9}}}
		s := &session{srv: srv, opts: &srv.opts, conn: nopConn{}, r: bufio.NewReaderSize(strings.NewReader(in), 16)}
		d := &dotReader{s: s, limit: 1 << 20, prevCRLF: true, lineStart: true}
		out, err := io.ReadAll(d)
		if err != nil {
			if d.connErr == nil && !d.tooBig {
				t.Fatalf("error without cause: %v", err)
			}
			return
		}
		for i := range out {
			if out[i] == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("bare LF in output %q from %q", out, in)
			}
		}
		if !d.done || (!bytes.HasPrefix([]byte(in), []byte(".\r\n")) && !strings.Contains(in, "\r\n.\r\n")) {
			t.Fatalf("ended without end-of-data: %q", in)
		}
	})
}
