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
	"postcote/internal/sasl/sasltest"
)

// appendSCRAMUser adds carol@example.test to a passwd-file with the
// {SCRAM-SHA-256} credentials of a real Dovecot's doveadm (password
// sasltest.Password).
func appendSCRAMUser(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line := "carol@example.test:" + sasltest.SCRAMSHA256 + ":1000:1000::" +
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
	tp, ehlo := smtpHello(t, addr)
	defer tp.Close()
	if !strings.Contains(ehlo, "SCRAM-SHA-256") {
		t.Fatalf("EHLO does not offer AUTH SCRAM-SHA-256: %q", ehlo)
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

// smtpHello connects to an SMTP server, reads the greeting and returns
// the connection and the EHLO reply's text.
func smtpHello(t *testing.T, addr string) (*textproto.Conn, string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	tp := textproto.NewConn(c)
	if _, _, err := tp.ReadResponse(220); err != nil {
		tp.Close()
		t.Fatalf("greeting: %v", err)
	}
	_, msg, err := smtpCmd(tp, 250, "EHLO client.test")
	if err != nil {
		tp.Close()
		t.Fatalf("EHLO: %v", err)
	}
	return tp, msg
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
