// Package maillog writes log lines in the shapes mail administrators grep
// for: Postfix's "Mon Jan  2 15:04:05 host postfix/smtpd[pid]: text"
// (here "postcote/smtpd[pid]") and Dovecot's "imap-login: Login: ..."
// lines, to standard error, to a file (Postfix's maillog_file) or to the syslog
// daemon's socket (/dev/log), as Postfix and Dovecot do by default.
//
// A Logger is safe for concurrent use; each line is one write, so lines
// from different sessions never interleave.
package maillog

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Logger writes one line per event.
type Logger struct {
	mu       sync.Mutex
	w        io.Writer
	host     string
	prefix   string // "postcote"
	pid      int
	now      func() time.Time
	debugOn  bool
	withTime bool
	sys      *syslogWriter // when set, lines go to syslog instead of w
}

// New returns a Logger writing to w, naming this host as host. Lines carry
// a syslog-style time stamp when withTime is true (for files); a logger to
// a journal that stamps lines itself passes false.
func New(w io.Writer, host string, withTime bool) *Logger {
	return &Logger{w: w, host: host, prefix: "postcote", pid: os.Getpid(), now: time.Now, withTime: withTime}
}

// Discard returns a Logger that writes nothing, for tests.
func Discard() *Logger { return New(io.Discard, "localhost", false) }

// SetDebug turns Debugf lines on or off.
func (l *Logger) SetDebug(on bool) {
	l.mu.Lock()
	l.debugOn = on
	l.mu.Unlock()
}

// Printf logs one line for program (e.g. "smtpd", "qmgr", "submission/smtpd",
// "imap-login"): "postcote/smtpd[1234]: connect from unknown[127.0.0.1]".
func (l *Logger) Printf(program, format string, args ...any) {
	if l == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if l.sys != nil {
		sev := sevInfo
		switch {
		case strings.HasPrefix(msg, "warning: "):
			sev = sevWarning
		case strings.HasPrefix(msg, "error: "):
			sev = sevErr
		case strings.HasPrefix(msg, "fatal: "), strings.HasPrefix(msg, "panic: "):
			sev = sevCrit
		case strings.HasPrefix(msg, "debug: "):
			sev = sevDebug
		}
		l.sys.send(sev, l.now(), fmt.Sprintf("%s/%s[%d]: %s", l.prefix, program, l.pid, msg))
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.withTime {
		fmt.Fprintf(l.w, "%s %s %s/%s[%d]: %s\n", l.now().Format(time.Stamp), l.host, l.prefix, program, l.pid, msg)
		return
	}
	fmt.Fprintf(l.w, "%s/%s[%d]: %s\n", l.prefix, program, l.pid, msg)
}

// Warnf logs "warning: text", as Postfix marks warnings.
func (l *Logger) Warnf(program, format string, args ...any) {
	l.Printf(program, "warning: "+format, args...)
}

// Debugf logs only when debugging is on (auth_debug, mail_debug, ...).
func (l *Logger) Debugf(program, format string, args ...any) {
	if l == nil {
		return
	}
	l.mu.Lock()
	on := l.debugOn
	l.mu.Unlock()
	if on {
		l.Printf(program, "debug: "+format, args...)
	}
}
