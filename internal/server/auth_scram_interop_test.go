package server

import (
	"encoding/base64"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"postcote/internal/sasl"
)

// appendSCRAMUser adds carol@example.test to a passwd-file with the
// {SCRAM-SHA-256} credentials Dovecot 2.3.19's "doveadm pw -s
// SCRAM-SHA-256 -p pencil" wrote.
func appendSCRAMUser(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := "carol@example.test:{SCRAM-SHA-256}4096,Yhkh+hjEMgk24YZsYy3P5g==,9ldF5DUpMvnCjZZt3X00hnDJHdcR6MNUjtEd1MBmfxQ=,hlEmTdadupvtOnkeU6KkgQjnYuSOMLErj+MyWheasJw=:1000:1000::" +
		filepath.Join(filepath.Dir(path), "home", "carol") + "::\n"
	if _, err := f.WriteString(line); err != nil {
		t.Fatal(err)
	}
}

// smtpSCRAM connects to an SMTP server and runs AUTH SCRAM-SHA-256 with
// internal/sasl's client, which checks the server's signature; it returns
// the final reply code (0 when the signature was wrong and the client
// cancelled).
func smtpSCRAM(t *testing.T, addr, user, pass string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if _, msg, err := smtpCmd(tp, 250, "EHLO client.test"); err != nil || !strings.Contains(msg, "SCRAM-SHA-256") {
		t.Fatalf("EHLO does not offer AUTH SCRAM-SHA-256: %q %v", msg, err)
	}
	sc, err := sasl.NewSCRAMClient("SCRAM-SHA-256", user, pass, "")
	if err != nil {
		t.Fatal(err)
	}
	_, first, err := sc.Start()
	if err != nil {
		t.Fatal(err)
	}
	code, msg, _ := smtpCmd(tp, 0, "AUTH SCRAM-SHA-256 "+base64.StdEncoding.EncodeToString(first))
	for code == 334 {
		chal, err := base64.StdEncoding.DecodeString(msg)
		if err != nil {
			t.Fatalf("334 %q: %v", msg, err)
		}
		resp, err := sc.Next(chal)
		if err != nil {
			t.Errorf("SCRAM client: %v", err)
			smtpCmd(tp, 0, "*")
			return 0
		}
		code, msg, _ = smtpCmd(tp, 0, base64.StdEncoding.EncodeToString(resp))
	}
	tp.Cmd("QUIT")
	return code
}

// smtpCmd sends one line and reads the reply.
func smtpCmd(tp *textproto.Conn, want int, line string) (int, string, error) {
	id, err := tp.Cmd("%s", line)
	if err != nil {
		return 0, "", err
	}
	tp.StartResponse(id)
	defer tp.EndResponse(id)
	return tp.ReadResponse(want)
}
