package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"postcote/internal/queue"
)

const plainMsg = "From: s@example.com\r\nTo: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n.dot line\r\n"

func smtpEnv(rcpts ...string) *queue.Envelope {
	env := &queue.Envelope{ID: "4cTESTQ1", Sender: "s@example.com"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, queue.Recipient{Address: r})
	}
	return env
}

func allIdx(env *queue.Envelope) []int {
	var out []int
	for i := range env.Recipients {
		out = append(out, i)
	}
	return out
}

type clientSetup struct {
	net  *testNet
	dns  *StaticResolver
	logs *[]string
}

func newTestClient(t *testing.T, dns *StaticResolver, routes map[string]string) (*SMTP, *testNet, func() []string) {
	t.Helper()
	tn := &testNet{to: routes}
	var mu sync.Mutex
	var logs []string
	c := &SMTP{HeloName: "client.example", Resolver: dns, Dial: tn.dial,
		ConnectTimeout: 5 * time.Second, HeloTimeout: 5 * time.Second, MailTimeout: 5 * time.Second,
		RcptTimeout: 5 * time.Second, DataInitTimeout: 5 * time.Second, DataXferTimeout: 5 * time.Second,
		DataDoneTimeout: 5 * time.Second, QuitTimeout: 5 * time.Second, MXAddressLimit: 5, MXSessionLimit: 2,
		Logf: func(format string, args ...any) {
			mu.Lock()
			logs = append(logs, fmt.Sprintf(format, args...))
			mu.Unlock()
		}}
	return c, tn, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), logs...) }
}

func exampleDNS() *StaticResolver {
	return &StaticResolver{
		MX: map[string][]*net.MX{
			"example.org":       {{Host: "mx2.example.org", Pref: 20}, {Host: "mx1.example.org", Pref: 10}},
			"nullmx.example":    {{Host: ".", Pref: 0}},
			"relay.example.org": {{Host: "elsewhere.example.org", Pref: 10}},
		},
		IP: map[string][]net.IPAddr{
			"mx1.example.org":       ips("127.0.0.2"),
			"mx2.example.org":       ips("127.0.0.3"),
			"relay.example.org":     ips("127.0.0.4"),
			"elsewhere.example.org": ips("127.0.0.5"),
			"amx.example.net":       ips("127.0.0.6"),
		},
	}
}

// TestSMTPRouting covers how the next hop becomes addresses: MX order,
// fall-back to the next MX, A records without MX, null MX, NXDOMAIN and
// relayhost forms that skip the MX lookup.
func TestSMTPRouting(t *testing.T) {
	good := startFakeMX(t, &fakeMX{})
	busy := startFakeMX(t, &fakeMX{greeting: "421 4.3.2 busy"})
	tests := []struct {
		name    string
		nexthop string
		routes  map[string]string
		status  queue.Status
		dsn     string
		relay   string
		reply   string
		dialed  []string
	}{
		{"first MX", "example.org", map[string]string{"127.0.0.2:25": good.addr(), "127.0.0.3:25": good.addr()},
			queue.StatusSent, "2.0.0", "mx1.example.org[127.0.0.2]:25", "250 2.0.0 Ok: queued as ABC", []string{"127.0.0.2:25"}},
		{"refused, next MX", "example.org", map[string]string{"127.0.0.3:25": good.addr()},
			queue.StatusSent, "2.0.0", "mx2.example.org[127.0.0.3]:25", "250 2.0.0 Ok: queued as ABC", []string{"127.0.0.2:25", "127.0.0.3:25"}},
		{"4xx greeting, next MX", "example.org", map[string]string{"127.0.0.2:25": busy.addr(), "127.0.0.3:25": good.addr()},
			queue.StatusSent, "2.0.0", "mx2.example.org[127.0.0.3]:25", "250 2.0.0 Ok: queued as ABC", []string{"127.0.0.2:25", "127.0.0.3:25"}},
		{"all refused", "example.org", nil,
			queue.StatusDeferred, "4.4.1", "none", "connect to mx2.example.org[127.0.0.3]:25: Connection refused", []string{"127.0.0.2:25", "127.0.0.3:25"}},
		{"4xx greeting only", "example.org", map[string]string{"127.0.0.2:25": busy.addr(), "127.0.0.3:25": busy.addr()},
			queue.StatusDeferred, "4.3.2", "mx2.example.org[127.0.0.3]:25", "host mx2.example.org[127.0.0.3] refused to talk to me: 421 4.3.2 busy", nil},
		{"no MX, A record", "amx.example.net", map[string]string{"127.0.0.6:25": good.addr()},
			queue.StatusSent, "2.0.0", "amx.example.net[127.0.0.6]:25", "", []string{"127.0.0.6:25"}},
		{"null MX", "nullmx.example", nil,
			queue.StatusBounced, "5.1.10", "none", "Domain nullmx.example does not accept mail (nullMX)", []string{}},
		{"no such domain", "nowhere.invalid", nil,
			queue.StatusBounced, "5.4.4", "none", "Host or domain name not found. Name service error for name=nowhere.invalid type=MX: Host not found", []string{}},
		{"relayhost in brackets skips MX", "[relay.example.org]:587", map[string]string{"127.0.0.4:587": good.addr()},
			queue.StatusSent, "2.0.0", "relay.example.org[127.0.0.4]:587", "", []string{"127.0.0.4:587"}},
		{"relayhost host:port does MX", "relay.example.org:587", map[string]string{"127.0.0.5:587": good.addr()},
			queue.StatusSent, "2.0.0", "elsewhere.example.org[127.0.0.5]:587", "", []string{"127.0.0.5:587"}},
		{"IP literal", "[127.0.0.9]", map[string]string{"127.0.0.9:25": good.addr()},
			queue.StatusSent, "2.0.0", "127.0.0.9[127.0.0.9]:25", "", []string{"127.0.0.9:25"}},
		{"relayhost that does not resolve defers", "[nowhere.invalid]:587", nil,
			queue.StatusDeferred, "4.4.4", "none", "Host or domain name not found. Name service error for name=nowhere.invalid type=A: Host not found", []string{}},
		{"bad next hop", "[oops", nil, queue.StatusDeferred, "4.3.5", "none", "", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, tn, _ := newTestClient(t, exampleDNS(), tc.routes)
			rcpt := "a@example.org"
			if !strings.ContainsAny(tc.nexthop, "[:") {
				rcpt = "a@" + tc.nexthop // the router's next hop is the domain
			}
			env := smtpEnv(rcpt)
			res := c.Send(context.Background(), env, int64(len(plainMsg)), opener(plainMsg), []int{0}, tc.nexthop)
			if len(res) != 1 {
				t.Fatalf("%d results", len(res))
			}
			r := res[0]
			if r.Status != tc.status || r.DSN != tc.dsn || r.Relay != tc.relay || r.Transport != "smtp" {
				t.Errorf("got %v %s relay=%s transport=%s (%s), want %v %s relay=%s", r.Status, r.DSN, r.Relay, r.Transport, r.Reply, tc.status, tc.dsn, tc.relay)
			}
			if tc.reply != "" && r.Reply != tc.reply {
				t.Errorf("reply %q, want %q", r.Reply, tc.reply)
			}
			if tc.dialed != nil && strings.Join(tn.dialed(), ",") != strings.Join(tc.dialed, ",") {
				t.Errorf("dialed %v, want %v", tn.dialed(), tc.dialed)
			}
		})
	}
}

func TestSMTPEqualPreferenceShuffled(t *testing.T) {
	dns := &StaticResolver{MX: map[string][]*net.MX{"example.org": {{Host: "a.example.org", Pref: 10}, {Host: "b.example.org", Pref: 10}, {Host: "c.example.org", Pref: 5}}},
		IP: map[string][]net.IPAddr{"a.example.org": ips("127.0.0.2"), "b.example.org": ips("127.0.0.3"), "c.example.org": ips("127.0.0.4")}}
	c := &SMTP{Resolver: dns}
	seen := map[string]bool{}
	for i := 0; i < 200 && len(seen) < 2; i++ {
		ts, err := c.resolve(context.Background(), "example.org", "25", false, 0)
		if err != nil || len(ts) != 3 {
			t.Fatalf("%v %v", ts, err)
		}
		if ts[0].name != "c.example.org" {
			t.Fatalf("lowest preference not first: %v", ts)
		}
		seen[ts[1].name] = true
	}
	if len(seen) != 2 {
		t.Errorf("equal-preference MX hosts never shuffled: %v", seen)
	}
	ts, _ := c.resolve(context.Background(), "example.org", "25", false, 2)
	if len(ts) != 2 {
		t.Errorf("smtp_mx_address_limit not applied: %v", ts)
	}
}

func TestSMTPRecipientReplies(t *testing.T) {
	for _, pipelining := range []bool{true, false} {
		t.Run(fmt.Sprintf("pipelining=%v", pipelining), func(t *testing.T) {
			f := &fakeMX{rcptReply: func(a string) string {
				switch a {
				case "x@example.org":
					return "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown"
				case "t@example.org":
					return "450 4.2.0 <t@example.org>: try later"
				}
				return "250 2.1.5 Ok"
			}}
			if pipelining {
				f.ext = []string{"PIPELINING"}
			}
			startFakeMX(t, f)
			// One MX only, so the soft failure is final.
			dns := &StaticResolver{MX: map[string][]*net.MX{"example.org": {{Host: "mx1.example.org", Pref: 10}}}, IP: exampleDNS().IP}
			c, _, _ := newTestClient(t, dns, map[string]string{"127.0.0.2:25": f.addr()})
			env := smtpEnv("a@example.org", "x@example.org", "t@example.org", "b@example.org")
			res := c.Send(context.Background(), env, int64(len(plainMsg)), opener(plainMsg), allIdx(env), "example.org")
			want := []struct {
				st    queue.Status
				dsn   string
				reply string
			}{
				{queue.StatusSent, "2.0.0", "250 2.0.0 Ok: queued as ABC"},
				{queue.StatusBounced, "5.1.1", "host mx1.example.org[127.0.0.2] said: 550 5.1.1 <x@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command)"},
				{queue.StatusDeferred, "4.2.0", "host mx1.example.org[127.0.0.2] said: 450 4.2.0 <t@example.org>: try later (in reply to RCPT TO command)"},
				{queue.StatusSent, "2.0.0", "250 2.0.0 Ok: queued as ABC"},
			}
			for i, w := range want {
				r := res[i]
				if r.Rcpt != i || r.Status != w.st || r.DSN != w.dsn || r.Reply != w.reply || r.Relay != "mx1.example.org[127.0.0.2]:25" {
					t.Errorf("rcpt %d: %+v, want %v %s %q", i, r, w.st, w.dsn, w.reply)
				}
			}
			if res[1].RemoteReply != "550 5.1.1 <x@example.org>: Recipient address rejected: User unknown" || res[1].RemoteMTA != "mx1.example.org" {
				t.Errorf("remote reply %q mta %q", res[1].RemoteReply, res[1].RemoteMTA)
			}
			if n := len(f.messages()); n != 1 {
				t.Fatalf("%d messages, want one for all accepted recipients", n)
			}
			if got := f.messages()[0]; got != plainMsg {
				t.Errorf("content %q", got)
			}
			f.mu.Lock()
			grouped := f.pipe[0]
			f.mu.Unlock()
			if grouped != pipelining {
				t.Errorf("commands buffered after MAIL = %v, want %v (RFC 2920 grouping)", grouped, pipelining)
			}
		})
	}
}

func TestSMTPSoftRecipientTriesNextMX(t *testing.T) {
	first := startFakeMX(t, &fakeMX{rcptReply: func(string) string { return "451 4.3.0 temporary" }})
	second := startFakeMX(t, &fakeMX{})
	c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": first.addr(), "127.0.0.3:25": second.addr()})
	env := smtpEnv("a@example.org")
	res := c.Send(context.Background(), env, int64(len(plainMsg)), opener(plainMsg), []int{0}, "example.org")
	if res[0].Status != queue.StatusSent || res[0].Relay != "mx2.example.org[127.0.0.3]:25" {
		t.Errorf("%+v", res[0])
	}
}

func TestSMTPAllRefusedAndMailRefused(t *testing.T) {
	f := startFakeMX(t, &fakeMX{ext: []string{"PIPELINING"}, rcptReply: func(string) string { return "550 5.1.1 no" }})
	c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": f.addr()})
	env := smtpEnv("a@example.org", "b@example.org")
	res := c.Send(context.Background(), env, 10, opener(plainMsg), allIdx(env), "[mx1.example.org]")
	for _, r := range res {
		if r.Status != queue.StatusBounced || r.DSN != "5.1.1" {
			t.Errorf("%+v", r)
		}
	}
	if len(f.messages()) != 0 {
		t.Error("content sent with no accepted recipient")
	}
	// The pipelined DATA got 554 here; the client must not have sent data.
	for _, cmd := range f.commands() {
		if cmd == "." {
			t.Error("end of data sent")
		}
	}
}

func TestSMTPHELOFallbackAndDataReply(t *testing.T) {
	f := startFakeMX(t, &fakeMX{noEHLO: true, dataReply: "554 5.7.1 spam"})
	c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": f.addr()})
	env := smtpEnv("a@example.org")
	res := c.Send(context.Background(), env, 10, opener(plainMsg), []int{0}, "[mx1.example.org]")
	if res[0].Status != queue.StatusBounced || res[0].DSN != "5.7.1" ||
		res[0].Reply != "host mx1.example.org[127.0.0.2] said: 554 5.7.1 spam (in reply to end of DATA command)" {
		t.Errorf("%+v", res[0])
	}
	cmds := f.commands()
	if len(cmds) < 2 || cmds[0] != "EHLO client.example" || cmds[1] != "HELO client.example" {
		t.Errorf("commands %q", cmds)
	}
	for _, cmd := range cmds {
		if strings.Contains(cmd, "SIZE=") || strings.Contains(cmd, "BODY=") {
			t.Errorf("ESMTP parameter sent to an SMTP server: %q", cmd)
		}
	}
}

func TestSMTPSizeRefusal(t *testing.T) {
	f := startFakeMX(t, &fakeMX{ext: []string{"SIZE 20"}})
	c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": f.addr()})
	env := smtpEnv("a@example.org")
	res := c.Send(context.Background(), env, int64(len(plainMsg)), opener(plainMsg), []int{0}, "[mx1.example.org]")
	if res[0].Status != queue.StatusBounced || res[0].DSN != "5.3.4" ||
		res[0].Reply != fmt.Sprintf("message size %d exceeds size limit 20 of server mx1.example.org[127.0.0.2]", len(plainMsg)) {
		t.Errorf("%+v", res[0])
	}
	if f.sawMail() {
		t.Error("MAIL sent although the server's SIZE is too small")
	}
	// A big enough SIZE: declared in MAIL.
	g := startFakeMX(t, &fakeMX{ext: []string{"SIZE 100000"}})
	c.Dial = (&testNet{to: map[string]string{"127.0.0.2:25": g.addr()}}).dial
	res = c.Send(context.Background(), env, int64(len(plainMsg)), opener(plainMsg), []int{0}, "[mx1.example.org]")
	if res[0].Status != queue.StatusSent {
		t.Errorf("%+v", res[0])
	}
	if want := fmt.Sprintf("MAIL FROM:<s@example.com> SIZE=%d", len(plainMsg)); !contains(g.commands(), want) {
		t.Errorf("commands %q, want %q", g.commands(), want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

const eightBitMsg = "From: s@example.com\r\nSubject: caf\xc3\xa9\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nCaf\xc3\xa9 cr\xc3\xa8me\r\n"

func TestSMTP8BitMIME(t *testing.T) {
	tests := []struct {
		name     string
		ext      []string
		disable  bool
		wantBody string // "" = the content as queued
		wantMail string
	}{
		{"server has 8BITMIME", []string{"8BITMIME"}, false, "", "MAIL FROM:<s@example.com> BODY=8BITMIME"},
		{"downgrade to quoted-printable", nil, false, "Caf=C3=A9 cr=C3=A8me\r\n", "MAIL FROM:<s@example.com>"},
		{"conversion disabled: sent as is", nil, true, "", "MAIL FROM:<s@example.com>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeMX(t, &fakeMX{ext: tc.ext})
			c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": f.addr()})
			c.DisableMIMEConversion = tc.disable
			env := smtpEnv("a@example.org")
			env.BodyType = "8BITMIME"
			res := c.Send(context.Background(), env, int64(len(eightBitMsg)), opener(eightBitMsg), []int{0}, "[mx1.example.org]")
			if res[0].Status != queue.StatusSent {
				t.Fatalf("%+v", res[0])
			}
			if !contains(f.commands(), tc.wantMail) {
				t.Errorf("commands %q, want %q", f.commands(), tc.wantMail)
			}
			got := f.messages()[0]
			if tc.wantBody == "" {
				if got != eightBitMsg {
					t.Errorf("content changed: %q", got)
				}
				return
			}
			hdr, body, _ := strings.Cut(got, "\r\n\r\n")
			if body != tc.wantBody {
				t.Errorf("body %q, want %q", body, tc.wantBody)
			}
			if !strings.Contains(hdr, "Content-Transfer-Encoding: quoted-printable\r\n") || strings.Contains(hdr, "8bit\r\n") ||
				!strings.Contains(hdr, "X-MIME-Autoconverted: from 8bit to quoted-printable by client.example id 4cTESTQ1") {
				t.Errorf("header %q", hdr)
			}
			dec, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
			if err != nil || string(dec) != "Caf\xc3\xa9 cr\xc3\xa8me\r\n" {
				t.Errorf("decoded %q %v", dec, err)
			}
		})
	}
}

func TestSMTPUTF8(t *testing.T) {
	env := smtpEnv("j\xc3\xb6rg@example.org")
	env.SMTPUTF8 = true
	msg := "From: s@example.com\r\nTo: j\xc3\xb6rg@example.org\r\n\r\nhi\r\n"
	f := startFakeMX(t, &fakeMX{ext: []string{"8BITMIME"}})
	c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": f.addr()})
	res := c.Send(context.Background(), env, int64(len(msg)), opener(msg), []int{0}, "[mx1.example.org]")
	if res[0].Status != queue.StatusBounced || res[0].DSN != "5.6.7" ||
		res[0].Reply != "SMTPUTF8 is required, but was not offered by host mx1.example.org[127.0.0.2]" {
		t.Errorf("%+v", res[0])
	}
	if f.sawMail() {
		t.Error("MAIL sent to a server without SMTPUTF8")
	}
	g := startFakeMX(t, &fakeMX{ext: []string{"8BITMIME", "SMTPUTF8"}})
	c.Dial = (&testNet{to: map[string]string{"127.0.0.2:25": g.addr()}}).dial
	res = c.Send(context.Background(), env, int64(len(msg)), opener(msg), []int{0}, "[mx1.example.org]")
	if res[0].Status != queue.StatusSent || !contains(g.commands(), "MAIL FROM:<s@example.com> BODY=8BITMIME SMTPUTF8") {
		t.Errorf("%+v %q", res[0], g.commands())
	}
}

func TestSMTPDSNParameters(t *testing.T) {
	env := smtpEnv("a@example.org", "b@example.org")
	env.DSNRet, env.DSNEnvID = "HDRS", "id+1 x"
	env.Recipients[0].DSNNotify, env.Recipients[0].DSNORcpt = "SUCCESS,FAILURE", "rfc822;A@example.org"
	env.Recipients[1].DSNORcpt = "rfc822;bad value" // not valid xtext: dropped
	for _, offered := range []bool{true, false} {
		f := &fakeMX{}
		if offered {
			f.ext = []string{"DSN"}
		}
		startFakeMX(t, f)
		c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": f.addr()})
		res := c.Send(context.Background(), env, 10, opener(plainMsg), allIdx(env), "[mx1.example.org]")
		cmds := f.commands()
		if offered {
			for _, want := range []string{"MAIL FROM:<s@example.com> RET=HDRS ENVID=id+2B1+20x",
				"RCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;A@example.org", "RCPT TO:<b@example.org>"} {
				if !contains(cmds, want) {
					t.Errorf("commands %q lack %q", cmds, want)
				}
			}
			if !res[0].DSNPassedOn || res[0].Relayed || res[1].DSNPassedOn {
				t.Errorf("DSN flags %+v", res)
			}
		} else {
			for _, cmd := range cmds {
				if strings.Contains(cmd, "NOTIFY") || strings.Contains(cmd, "RET=") {
					t.Errorf("DSN parameter to a server without DSN: %q", cmd)
				}
			}
			if res[0].DSNPassedOn || !res[0].Relayed {
				t.Errorf("DSN flags %+v", res[0])
			}
		}
	}
}

func TestSMTPLostConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("220 hi\r\n"))
			c.Close()
		}
	}()
	c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": ln.Addr().String()})
	res := c.Send(context.Background(), smtpEnv("a@example.org"), 10, opener(plainMsg), []int{0}, "[mx1.example.org]")
	if res[0].Status != queue.StatusDeferred || !strings.HasPrefix(res[0].Reply, "lost connection with mx1.example.org[127.0.0.2] while") {
		t.Errorf("%+v", res[0])
	}
}

// TestSMTPTLSLevels runs each smtp_tls_security_level against servers with
// a certificate from a test CA, a self-signed one, none, and a broken
// STARTTLS; a refused level must never show the server a MAIL command.
func TestSMTPTLSLevels(t *testing.T) {
	caPEM, goodTLS := testCA(t, "mx1.example.org")
	_, otherTLS := testCA(t, "mx1.example.org") // a CA we do not trust
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(dir, "certs")
	os.Mkdir(caPath, 0o755)
	os.WriteFile(filepath.Join(caPath, "1a2b3c4d.0"), caPEM, 0o644)
	os.WriteFile(filepath.Join(caPath, "README"), []byte("not a certificate\n-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o644)
	_, wrongName := testCA(t, "other.example.net")

	tests := []struct {
		name    string
		server  *fakeMX
		policy  TLSPolicy
		nexthop string
		status  queue.Status
		dsn     string
		overTLS bool
		log     string
	}{
		{"none never starts TLS", &fakeMX{tls: goodTLS}, TLSPolicy{Level: "none"}, "[mx1.example.org]", queue.StatusSent, "2.0.0", false, ""},
		{"may uses TLS", &fakeMX{tls: otherTLS}, TLSPolicy{Level: "may", LogLevel: 1}, "[mx1.example.org]", queue.StatusSent, "2.0.0", true, "Untrusted TLS connection established to mx1.example.org[127.0.0.2]:25"},
		{"may without STARTTLS", &fakeMX{}, TLSPolicy{Level: "may"}, "[mx1.example.org]", queue.StatusSent, "2.0.0", false, ""},
		{"may falls back after a failed handshake", &fakeMX{badTLS: true}, TLSPolicy{Level: "may"}, "[mx1.example.org]", queue.StatusSent, "2.0.0", false, ""},
		{"encrypt, self-signed ok", &fakeMX{tls: otherTLS}, TLSPolicy{Level: "encrypt"}, "[mx1.example.org]", queue.StatusSent, "2.0.0", true, ""},
		{"encrypt without STARTTLS", &fakeMX{}, TLSPolicy{Level: "encrypt"}, "[mx1.example.org]", queue.StatusDeferred, "4.7.4", false, ""},
		{"encrypt, handshake fails", &fakeMX{badTLS: true}, TLSPolicy{Level: "encrypt"}, "[mx1.example.org]", queue.StatusDeferred, "4.7.5", false, ""},
		{"verify with CAfile", &fakeMX{tls: goodTLS}, TLSPolicy{Level: "verify", CAFile: caFile, LogLevel: 1}, "example.org", queue.StatusSent, "2.0.0", true, "Verified TLS connection established to mx1.example.org[127.0.0.2]:25: TLSv1.3 with cipher"},
		{"verify with CApath", &fakeMX{tls: goodTLS}, TLSPolicy{Level: "verify", CAPath: caPath}, "example.org", queue.StatusSent, "2.0.0", true, ""},
		{"verify, untrusted CA", &fakeMX{tls: otherTLS}, TLSPolicy{Level: "verify", CAFile: caFile}, "example.org", queue.StatusDeferred, "4.7.5", false, ""},
		{"verify, wrong name", &fakeMX{tls: wrongName}, TLSPolicy{Level: "verify", CAFile: caFile}, "example.org", queue.StatusDeferred, "4.7.5", false, ""},
		{"verify, no STARTTLS", &fakeMX{}, TLSPolicy{Level: "verify", CAFile: caFile}, "example.org", queue.StatusDeferred, "4.7.4", false, ""},
		{"secure, dot-nexthop", &fakeMX{tls: goodTLS}, TLSPolicy{Level: "secure", CAFile: caFile}, "example.org", queue.StatusSent, "2.0.0", true, ""},
		{"secure, nexthop does not match", &fakeMX{tls: goodTLS}, TLSPolicy{Level: "secure", CAFile: caFile}, "[mx1.example.org]", queue.StatusSent, "2.0.0", true, ""},
		{"secure, name outside nexthop", &fakeMX{tls: goodTLS}, TLSPolicy{Level: "secure", CAFile: caFile, SecureCertMatch: []string{"nexthop"}}, "example.org", queue.StatusDeferred, "4.7.5", false, ""},
		{"verify, missing CAfile", &fakeMX{tls: goodTLS}, TLSPolicy{Level: "verify", CAFile: filepath.Join(dir, "none.pem")}, "example.org", queue.StatusDeferred, "4.7.5", false, ""},
		{"may, missing CAfile still delivers", &fakeMX{tls: goodTLS}, TLSPolicy{Level: "may", CAFile: filepath.Join(dir, "none.pem")}, "example.org", queue.StatusSent, "2.0.0", true, ""},
		{"TLS 1.3 only against a TLS 1.2 server", &fakeMX{tls: tls12Only(goodTLS)}, TLSPolicy{Level: "encrypt", MandatoryProtocols: []string{">=TLSv1.3"}}, "[mx1.example.org]", queue.StatusDeferred, "4.7.5", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := startFakeMX(t, tc.server)
			dns := &StaticResolver{MX: map[string][]*net.MX{"example.org": {{Host: "mx1.example.org", Pref: 10}}}, IP: exampleDNS().IP}
			c, _, logs := newTestClient(t, dns, map[string]string{"127.0.0.2:25": f.addr()})
			c.TLS = tc.policy
			res := c.Send(context.Background(), smtpEnv("a@example.org"), 10, opener(plainMsg), []int{0}, tc.nexthop)
			if res[0].Status != tc.status || res[0].DSN != tc.dsn {
				t.Fatalf("%+v, want %v %s", res[0], tc.status, tc.dsn)
			}
			if tc.status != queue.StatusSent {
				if f.sawMail() {
					t.Error("MAIL sent although the TLS policy failed")
				}
				return
			}
			f.mu.Lock()
			used := f.tlsUsed[0]
			f.mu.Unlock()
			if used != tc.overTLS {
				t.Errorf("sent over TLS = %v, want %v", used, tc.overTLS)
			}
			if tc.log != "" && !strings.Contains(strings.Join(logs(), "\n"), tc.log) {
				t.Errorf("logs %q lack %q", logs(), tc.log)
			}
		})
	}
}

func tls12Only(c *tlsConfig) *tlsConfig {
	n := c.Clone()
	n.MaxVersion = versionTLS12
	return n
}

func TestProtocolRange(t *testing.T) {
	tests := []struct {
		in       string
		min, max string
		err      bool
	}{
		{">=TLSv1", "TLSv1", "TLSv1.3", false},
		{"", "TLSv1", "TLSv1.3", false},
		{">=TLSv1.2", "TLSv1.2", "TLSv1.3", false},
		{"!SSLv2, !SSLv3, !TLSv1, !TLSv1.1", "TLSv1.2", "TLSv1.3", false},
		{"TLSv1.2", "TLSv1.2", "TLSv1.2", false},
		{"<=TLSv1.2", "TLSv1", "TLSv1.2", false},
		{"!TLSv1.3, >=TLSv1.3", "", "", true},
		{"TLSv9", "", "", true},
	}
	for _, tc := range tests {
		min, max, err := protocolRange(strings.Split(tc.in, ","))
		if (err != nil) != tc.err || (err == nil && (tlsVersionName(min) != tc.min || tlsVersionName(max) != tc.max)) {
			t.Errorf("%q: %s..%s %v", tc.in, tlsVersionName(min), tlsVersionName(max), err)
		}
	}
}

func TestParseSMTPNexthop(t *testing.T) {
	tests := []struct {
		in, host, port string
		noMX, err      bool
	}{
		{"example.org", "example.org", "25", false, false},
		{"[mail.example.com]:587", "mail.example.com", "587", true, false},
		{"[mail.example.com]", "mail.example.com", "25", true, false},
		{"mail.example.com:submission", "mail.example.com", "587", false, false},
		{"[192.0.2.1]", "192.0.2.1", "25", true, false},
		{"[ipv6:2001:db8::1]:26", "2001:db8::1", "26", true, false},
		{"inet:[relay.example]:2525", "relay.example", "2525", true, false},
		{"[x]:99999", "", "", false, true},
		{"[x", "", "", false, true},
		{"", "", "", false, true},
	}
	for _, tc := range tests {
		h, p, nomx, err := parseSMTPNexthop(tc.in, "25")
		if (err != nil) != tc.err || (err == nil && (h != tc.host || p != tc.port || nomx != tc.noMX)) {
			t.Errorf("%q: %q %q %v %v", tc.in, h, p, nomx, err)
		}
	}
}

func TestParseStaticResolver(t *testing.T) {
	r, err := ParseStaticResolver(strings.NewReader("# test\nexample.org MX 10 mx.example.org.\nmx.example.org A 127.0.0.2\nv6.example.org AAAA ::1\nnull.example MX 0 .\n"))
	if err != nil {
		t.Fatal(err)
	}
	mx, err := r.LookupMX(context.Background(), "Example.ORG.")
	if err != nil || len(mx) != 1 || mx[0].Host != "mx.example.org" || mx[0].Pref != 10 {
		t.Errorf("%v %v", mx, err)
	}
	if a, err := r.LookupIPAddr(context.Background(), "mx.example.org"); err != nil || a[0].IP.String() != "127.0.0.2" {
		t.Errorf("%v %v", a, err)
	}
	if _, err := r.LookupMX(context.Background(), "mx.example.org"); err == nil {
		t.Error("MX of a host without MX")
	}
	for _, bad := range []string{"x MX ten y", "x A ::1", "x AAAA 1.2.3.4", "x TXT y", "x A"} {
		if _, err := ParseStaticResolver(strings.NewReader(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDowngradeMultipart(t *testing.T) {
	msg := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\npreamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9t\xc3\xa9\r\n--b1\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSubject: inner\r\n\r\n\xc3\xbc\r\n--b1--\r\nepilogue\r\n"
	got := string(downgradeMIME([]byte(msg), "h", "Q"))
	if has8bit([]byte(strings.ReplaceAll(got, "Subject", ""))) {
		t.Errorf("8-bit data left: %q", got)
	}
	for _, want := range []string{"preamble\r\n--b1\r\nContent-Type: text/plain\r\n\r\nascii\r\n--b1\r\n",
		"Content-Transfer-Encoding: quoted-printable\r\nX-MIME-Autoconverted: from 8bit to quoted-printable by h id Q\r\n\r\n=C3=A9t=C3=A9\r\n--b1\r\n",
		"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nSubject: inner\r\n",
		"=C3=BC\r\n--b1--\r\nepilogue\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("result lacks %q:\n%s", want, got)
		}
	}
}

// TestSMTPCancel: a cancelled context (shutdown) ends a stuck session at
// once and leaves the recipient deferred.
func TestSMTPCancel(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("220 hi\r\n250 but never more\r\n"))
			accepted <- c
		}
	}()
	c, _, _ := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": ln.Addr().String()})
	c.HeloTimeout, c.MailTimeout, c.RcptTimeout, c.DataInitTimeout = time.Minute, time.Minute, time.Minute, time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		conn := <-accepted
		defer conn.Close()
		buf := make([]byte, 100)
		conn.Read(buf) // the EHLO; then stall
		cancel()
		conn.Read(buf)
	}()
	start := time.Now()
	res := c.Send(ctx, smtpEnv("a@example.org"), 10, opener(plainMsg), []int{0}, "[mx1.example.org]")
	if time.Since(start) > 3*time.Second || res[0].Status != queue.StatusDeferred {
		t.Errorf("%v after %v", res[0], time.Since(start))
	}
}

func TestSMTPLoopsBackToMyself(t *testing.T) {
	dns := &StaticResolver{
		MX: map[string][]*net.MX{"backup.example": {{Host: "primary.example", Pref: 10}, {Host: "me.example", Pref: 20}, {Host: "worse.example", Pref: 30}},
			"self.example": {{Host: "me.example", Pref: 10}, {Host: "worse.example", Pref: 30}}},
		IP: map[string][]net.IPAddr{"primary.example": ips("127.0.0.2"), "me.example": ips("127.0.0.1"), "worse.example": ips("127.0.0.3"),
			"alone.example": ips("127.0.0.1")},
	}
	c := &SMTP{Resolver: dns, LocalAddrs: []net.IP{net.ParseIP("127.0.0.1")}}
	ts, err := c.resolve(context.Background(), "backup.example", "25", false, 0)
	if err != nil || len(ts) != 1 || ts[0].name != "primary.example" {
		t.Errorf("backup MX: %v %v", ts, err)
	}
	for _, d := range []string{"self.example", "alone.example"} {
		_, err = c.resolve(context.Background(), d, "25", false, 0)
		var df *dnsFailure
		if !errors.As(err, &df) || !df.perm || df.dsn != "5.4.6" || df.text != "mail for "+d+" loops back to myself" {
			t.Errorf("%s: %v", d, err)
		}
	}
}
