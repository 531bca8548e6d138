package maillog

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"
)

// Facilities are syslog(3)'s facility codes by the names Postfix's
// syslog_facility and Dovecot's syslog_facility take (RFC 5424 6.2.1).
var facilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5,
	"lpr": 6, "news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19,
	"local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Severities of RFC 5424 6.2.1 used for the lines this package writes.
// Postfix's msg(3) maps warning/error/fatal/panic the same way.
const (
	sevCrit    = 2
	sevErr     = 3
	sevWarning = 4
	sevInfo    = 6
	sevDebug   = 7
)

// DefaultSyslogSocket is where the local syslog daemon listens.
const DefaultSyslogSocket = "/dev/log"

// ParseFacility returns the code of a facility name ("mail", "local0").
func ParseFacility(name string) (int, error) {
	f, ok := facilities[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return 0, fmt.Errorf("unknown syslog facility %q (use mail, daemon, auth, user or local0..local7)", name)
	}
	return f, nil
}

// syslogWriter sends each line as one datagram to the syslog socket in
// the BSD form Postfix itself sends (RFC 3164 4.1: "<PRI>Mmm dd hh:mm:ss
// TAG[pid]: text"; the daemon adds the host name). When the daemon goes
// away (restarted), the next line redials once; if that fails too the
// line goes to the fallback writer, so nothing is lost silently.
type syslogWriter struct {
	mu       sync.Mutex
	path     string
	facility int
	conn     net.Conn
	fallback io.Writer
}

func dialSyslog(path string) (net.Conn, error) {
	var errs []error
	for _, network := range []string{"unixgram", "unix"} {
		c, err := net.DialTimeout(network, path, 2*time.Second)
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("syslog socket %s: %w", path, errors.Join(errs...))
}

// send writes one record with the given severity; text has no newline.
func (s *syslogWriter) send(sev int, stamp time.Time, text string) {
	rec := fmt.Sprintf("<%d>%s %s", s.facility*8+sev, stamp.Format(time.Stamp), text)
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; attempt < 2; attempt++ {
		if s.conn == nil {
			c, err := dialSyslog(s.path)
			if err != nil {
				break
			}
			s.conn = c
		}
		s.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.WriteString(s.conn, rec); err == nil {
			return
		}
		s.conn.Close()
		s.conn = nil
	}
	if s.fallback != nil {
		fmt.Fprintf(s.fallback, "%s\n", rec)
	}
}

func (s *syslogWriter) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == nil {
		return nil
	}
	err := s.conn.Close()
	s.conn = nil
	return err
}

// NewSyslog returns a Logger that sends its lines to the syslog daemon
// at path (DefaultSyslogSocket when "") with the given facility ("mail"
// when ""), as Postfix and Dovecot do when no log file is configured:
// warnings with severity warning, debug lines with debug, the rest info.
// Lines that cannot be sent go to fallback (standard error in the
// server). It fails when the socket does not answer at all, so the caller
// can fall back to standard error with a clear message.
func NewSyslog(path, facility, host string, fallback io.Writer) (*Logger, func() error, error) {
	if path == "" {
		path = DefaultSyslogSocket
	}
	if facility == "" {
		facility = "mail"
	}
	code, err := ParseFacility(facility)
	if err != nil {
		return nil, nil, err
	}
	c, err := dialSyslog(path)
	if err != nil {
		return nil, nil, err
	}
	s := &syslogWriter{path: path, facility: code, conn: c, fallback: fallback}
	l := New(io.Discard, host, false)
	l.sys = s
	return l, s.close, nil
}
