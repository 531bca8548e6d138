package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"postcote/internal/authd"
	"postcote/internal/config"
	"postcote/internal/maillog"
	"postcote/internal/sasl"
	"postcote/internal/userdb"
)

// Interop tests with the real Postfix and Dovecot of Debian's packages
// (apt-get install postfix dovecot-core). They run private instances in
// temp dirs on free loopback ports and stop them by pid. They need root
// (Postfix's master and Dovecot's master must start as root) and skip
// otherwise; with -short they are skipped too (a few seconds each).

func needBinary(t *testing.T, names ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("interop test with real daemons: skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("interop test needs root (Postfix and Dovecot masters start as root)")
	}
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if _, err := os.Stat("/usr/sbin/" + n); err != nil {
				t.Skipf("%s not installed (apt-get install -y postfix dovecot-core)", n)
			}
		}
	}
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitFor polls until dial succeeds.
func waitFor(t *testing.T, network, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s %s never came up: %v", network, addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// openDirs makes every parent of dir up to the temp root traversable by
// the unprivileged daemon users (t.TempDir makes them 0700).
func openDirs(t *testing.T, dir string) {
	t.Helper()
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// stopPid sends SIGTERM to a daemon we started and waits for it to go.
func stopPid(t *testing.T, pid int, what string) {
	if pid <= 0 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(15 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Errorf("%s (pid %d) did not stop; killing it", what, pid)
			syscall.Kill(pid, syscall.SIGKILL)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

// smtpAuth connects to an SMTP server and tries AUTH PLAIN; it returns
// the reply code.
func smtpAuth(t *testing.T, addr, user, pass string) int {
	t.Helper()
	tp, ehlo := smtpHello(t, addr)
	defer tp.Close()
	if !strings.Contains(ehlo, "AUTH") || !strings.Contains(ehlo, "PLAIN") {
		t.Fatalf("EHLO does not offer AUTH PLAIN: %q", ehlo)
	}
	ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
	code, _, _ := smtpCmd(tp, 0, "AUTH PLAIN "+ir)
	tp.Cmd("QUIT")
	return code
}

// writeUsers writes a passwd-file with alice (SHA512-CRYPT "secret").
func writeUsers(t *testing.T, path string) {
	t.Helper()
	hash, err := userdb.Generate("SHA512-CRYPT", "secret")
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("alice@example.test:%s:1000:1000::%s/home/alice::\n", hash, filepath.Dir(path))
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
}

// runPostcote runs `postcote serve` on the configuration files in dir
// until the test ends.
func runPostcote(t *testing.T, paths config.Paths) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	logf, err := os.Create(filepath.Join(t.TempDir(), "postcote.log"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		done <- Run(ctx, Options{Paths: paths, Logger: maillog.New(logf, "postcote.test", false)})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("postcote serve: %v", err)
		}
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("postcote log:\n%s", b)
		}
	})
}

// TestPostfixThroughPostcoteAuth: a real Postfix with smtpd_sasl_type =
// dovecot asks postcote's auth service, over the unix socket in its
// queue directory (smtpd_sasl_path = private/auth, socket owned by
// postfix as in the guides) and over TCP (inet:127.0.0.1:PORT).
func TestPostfixThroughPostcoteAuth(t *testing.T) {
	needBinary(t, "postfix")
	dir := t.TempDir()
	openDirs(t, dir)
	spool := filepath.Join(dir, "spool")
	private := filepath.Join(spool, "private")
	conf := filepath.Join(dir, "postfix")
	pcConf := filepath.Join(dir, "postcote")
	for _, d := range []string{private, filepath.Join(spool, "public"), filepath.Join(spool, "pid"), conf, pcConf} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// As the Debian package leaves it: private/ belongs to postfix.
	pf, err := lookupIDs("postfix", "postfix")
	if err != nil {
		t.Skipf("no postfix user: %v", err)
	}
	os.Chown(private, pf[0], -1)
	os.Chmod(private, 0o700)
	os.Chown(filepath.Join(spool, "public"), pf[0], -1)
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	os.Chown(filepath.Join(dir, "data"), pf[0], -1)

	authPort := freePort(t)
	users := filepath.Join(pcConf, "users")
	writeUsers(t, users)
	appendSCRAMUser(t, users)
	dovecotConf := fmt.Sprintf(`protocols = none
ssl = no
auth_failure_delay = 0
auth_mechanisms = plain login scram-sha-256
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT %s
}
userdb {
  driver = passwd-file
  args = %s
}
service auth {
  unix_listener %s/auth {
    mode = 0660
    user = postfix
    group = postfix
  }
  unix_listener auth-userdb {
    mode = 0600
  }
  inet_listener {
    address = 127.0.0.1
    port = %d
  }
}
base_dir = %s/run
`, users, users, private, authPort, dir)
	if err := os.WriteFile(filepath.Join(pcConf, "dovecot.conf"), []byte(dovecotConf), 0o644); err != nil {
		t.Fatal(err)
	}
	runPostcote(t, config.Paths{DovecotConf: filepath.Join(pcConf, "dovecot.conf")})
	sock := filepath.Join(private, "auth")
	waitFor(t, "unix", sock)
	waitFor(t, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(authPort)))
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); int(sys.Uid) != pf[0] || int(sys.Gid) != pf[1] || st.Mode().Perm() != 0o660 {
		t.Errorf("auth socket: uid %d gid %d mode %v, want postfix:postfix 0660", sys.Uid, sys.Gid, st.Mode().Perm())
	}

	unixPort, inetPort := freePort(t), freePort(t)
	mainCF := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %s
data_directory = %s/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
maillog_file = %s/maillog
maillog_file_prefixes = %s
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = private/auth
smtpd_tls_security_level = none
smtpd_relay_restrictions = permit_sasl_authenticated, reject
`, spool, dir, dir, dir)
	masterCF := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
127.0.0.1:%d inet n - n - - smtpd
  -o smtpd_sasl_path=inet:127.0.0.1:%d
anvil unix - - n - 1 anvil
proxymap unix - - n - - proxymap
rewrite unix - - n - - trivial-rewrite
postlog unix-dgram n - n - 1 postlogd
`, unixPort, inetPort, authPort)
	os.WriteFile(filepath.Join(conf, "main.cf"), []byte(mainCF), 0o644)
	os.WriteFile(filepath.Join(conf, "master.cf"), []byte(masterCF), 0o644)
	// The master daemon itself, as `postfix start` runs it but without
	// postfix-script's checks (seconds): -w returns once it is up.
	daemonDir, err := exec.Command("postconf", "-c", conf, "-h", "daemon_directory").Output()
	if err != nil {
		t.Fatalf("postconf: %v", err)
	}
	out, err := exec.Command(filepath.Join(strings.TrimSpace(string(daemonDir)), "master"), "-c", conf, "-w").CombinedOutput()
	pid := readPid(filepath.Join(spool, "pid", "master.pid"))
	t.Cleanup(func() {
		stopPid(t, readPid(filepath.Join(spool, "pid", "master.pid")), "postfix master")
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "maillog"))
			t.Logf("postfix maillog:\n%s", b)
		}
	})
	if err != nil || pid == 0 {
		b, _ := os.ReadFile(filepath.Join(dir, "maillog"))
		t.Fatalf("postfix master: %v %s\n%s", err, out, b)
	}
	for _, tc := range []struct {
		name string
		port int
	}{{"unix private/auth", unixPort}, {"inet", inetPort}} {
		t.Run(tc.name, func(t *testing.T) {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tc.port))
			waitFor(t, "tcp", addr)
			if code := smtpAuth(t, addr, "alice@example.test", "secret"); code != 235 {
				t.Errorf("right password: %d, want 235", code)
			}
			if code := smtpAuth(t, addr, "alice@example.test", "wrong"); code != 535 {
				t.Errorf("wrong password: %d, want 535", code)
			}
			if code := smtpAuth(t, addr, "nobody@example.test", "secret"); code != 535 {
				t.Errorf("unknown user: %d, want 535", code)
			}
			// SCRAM through Postfix: the server-final message reaches
			// the client as a 334 (the client checks the signature).
			if code := smtpSCRAM(t, addr, "carol@example.test", "pencil"); code != 235 {
				t.Errorf("SCRAM-SHA-256: %d, want 235", code)
			}
			if code := smtpSCRAM(t, addr, "carol@example.test", "pencil2"); code != 535 {
				t.Errorf("SCRAM-SHA-256, wrong password: %d, want 535", code)
			}
			if code := smtpSCRAM(t, addr, "alice@example.test", "secret"); code != 535 {
				t.Errorf("SCRAM-SHA-256 for a SHA512-CRYPT user: %d, want 535", code)
			}
		})
	}
}

// lookupIDs resolves a user and group name to ids.
func lookupIDs(userName, groupName string) ([2]int, error) {
	var ids [2]int
	u, err := lookupUser(userName)
	if err != nil {
		return ids, err
	}
	g, err := lookupGroup(groupName)
	if err != nil {
		return ids, err
	}
	return [2]int{u, g}, nil
}

// startDovecot runs a private Dovecot with one passwd-file user and its
// auth service on a loopback TCP port and on base_dir/auth-client.
func startDovecot(t *testing.T) (inet, unixPath string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	openDirs(t, dir)
	users := filepath.Join(dir, "users")
	writeUsers(t, users)
	appendSCRAMUser(t, users)
	port := freePort(t)
	conf := fmt.Sprintf(`base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/dovecot.log
protocols =
listen = 127.0.0.1
ssl = no
auth_mechanisms = plain login scram-sha-256
auth_failure_delay = 0
default_internal_user = nobody
default_login_user = nobody
passdb {
  driver = passwd-file
  args = scheme=SHA512-CRYPT %[2]s
}
userdb {
  driver = passwd-file
  args = %[2]s
}
service auth {
  inet_listener {
    address = 127.0.0.1
    port = %[3]d
  }
}
`, dir, users, port)
	path := filepath.Join(dir, "dovecot.conf")
	os.WriteFile(path, []byte(conf), 0o644)
	os.MkdirAll(filepath.Join(dir, "state"), 0o755)
	cmd := exec.Command("dovecot", "-F", "-c", path)
	// Its own process group: stop reaches the auth process too, which
	// would otherwise keep serving open connections for a while.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("dovecot: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				t.Errorf("dovecot (pid %d) did not stop; killing it", cmd.Process.Pid)
				cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "dovecot.log"))
			t.Logf("dovecot log:\n%s", b)
		}
	})
	inet = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitFor(t, "tcp", inet)
	unixPath = filepath.Join(dir, "run", "auth-client")
	waitFor(t, "unix", unixPath)
	return "inet:" + inet, unixPath, stop
}

// TestClientAgainstRealDovecot: postcote's auth client, and postcote's
// SMTP server through it, against a real Dovecot's auth service.
func TestClientAgainstRealDovecot(t *testing.T) {
	needBinary(t, "dovecot")
	inet, unixPath, stopDovecot := startDovecot(t)
	for i, spec := range []string{unixPath, inet} {
		cl, err := authd.NewClient(spec, authd.ClientOptions{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		// One client address per socket: Dovecot's auth penalty holds
		// an address's next login back for seconds after a failure.
		remote := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i)), Port: 4000}
		user, err := cl.CheckPassword(ctx, sasl.Request{Service: "smtp", User: "alice@example.test", Password: "secret", Remote: remote})
		if err != nil || user != "alice@example.test" {
			t.Errorf("%s: right password: %q %v", spec, user, err)
		}
		if _, err := cl.CheckPassword(ctx, sasl.Request{Service: "smtp", User: "alice@example.test", Password: "wrong", Remote: remote}); !errors.Is(err, sasl.ErrAuthFailed) {
			t.Errorf("%s: wrong password: %v, want ErrAuthFailed", spec, err)
		}
		mechs, err := cl.Mechanisms(ctx)
		if err != nil || len(mechs) < 2 {
			t.Errorf("%s: mechanisms %v %v", spec, mechs, err)
		}
		cl.Close()
	}

	// postcote's own SMTP server with smtpd_sasl_path = inet:… of that
	// Dovecot (no dovecot.conf here: the auth client is the only way).
	dir := t.TempDir()
	smtpPort := freePort(t)
	mainCF := fmt.Sprintf(`myhostname = postcote.test
queue_directory = %s/spool
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtpd_sasl_type = dovecot
smtpd_sasl_path = %s
smtpd_sasl_auth_enable = yes
smtpd_relay_restrictions = permit_sasl_authenticated, reject
`, dir, inet)
	os.WriteFile(filepath.Join(dir, "main.cf"), []byte(mainCF), 0o644)
	masterCF := fmt.Sprintf("127.0.0.1:%d inet n - n - - smtpd\n", smtpPort) +
		"smtp unix - - n - - smtp\nrelay unix - - n - - smtp\nlocal unix - n n - - local\nvirtual unix - n n - - virtual\n"
	os.WriteFile(filepath.Join(dir, "master.cf"), []byte(masterCF), 0o644)
	runPostcote(t, config.Paths{MainCF: filepath.Join(dir, "main.cf"), MasterCF: filepath.Join(dir, "master.cf")})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(smtpPort))
	waitFor(t, "tcp", addr)
	if code := smtpAuth(t, addr, "alice@example.test", "secret"); code != 235 {
		t.Errorf("postcote smtpd via Dovecot, right password: %d, want 235", code)
	}
	// SCRAM relayed to Dovecot: its server-final message comes on the OK
	// line (resp=) and reaches the client, which checks the signature.
	if code := smtpSCRAM(t, addr, "carol@example.test", "pencil"); code != 235 {
		t.Errorf("postcote smtpd via Dovecot, SCRAM-SHA-256: %d, want 235", code)
	}
	if code := smtpSCRAM(t, addr, "carol@example.test", "pencil2"); code != 535 {
		t.Errorf("postcote smtpd via Dovecot, SCRAM-SHA-256 wrong password: %d, want 535", code)
	}
	if code := smtpAuth(t, addr, "alice@example.test", "wrong"); code != 535 {
		t.Errorf("postcote smtpd via Dovecot, wrong password: %d, want 535", code)
	}
	// Dovecot gone: a temporary failure, never "wrong password".
	stopDovecot()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code := smtpAuth(t, addr, "alice@example.test", "secret")
		if code == 454 {
			break
		}
		// Until its auth process has gone, Dovecot may still answer.
		if code != 235 || time.Now().After(deadline) {
			t.Fatalf("postcote smtpd with Dovecot down: %d, want 454", code)
		}
	}
}
