package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/queue"
	"postcote/internal/testenv"
	"postcote/internal/transport"
)

// TestLMTPThroughServe runs guide 003's set-up inside one postcote: SMTP
// in → queue → virtual_transport = lmtp:unix:private/dovecot-lmtp → our
// own LMTP server (service lmtp { unix_listener … }) → Maildir; then the
// inet_listener of guide 000 takes a delivery from the lmtp client.
func TestLMTPThroughServe(t *testing.T) {
	p := testenv.NewDev(t)
	lmtpPort := testenv.FreePorts(t, 1)[0]
	spool := filepath.Join(p.Dir, "spool")
	if err := os.MkdirAll(filepath.Join(spool, "private"), 0o755); err != nil {
		t.Fatal(err)
	}
	setMain(t, p, "virtual_transport", "lmtp:unix:private/dovecot-lmtp")
	appendFile(t, filepath.Join(p.Dir, "master.cf"), "lmtp      unix  -       -       n       -       -       lmtp\n")
	appendFile(t, filepath.Join(p.Dir, "dovecot.conf"), fmt.Sprintf(`
protocols = imap lmtp
base_dir = %s/run
service lmtp {
  unix_listener %s/private/dovecot-lmtp {
    mode = 0600
  }
  inet_listener lmtp {
    address = 127.0.0.1
    port = %d
  }
}
`, p.Dir, spool, lmtpPort))
	p.Start()

	sock := filepath.Join(spool, "private", "dovecot-lmtp")
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("unix_listener: %v\n%s", err, p.Log())
	}
	if st.Mode().Perm() != 0o600 || st.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s: mode %v, want a socket with 0600", sock, st.Mode())
	}

	if err := sendPlain(testenv.Addr(p.Ports.SMTP), "a@example.org", p.User, "via-lmtp-unix", "hello"); err != nil {
		t.Fatalf("send: %v\n%s", err, p.Log())
	}
	subjects := waitForFiles(t, maildir(p), 1)
	if subjects[0] != "via-lmtp-unix" {
		t.Errorf("subject %q", subjects[0])
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.Log(), "status=sent") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	log := p.Log()
	for _, want := range []string{
		"lmtp(" + p.User + ")<",
		"msgid=<via-lmtp-unix@client.example>: saved mail to INBOX",
		"relay=localhost[private/dovecot-lmtp]",
		"status=sent (250 2.0.0 <" + p.User + ">",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// Guide 000: lmtp:inet:host — postcote's lmtp client to the inet_listener.
	agent := &transport.LMTP{Hostname: "client.example"}
	env := &queue.Envelope{Sender: "b@example.org", Recipients: []queue.Recipient{{Address: p.User}, {Address: "nobody@example.test"}}}
	body := "Subject: via lmtp inet\r\n\r\nhi\r\n"
	res := agent.Send(context.Background(), env, int64(len(body)), strings.NewReader(body), []int{0, 1}, fmt.Sprintf("inet:127.0.0.1:%d", lmtpPort))
	if len(res) != 2 || res[0].Status != queue.StatusSent || res[1].Status != queue.StatusBounced || res[1].DSN != "5.1.1" {
		t.Fatalf("inet delivery: %+v\n%s", res, p.Log())
	}
	waitForFiles(t, maildir(p), 2)
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}
