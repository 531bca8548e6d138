package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// maxLine bounds every line read from a server; a longer one is an error,
// not a reason to grow a buffer without end (RFC 9051 has no limit, so
// the client must set one). Greetings and login replies with a
// CAPABILITY code are a few hundred bytes.
const maxLine = 8 << 10

// Mechanism is how a client proves its password.
type Mechanism string

const (
	// MechLogin is the LOGIN command (RFC 9051 6.2.3).
	MechLogin Mechanism = "login"
	// MechPlain is AUTHENTICATE PLAIN (RFC 9051 6.2.2, RFC 4616), with
	// the initial response on the command line when the greeting
	// announces SASL-IR (RFC 4959).
	MechPlain Mechanism = "plain"
)

// errLoginRefused marks a tagged NO or BAD to the login command: the
// server answered, and said no.
var errLoginRefused = errors.New("login refused")

// response is one line from the server, classified.
type response struct {
	tag    string // "*" untagged, "+" continuation, else the command's tag
	status string // OK, NO, BAD, BYE, PREAUTH for status responses; "" otherwise
	text   string // the rest of the line after tag and status
}

// parseResponse splits a server line (without its CRLF) into tag, status
// and text, the shapes of RFC 9051 7.1 (status responses) and 7.5
// (continuation requests). A line that is neither a tagged nor an
// untagged response nor a continuation is an error.
func parseResponse(line string) (response, error) {
	if line == "" {
		return response{}, errors.New("empty response line")
	}
	if strings.HasPrefix(line, "+") {
		return response{tag: "+", text: strings.TrimPrefix(strings.TrimPrefix(line, "+"), " ")}, nil
	}
	tag, rest, ok := strings.Cut(line, " ")
	if !ok || tag == "" {
		return response{}, fmt.Errorf("malformed response %q", clip(line))
	}
	if tag != "*" {
		// RFC 9051 9: tag = 1*<any ASTRING-CHAR except "+">.
		for i := 0; i < len(tag); i++ {
			if c := tag[i]; c <= ' ' || c >= 0x7f || strings.IndexByte(`(){%*"\+`, c) >= 0 {
				return response{}, fmt.Errorf("malformed tag in %q", clip(line))
			}
		}
	}
	word, text, _ := strings.Cut(rest, " ")
	switch w := strings.ToUpper(word); w {
	case "OK", "NO", "BAD", "BYE", "PREAUTH":
		return response{tag: tag, status: w, text: text}, nil
	}
	if tag != "*" {
		return response{}, fmt.Errorf("tagged response without a status: %q", clip(line))
	}
	return response{tag: tag, text: rest}, nil
}

// clip shortens a server line for an error message.
func clip(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

// quote makes an IMAP quoted string (RFC 9051 4.3); CR, LF and NUL cannot
// be quoted, and the user names and passwords of this program never hold
// them.
func quote(s string) (string, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return "", fmt.Errorf("%q cannot be sent as an IMAP quoted string", s)
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`, nil
}

// imapConn is one client connection with a deadline on every exchange.
type imapConn struct {
	c       net.Conn
	r       *bufio.Reader
	timeout time.Duration
}

func (ic *imapConn) readLine() (string, error) {
	ic.c.SetReadDeadline(time.Now().Add(ic.timeout))
	var line []byte
	for {
		chunk, isPrefix, err := ic.r.ReadLine()
		if err != nil {
			return "", err
		}
		line = append(line, chunk...)
		if len(line) > maxLine {
			return "", fmt.Errorf("response line longer than %d bytes", maxLine)
		}
		if !isPrefix {
			return string(line), nil
		}
	}
}

func (ic *imapConn) send(cmd string) error {
	ic.c.SetWriteDeadline(time.Now().Add(ic.timeout))
	_, err := ic.c.Write([]byte(cmd + "\r\n"))
	return err
}

// await reads until the tagged response to tag, answering nothing: a
// continuation request is an error here, and so is an untagged BYE unless
// byeExpected (LOGOUT's, RFC 9051 6.1.3). It returns the tagged response.
func (ic *imapConn) await(tag string, byeExpected bool) (response, error) {
	for {
		line, err := ic.readLine()
		if err != nil {
			return response{}, err
		}
		r, err := parseResponse(line)
		if err != nil {
			return response{}, err
		}
		switch r.tag {
		case tag:
			return r, nil
		case "+":
			return response{}, fmt.Errorf("unexpected continuation request %q", clip(line))
		case "*":
			if r.status == "BYE" && !byeExpected {
				return response{}, fmt.Errorf("server closed the session: %s", clip(r.text))
			}
		default:
			return response{}, fmt.Errorf("response for tag %q while waiting for %q", r.tag, tag)
		}
	}
}

// login opens a connection to addr (a loopback address: checked by the
// caller), reads the greeting, logs in as user with pass by mech, and
// logs out. It returns the time from the start of the dial to the tagged
// OK of the login, which is what a user waits for.
func login(ctx context.Context, addr, user, pass string, mech Mechanism, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	d := net.Dialer{Timeout: timeout}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	// Ending ctx (the run's end, or Ctrl-C) unblocks a read at once.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	ic := &imapConn{c: c, r: bufio.NewReaderSize(c, 4096), timeout: timeout}

	greeting, err := ic.readLine()
	if err != nil {
		return 0, fmt.Errorf("greeting: %w", err)
	}
	g, err := parseResponse(greeting)
	if err != nil || g.tag != "*" || g.status != "OK" {
		// PREAUTH would skip the login this program measures.
		return 0, fmt.Errorf("greeting: want * OK, got %q", clip(greeting))
	}
	var cmd string
	switch mech {
	case MechLogin:
		u, err := quote(user)
		if err != nil {
			return 0, err
		}
		p, err := quote(pass)
		if err != nil {
			return 0, err
		}
		cmd = "a LOGIN " + u + " " + p
	case MechPlain:
		// RFC 4616 2: message = [authzid] NUL authcid NUL passwd.
		ir := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pass))
		if hasCapability(g.text, "SASL-IR") {
			cmd = "a AUTHENTICATE PLAIN " + ir
		} else {
			if err := ic.send("a AUTHENTICATE PLAIN"); err != nil {
				return 0, err
			}
			line, err := ic.readLine()
			if err != nil {
				return 0, fmt.Errorf("AUTHENTICATE: %w", err)
			}
			if r, err := parseResponse(line); err != nil || r.tag != "+" {
				return 0, fmt.Errorf("AUTHENTICATE: want a continuation, got %q", clip(line))
			}
			cmd = ir
		}
	default:
		return 0, fmt.Errorf("unknown mechanism %q", mech)
	}
	if err := ic.send(cmd); err != nil {
		return 0, err
	}
	r, err := ic.await("a", false)
	if err != nil {
		return 0, fmt.Errorf("login: %w", err)
	}
	if r.status != "OK" {
		return 0, fmt.Errorf("%w: %s %s", errLoginRefused, r.status, clip(r.text))
	}
	latency := time.Since(start)
	if err := ic.send("b LOGOUT"); err != nil {
		return 0, err
	}
	// RFC 9051 6.1.3: BYE, then the tagged OK.
	if r, err := ic.await("b", true); err != nil || r.status != "OK" {
		return 0, fmt.Errorf("LOGOUT: %v %s", err, r.status)
	}
	return latency, nil
}

// hasCapability reports whether a greeting's text carries a
// [CAPABILITY ...] response code naming capa (RFC 9051 7.1).
func hasCapability(text, capa string) bool {
	if !strings.HasPrefix(text, "[") {
		return false
	}
	code, _, ok := strings.Cut(text[1:], "]")
	if !ok {
		return false
	}
	fields := strings.Fields(code)
	if len(fields) == 0 || !strings.EqualFold(fields[0], "CAPABILITY") {
		return false
	}
	for _, f := range fields[1:] {
		if strings.EqualFold(f, capa) {
			return true
		}
	}
	return false
}
