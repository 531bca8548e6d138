package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"postcote/internal/queue"
)

// sysexits(3) codes and what Postfix's sys_exits table makes of them:
// the enhanced status code and the text local(8) reports. A code with a
// 4.x.x status defers the recipient; the others bounce it.
var sysExits = map[int]struct{ dsn, text string }{
	64: {"5.3.0", "command line usage error"},      // EX_USAGE
	65: {"5.6.0", "data format error"},             // EX_DATAERR
	66: {"5.3.0", "cannot open input"},             // EX_NOINPUT
	67: {"5.1.1", "user unknown"},                  // EX_NOUSER
	68: {"5.1.2", "host name unknown"},             // EX_NOHOST
	69: {"5.3.0", "service unavailable"},           // EX_UNAVAILABLE
	70: {"5.3.0", "internal software error"},       // EX_SOFTWARE
	71: {"4.3.0", "system resource problem"},       // EX_OSERR
	72: {"5.3.0", "critical OS file missing"},      // EX_OSFILE
	73: {"5.2.0", "can't create user output file"}, // EX_CANTCREAT
	74: {"5.3.0", "input/output error"},            // EX_IOERR
	75: {"4.3.0", "temporary failure"},             // EX_TEMPFAIL
	76: {"5.5.0", "remote error in protocol"},      // EX_PROTOCOL
	77: {"5.7.0", "permission denied"},             // EX_NOPERM
	78: {"5.3.5", "local configuration error"},     // EX_CONFIG
}

// exitResult maps a command's exit status as Postfix's local(8) and
// pipe(8) do (sys_exits.c): sysexits(3) codes by the table, other
// non-zero codes as "unknown mail system error" (4.3.0, deferred).
func exitResult(code int) queue.Result {
	if e, ok := sysExits[code]; ok {
		st := queue.StatusBounced
		if e.dsn[0] == '4' {
			st = queue.StatusDeferred
		}
		return queue.Result{Status: st, DSN: e.dsn, Reply: e.text}
	}
	return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("unknown mail system error %d", code)}
}

// maxCommandOutput is how much of a failing command's output goes into
// the reply (Postfix keeps a line or so for the bounce).
const maxCommandOutput = 200

// commandJob is one "|command" delivery.
type commandJob struct {
	command string
	user    SystemUser // who it runs as (default_privs for aliases)
	home    string     // HOME and working directory
	env     []string   // NAME=value pairs local(8) exports
	shell   string     // local_command_shell, default /bin/sh
	limit   time.Duration
	sender  string
	headers []string
}

// runCommand pipes the message (with its "From " line and the
// delivery headers, as local(8) does) to "/bin/sh -c command" running
// as job.user, and maps the outcome: exit 0 is sent, an exit status by
// exitResult, death by a signal deferred, and running past the time
// limit (command_time_limit) bounced, as Postfix's pipe_command does.
func runCommand(ctx context.Context, job commandJob, content io.Reader, now time.Time) queue.Result {
	limit := job.limit
	if limit <= 0 {
		limit = 1000 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	shell := job.shell
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.CommandContext(cctx, shell, "-c", job.command)
	cmd.Env = job.env
	cmd.Dir = "/"
	if fi, err := os.Stat(job.home); err == nil && fi.IsDir() {
		cmd.Dir = job.home
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if os.Geteuid() == 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(job.user.UID), Gid: uint32(job.user.GID), Groups: []uint32{}}
	}
	// Kill the whole process group when the time is up, so that a
	// command's children do not keep the pipe open.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var out bytes.Buffer
	cmd.Stdout = &capWriter{buf: &out, max: maxCommandOutput}
	cmd.Stderr = cmd.Stdout
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "cannot create pipe: " + err.Error()}
	}
	if err := cmd.Start(); err != nil {
		stdin.Close()
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("cannot run command %q: %v", job.command, err)}
	}
	bw := bufio.NewWriterSize(stdin, 64<<10)
	werr := writeMboxMessage(cctx, bw, job.sender, job.headers, content, now, false)
	if werr == nil {
		werr = bw.Flush()
	}
	stdin.Close()
	err = cmd.Wait()
	detail := commandOutput(out.String())
	var exitErr *exec.ExitError
	switch {
	case cctx.Err() != nil && ctx.Err() == nil:
		return queue.Result{Status: queue.StatusBounced, DSN: "5.3.0", Reply: fmt.Sprintf("Command time limit exceeded: %q%s", job.command, detail)}
	case ctx.Err() != nil:
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: "delivery interrupted: " + ctx.Err().Error()}
	case errors.As(err, &exitErr):
		ws, _ := exitErr.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("Command died with signal %d: %q%s", int(ws.Signal()), job.command, detail)}
		}
		r := exitResult(exitErr.ExitCode())
		r.Reply = fmt.Sprintf("Command died with status %d: %q%s (%s)", exitErr.ExitCode(), job.command, detail, r.Reply)
		return r
	case err != nil:
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("command %q: %v", job.command, err)}
	}
	// A command that exits 0 without reading all of its input has still
	// taken the message, as Postfix counts it (EPIPE is ignored).
	if werr != nil && !errors.Is(werr, syscall.EPIPE) && !errors.Is(werr, os.ErrClosed) {
		return queue.Result{Status: queue.StatusDeferred, DSN: "4.3.0", Reply: fmt.Sprintf("write to command %q: %v", job.command, werr)}
	}
	return queue.Result{Status: queue.StatusSent, DSN: "2.0.0", Reply: fmt.Sprintf("delivered to command: %s", job.command)}
}

// commandOutput renders the start of a command's output for a reply.
func commandOutput(s string) string {
	s = strings.TrimSpace(oneHeaderLine(s))
	if s == "" {
		return ""
	}
	return ". Command output: " + s
}

// capWriter keeps the first max bytes written and drops the rest.
type capWriter struct {
	buf *bytes.Buffer
	max int
}

func (c *capWriter) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}
