package transport

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"postcote/internal/queue"
	"postcote/internal/rewrite"
	"postcote/internal/smtpd"
)

// smtpdQueue records what postcote's own smtpd accepted.
type smtpdQueue struct {
	mu   sync.Mutex
	n    int
	envs []queue.Envelope
	msgs []string
}

func (q *smtpdQueue) NewID() queue.ID {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.n++
	return queue.ID("4cRECV" + strings.Repeat("X", q.n))
}

func (q *smtpdQueue) Enqueue(_ context.Context, env *queue.Envelope, content io.Reader) error {
	b, err := io.ReadAll(content)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.envs = append(q.envs, *env)
	q.msgs = append(q.msgs, string(b))
	return nil
}

type smtpdAddrs struct{}

func (smtpdAddrs) Classify(_ context.Context, domain string) (smtpd.Class, error) {
	if domain == "example.org" {
		return rewrite.VirtualMailbox, nil
	}
	return smtpd.Other, nil
}

func (smtpdAddrs) KnownRecipient(_ context.Context, addr string) (bool, error) {
	return !strings.HasPrefix(addr, "nobody@"), nil
}

// TestSMTPAgainstSmtpd delivers to postcote's own SMTP server: ESMTP
// extensions it offers (PIPELINING, SIZE, 8BITMIME, DSN, SMTPUTF8,
// STARTTLS) are used, an unknown user gets the server's 550 5.1.1, and
// the envelope arrives with its DSN parameters.
func TestSMTPAgainstSmtpd(t *testing.T) {
	_, serverTLS := testCA(t, "mx1.example.org")
	q := &smtpdQueue{}
	srv, err := smtpd.New(smtpd.Options{Hostname: "mx1.example.org", TLS: serverTLS, ErrorSleepTime: -1,
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, q, smtpdAddrs{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { srv.Serve(ctx, ln); close(done) }()
	t.Cleanup(func() { cancel(); ln.Close(); <-done })

	c, _, logs := newTestClient(t, exampleDNS(), map[string]string{"127.0.0.2:25": ln.Addr().String()})
	c.TLS = TLSPolicy{Level: "encrypt", LogLevel: 1}
	env := smtpEnv("a@example.org", "nobody@example.org")
	env.BodyType, env.DSNRet, env.DSNEnvID = "8BITMIME", "FULL", "env-1"
	env.Recipients[0].DSNNotify, env.Recipients[0].DSNORcpt = "SUCCESS", "rfc822;a@example.org"
	res := c.Send(context.Background(), env, int64(len(eightBitMsg)), opener(eightBitMsg), allIdx(env), "[mx1.example.org]")
	if res[0].Status != queue.StatusSent || !strings.HasPrefix(res[0].Reply, "250 2.0.0 Ok: queued as 4cRECV") || !res[0].DSNPassedOn {
		t.Errorf("rcpt 0: %+v", res[0])
	}
	if res[1].Status != queue.StatusBounced || res[1].DSN != "5.1.1" ||
		!strings.HasPrefix(res[1].Reply, "host mx1.example.org[127.0.0.2] said: 550 5.1.1 <nobody@example.org>") ||
		!strings.HasSuffix(res[1].Reply, "(in reply to RCPT TO command)") {
		t.Errorf("rcpt 1: %+v", res[1])
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.envs) != 1 {
		t.Fatalf("%d messages queued", len(q.envs))
	}
	got := q.envs[0]
	if got.BodyType != "8BITMIME" || got.DSNRet != "FULL" || got.DSNEnvID != "env-1" || len(got.Recipients) != 1 ||
		got.Recipients[0].DSNNotify != "SUCCESS" || got.Recipients[0].DSNORcpt != "rfc822;a@example.org" {
		t.Errorf("envelope %+v", got)
	}
	if !bytes.Contains([]byte(q.msgs[0]), []byte("Caf\xc3\xa9 cr\xc3\xa8me")) {
		t.Errorf("content %q", q.msgs[0])
	}
	if !strings.Contains(strings.Join(logs(), "\n"), "Untrusted TLS connection established to mx1.example.org[127.0.0.2]:25") {
		t.Errorf("logs %q", logs())
	}
}
