package imapd

import (
	"bufio"
	"net"
	"os/exec"
	"strings"
	"testing"

	"postcote/internal/testenv"
)

// TestPythonImaplib runs testdata/imaplib_client.py against a live server
// (STARTTLS with disable_plaintext_auth, the whole mail-script dialog,
// IDLE seeing a delivery). Skipped without python3 and with -short.
func TestPythonImaplib(t *testing.T) {
	if testing.Short() {
		t.Skip("runs python3; skipped with -short")
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			ts, deliver := startStoreServer(t, kind, Options{TLS: testenv.NewTestCA(t, "imapd test CA").ServerTLS(t, "localhost", "127.0.0.1")})
			deliver("alice", "INBOX", sampleMessage)
			host, port, _ := net.SplitHostPort(ts.addr)
			cmd := exec.Command(py, "testdata/imaplib_client.py", host, port)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var lines []string
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				lines = append(lines, sc.Text())
				if sc.Text() == "IDLING" {
					deliver("alice", "INBOX", sampleMessage)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("imaplib client: %v\nstdout: %s\nstderr: %s\nlog: %s", err, strings.Join(lines, "\n"), stderr.String(), ts.log)
			}
			if len(lines) == 0 || lines[len(lines)-1] != "DONE" {
				t.Fatalf("client did not finish: %v", lines)
			}
		})
	}
}
