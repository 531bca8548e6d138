package e2e

import (
	"bufio"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"postcote/internal/testenv"
)

func banner(t *testing.T, port int) (string, net.Conn) {
	t.Helper()
	c, err := net.DialTimeout("tcp", testenv.Addr(port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(line), c
}

// TestReloadOnSIGHUP: a new main.cf takes effect for new sessions without
// a restart, a session open across the reload goes on, and a broken
// configuration is refused while the old one keeps serving.
func TestReloadOnSIGHUP(t *testing.T) {
	p := testenv.StartDev(t)
	before, old := banner(t, p.Ports.SMTP)
	defer old.Close()
	if !strings.Contains(before, "ESMTP") {
		t.Fatalf("banner %q", before)
	}
	setMain(t, p, "smtpd_banner", "$myhostname ESMTP reloaded")
	p.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, c := banner(t, p.Ports.SMTP)
		c.Close()
		if strings.HasSuffix(got, "ESMTP reloaded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("banner still %q 10 s after SIGHUP\n%s", got, p.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The session opened before the reload still answers.
	if _, err := old.Write([]byte("NOOP\r\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(old).ReadString('\n'); err != nil || !strings.HasPrefix(line, "250") {
		t.Errorf("session across the reload: %q, %v", line, err)
	}

	// A broken configuration: logged, old one keeps serving.
	setMain(t, p, "message_size_limit", "lots")
	p.Signal(syscall.SIGHUP)
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(p.Log(), "reload failed"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no 'reload failed' in the log:\n%s", p.Log())
		}
	}
	got, c := banner(t, p.Ports.SMTP)
	c.Close()
	if !strings.HasSuffix(got, "ESMTP reloaded") {
		t.Errorf("after a failed reload the banner is %q", got)
	}
}
