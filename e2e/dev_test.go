package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"postcote/internal/testenv"
)

// runDev starts `postcote dev` and returns what it printed before the
// SMTP port answered; it stops the server before returning.
func runDev(t *testing.T, dir string, ports []int, extra ...string) string {
	t.Helper()
	portList := strings.Trim(strings.Join(strings.Fields(fmt.Sprint(ports)), ","), "[]")
	args := append([]string{"dev", "--ports", portList}, extra...)
	args = append(args, dir)
	cmd := exec.Command(testenv.Binary(t), args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	out := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(bufio.NewReader(stdout))
		out <- string(b)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for _, port := range ports {
		for {
			c, err := net.DialTimeout("tcp", testenv.Addr(port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("postcote dev: port %d did not answer: %s", port, stderr.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case s := <-out:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("postcote dev did not stop on SIGTERM")
	}
	return ""
}

func TestDevRunsAndReusesItsFolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	ports := testenv.FreePorts(t, 5)
	first := runDev(t, dir, ports)
	for _, want := range []string{"demo@example.test", "password", fmt.Sprintf("port %d", ports[3])} {
		if !strings.Contains(first, want) {
			t.Errorf("postcote dev output lacks %q:\n%s", want, first)
		}
	}
	pass := ""
	for _, line := range strings.Split(first, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "password" {
			pass = f[1]
		}
	}
	if len(pass) < 12 {
		t.Fatalf("no generated password in the output:\n%s", first)
	}
	// A second run keeps the folder and the password.
	second := runDev(t, dir, ports)
	if !strings.Contains(second, "password  "+pass) {
		t.Errorf("second run does not show the same password %q:\n%s", pass, second)
	}
	// The folder is a configuration check accepts as it is.
	out, err := exec.Command(testenv.Binary(t), "check", "-q", "-c", dir).CombinedOutput()
	if err != nil {
		t.Errorf("postcote check on the dev folder: %v\n%s", err, out)
	}
	// --password changes it.
	third := runDev(t, dir, ports, "--password", "new-secret-42")
	if !strings.Contains(third, "password  new-secret-42") {
		t.Errorf("--password not taken:\n%s", third)
	}
}
