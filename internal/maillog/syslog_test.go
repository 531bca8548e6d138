package maillog

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

// listenSyslog is a fake syslog daemon: a unixgram socket whose datagrams
// are returned one by one.
func listenSyslog(t *testing.T) (string, func() string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "log")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return path, func() string {
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no syslog record: %v", err)
		}
		return string(buf[:n])
	}
}

func TestSyslogRecords(t *testing.T) {
	path, next := listenSyslog(t)
	var fallback bytes.Buffer
	l, closeFn, err := NewSyslog(path, "mail", "mx", &fallback)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	l.pid = 42
	l.now = func() time.Time { return time.Date(2026, 11, 5, 7, 8, 9, 0, time.UTC) }
	l.SetDebug(true)
	tests := []struct {
		log  func()
		want string
	}{
		// mail (2) * 8 + info (6) = 22
		{func() { l.Printf("smtpd", "connect from unknown[%s]", "192.0.2.1") }, "<22>Nov  5 07:08:09 postcote/smtpd[42]: connect from unknown[192.0.2.1]"},
		{func() { l.Warnf("qmgr", "disk full") }, "<20>Nov  5 07:08:09 postcote/qmgr[42]: warning: disk full"},
		{func() { l.Debugf("auth", "x") }, "<23>Nov  5 07:08:09 postcote/auth[42]: debug: x"},
		{func() { l.Printf("master", "fatal: cannot bind") }, "<18>Nov  5 07:08:09 postcote/master[42]: fatal: cannot bind"},
	}
	for _, tc := range tests {
		tc.log()
		if got := next(); got != tc.want {
			t.Errorf("record %q, want %q", got, tc.want)
		}
	}
	if fallback.Len() != 0 {
		t.Errorf("fallback used while syslog is up: %q", fallback.String())
	}
}

func TestSyslogFacilityAndErrors(t *testing.T) {
	path, next := listenSyslog(t)
	l, closeFn, err := NewSyslog(path, "local3", "mx", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	l.Printf("imap-login", "Login: user=<a>")
	if got := next(); !regexp.MustCompile(`^<158>\w{3} [ \d]\d \d\d:\d\d:\d\d postcote/imap-login\[\d+\]: Login: user=<a>$`).MatchString(got) {
		t.Errorf("record %q", got) // local3 (19) * 8 + 6
	}
	if _, _, err := NewSyslog(path, "nosuch", "mx", nil); err == nil {
		t.Error("unknown facility accepted")
	}
	if _, _, err := NewSyslog(filepath.Join(t.TempDir(), "absent"), "mail", "mx", nil); err == nil {
		t.Error("missing socket accepted")
	}
}

// A daemon that goes away loses no line: it goes to the fallback, and a
// daemon that comes back on the same path gets the next ones.
func TestSyslogDaemonRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	listen := func() *net.UnixConn {
		c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := listen()
	var fallback bytes.Buffer
	l, closeFn, err := NewSyslog(path, "mail", "mx", &fallback)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	c.Close() // the daemon stops; a restarted one replaces the socket file
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l.Printf("smtpd", "while down")
	if !bytes.Contains(fallback.Bytes(), []byte("postcote/smtpd[")) || !bytes.Contains(fallback.Bytes(), []byte("while down")) {
		t.Fatalf("line lost while syslog was down; fallback has %q", fallback.String())
	}
	c = listen()
	defer c.Close()
	l.Printf("smtpd", "after restart")
	buf := make([]byte, 1024)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil || !bytes.HasSuffix(buf[:n], []byte("after restart")) {
		t.Fatalf("after restart: %q, %v", buf[:n], err)
	}
}
