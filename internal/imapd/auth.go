package imapd

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"postcote/internal/sasl"
)

// cmdCapability is RFC 3501 6.1.1.
func (s *session) cmdCapability(c *command, p *parser) (status, error) {
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	s.w.untagged("CAPABILITY %s", s.capabilities())
	return ok(capText(s)), nil
}

func capText(s *session) string {
	if s.state == stateNotAuth {
		return "Pre-login capabilities listed, post-login capabilities have more."
	}
	return "Capability completed."
}

// cmdNoop is NOOP (RFC 3501 6.1.2) and CHECK (6.4.1): the updates are
// sent by the command loop.
func (s *session) cmdNoop(c *command, p *parser) (status, error) {
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	return ok(strings.ToUpper(c.name[:1]) + strings.ToLower(c.name[1:]) + " completed."), nil
}

// cmdLogout is RFC 3501 6.1.3.
func (s *session) cmdLogout(c *command, p *parser) (status, error) {
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	s.w.untagged("BYE Logging out")
	s.loggedOut = true
	return ok("Logout completed."), nil
}

// cmdID is RFC 2971: the client's fields are logged, ours returned.
func (s *session) cmdID(c *command, p *parser) (status, error) {
	if err := p.sp(); err != nil {
		return status{}, err
	}
	var fields []string
	b, err := p.peek()
	if err != nil {
		return status{}, err
	}
	if b == '(' {
		err = p.list(func() error {
			// RFC 2971 3.3: at most 30 field-value pairs.
			if len(fields) >= 60 {
				return badSyntax("too many ID fields")
			}
			k, err := p.str()
			if err != nil {
				return err
			}
			if err := p.sp(); err != nil {
				return err
			}
			v, _, err := p.nstring()
			if err != nil {
				return err
			}
			fields = append(fields, k, v)
			return nil
		})
	} else {
		_, _, err = p.nstring()
	}
	if err == nil {
		err = p.crlf()
	}
	if err != nil {
		return status{}, err
	}
	if len(fields) > 0 {
		var parts []string
		for i := 0; i+1 < len(fields); i += 2 {
			parts = append(parts, fmt.Sprintf("%s=%q", fields[i], fields[i+1]))
		}
		s.opts.Logger.Debugf("imap-login", "ID sent: %s, %s", strings.Join(parts, ", "), s.logAddrs())
	}
	s.w.WriteString("* ID (\"name\" ")
	s.w.str(s.opts.ServerID)
	s.w.WriteString(")\r\n")
	return ok("ID completed."), nil
}

// cmdStartTLS is RFC 3501 6.2.1.
func (s *session) cmdStartTLS(c *command, p *parser) (status, error) {
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	if s.opts.TLS == nil {
		return bad("TLS support isn't enabled."), nil
	}
	if s.tls {
		return bad("TLS is already active."), nil
	}
	s.tagged(c, ok("Begin TLS negotiation now."))
	if err := s.w.Flush(); err != nil {
		return status{}, err
	}
	// Anything the client pipelined after STARTTLS was sent in clear and
	// is dropped (RFC 3501 6.2.1, the STARTTLS command injection fix).
	if n := s.br.Buffered(); n > 0 {
		s.br.Discard(n)
	}
	tc := tls.Server(s.conn, s.opts.TLS)
	hctx, cancel := context.WithTimeout(s.ctx, s.opts.LoginTimeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return status{}, fmt.Errorf("TLS handshake: %w", err)
	}
	s.setConn(tc)
	s.tls = true
	s.secured = true
	// The tagged OK already went out; nothing more for this command.
	return status{}, errAlreadyAnswered
}

// errAlreadyAnswered tells readCommand that the handler wrote its own
// tagged response (STARTTLS).
var errAlreadyAnswered = errors.New("already answered")

// cmdLogin is RFC 3501 6.2.3.
func (s *session) cmdLogin(c *command, p *parser) (status, error) {
	if err := p.sp(); err != nil {
		return status{}, err
	}
	user, err := p.astring()
	if err != nil {
		return status{}, err
	}
	if err := p.sp(); err != nil {
		return status{}, err
	}
	pass, err := p.astring()
	if err != nil {
		return status{}, err
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	if !s.plaintextAllowed() {
		s.authAttempts++
		s.lastUser, s.authMethod = user, "PLAIN"
		return no("PRIVACYREQUIRED", "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."), nil
	}
	mech := sasl.NewServer("PLAIN", s.srv.checker, s.saslRequest())
	return s.runAuth(s.ctx, "PLAIN", user, mech, []byte("\x00"+user+"\x00"+pass))
}

func (s *session) saslRequest() sasl.Request {
	return sasl.Request{Service: "imap", Remote: s.rawConn.RemoteAddr(), Local: s.rawConn.LocalAddr(), Secured: s.secured}
}

// cmdAuthenticate is RFC 3501 6.2.2 with SASL-IR (RFC 4959).
func (s *session) cmdAuthenticate(c *command, p *parser) (status, error) {
	if err := p.sp(); err != nil {
		return status{}, err
	}
	mechName, err := p.atom()
	if err != nil {
		return status{}, err
	}
	mechName = strings.ToUpper(mechName)
	var initial []byte
	if !p.atEOL() {
		if err := p.sp(); err != nil {
			return status{}, err
		}
		ir, err := p.readWhile(func(b byte) bool { return b != '\r' && b != '\n' })
		if err != nil {
			return status{}, err
		}
		if ir == "=" {
			initial = []byte{}
		} else if initial, err = base64.StdEncoding.DecodeString(ir); err != nil {
			return status{}, badSyntax("Invalid base64 data in initial response")
		}
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	offered := false
	for _, m := range s.opts.AuthMechanisms {
		offered = offered || m == mechName
	}
	if !offered {
		return no("", "Unsupported authentication mechanism."), nil
	}
	if s.opts.TLSRequiredForAuth && !s.secured {
		s.authAttempts++
		s.authMethod = mechName
		return no("PRIVACYREQUIRED", "Authentication not allowed until SSL/TLS is enabled."), nil
	}
	// Dovecot refuses only the plaintext mechanisms on an insecure
	// connection under disable_plaintext_auth; SCRAM never shows the
	// password and stays allowed.
	if sasl.IsPlaintext(mechName) && !s.plaintextAllowed() {
		s.authAttempts++
		s.authMethod = mechName
		return no("PRIVACYREQUIRED", "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."), nil
	}
	mech := sasl.NewServer(mechName, s.srv.checker, s.saslRequest())
	if mech == nil {
		return no("", "Unsupported authentication mechanism."), nil
	}
	ctx := s.ctx
	resp := initial
	for {
		challenge, done, err := mech.Next(ctx, resp)
		if done || err != nil {
			return s.finishAuth(ctx, mechName, "", mech, err)
		}
		s.w.WriteString("+ " + base64.StdEncoding.EncodeToString(challenge) + "\r\n")
		if err := s.w.Flush(); err != nil {
			return status{}, err
		}
		p.reset(s.opts.MaxLineLength)
		line, err := p.readWhile(func(b byte) bool { return b != '\r' && b != '\n' })
		if err != nil {
			return status{}, err
		}
		if err := p.crlf(); err != nil {
			return status{}, err
		}
		if line == "*" {
			s.authAttempts++
			s.authMethod = mechName
			return bad("Authentication aborted by client."), nil
		}
		if line == "=" {
			// An empty response written as SASL-IR writes an empty
			// initial one (RFC 4959 3), as go-imap's client does;
			// "=" is no valid base64, so nothing else is meant.
			resp = []byte{}
		} else if resp, err = base64.StdEncoding.DecodeString(line); err != nil {
			s.authAttempts++
			s.authMethod = mechName
			return bad("Invalid base64 data in continued response"), nil
		}
	}
}

// authCapabilities lists the AUTH= capabilities of a session that has not
// logged in: every configured mechanism, but only the non-plaintext ones
// (SCRAM) while plaintext authentication is disallowed (Dovecot's
// sasl_server_get_advertised_mechs).
func (s *session) authCapabilities() []string {
	var caps []string
	for _, m := range s.opts.AuthMechanisms {
		if s.plaintextAllowed() || !sasl.IsPlaintext(m) {
			caps = append(caps, "AUTH="+m)
		}
	}
	return caps
}

// runAuth runs a one-step mechanism with the given response (LOGIN).
func (s *session) runAuth(ctx context.Context, method, user string, mech sasl.Server, resp []byte) (status, error) {
	_, _, err := mech.Next(ctx, resp)
	return s.finishAuth(ctx, method, user, mech, err)
}

// finishAuth turns the result of a SASL exchange into the login: the
// userdb lookup, the mail store account, the log line.
func (s *session) finishAuth(ctx context.Context, method, user string, mech sasl.Server, err error) (status, error) {
	s.authAttempts++
	s.authMethod = method
	if u := mech.User(); u != "" {
		user = u
	}
	s.lastUser = user
	if err != nil {
		return s.authFailed(err)
	}
	name := mech.User()
	u, err := s.srv.users.LookupUser(ctx, "imap", name)
	if err != nil {
		s.opts.Logger.Printf("imap-login", "Internal login failure (userdb lookup failed: %v): user=<%s>, method=%s, %s", err, name, method, s.logAddrs())
		return no("UNAVAILABLE", "Internal login failure. Refer to server log for more information."), nil
	}
	if !s.srv.acquireUserIP(name, s.remoteIP) {
		s.opts.Logger.Printf("imap-login", "Maximum number of connections from user+IP exceeded (mail_max_userip_connections=%d): user=<%s>, method=%s, %s",
			s.opts.MaxUserIPConnections, name, method, s.logAddrs())
		return no("LIMIT", fmt.Sprintf("Maximum number of connections from user+IP exceeded (mail_max_userip_connections=%d)", s.opts.MaxUserIPConnections)), nil
	}
	acct, err := s.srv.store.Open(ctx, u)
	if err != nil {
		s.srv.releaseUserIP(name, s.remoteIP)
		s.opts.Logger.Printf("imap-login", "Internal login failure (mail storage: %v): user=<%s>, method=%s, %s", err, name, method, s.logAddrs())
		return no("UNAVAILABLE", "Internal login failure. Refer to server log for more information."), nil
	}
	s.userIPHeld = true
	s.user = name
	s.account = acct
	s.state = stateAuth
	s.opts.Logger.Printf("imap-login", "Login: user=<%s>, method=%s, %s, mpid=%d, %s",
		name, method, s.loginAddrs(), os.Getpid(), s.sessionTLS())
	return okCode("CAPABILITY "+s.capabilities(), "Logged in"), nil
}

func (s *session) loginAddrs() string {
	return fmt.Sprintf("rip=%s, lip=%s", s.remoteIP, s.localIP)
}

func (s *session) sessionTLS() string {
	switch {
	case s.tls:
		return "TLS, session=<" + s.id + ">"
	case s.secured:
		return "secured, session=<" + s.id + ">"
	}
	return "session=<" + s.id + ">"
}

// authFailed answers a failed login after auth_failure_delay and ends
// the connection after MaxAuthFailures attempts.
func (s *session) authFailed(err error) (status, error) {
	var st status
	switch {
	case errors.Is(err, sasl.ErrTempFail):
		st = no("UNAVAILABLE", "Temporary authentication failure.")
	case errors.Is(err, sasl.ErrMalformed):
		st = bad("Invalid authentication data.")
	case errors.Is(err, sasl.ErrCancelled):
		return bad("Authentication aborted by client."), nil
	default:
		st = no("AUTHENTICATIONFAILED", "Authentication failed.")
	}
	if !errors.Is(err, sasl.ErrTempFail) && !errors.Is(err, sasl.ErrAuthFailed) && !errors.Is(err, sasl.ErrMalformed) {
		s.opts.Logger.Printf("imap-login", "auth failed: %v: user=<%s>, %s", err, s.lastUser, s.logAddrs())
	}
	if s.opts.AuthFailureDelay > 0 {
		t := time.NewTimer(s.opts.AuthFailureDelay)
		select {
		case <-t.C:
		case <-s.interrupted:
			t.Stop()
		}
	}
	if s.authAttempts >= s.opts.MaxAuthFailures {
		s.endAfterReply()
	}
	return st, nil
}

// endAfterReply makes the session end after the tagged reply.
func (s *session) endAfterReply() {
	s.loggedOut = true
	s.byeText = "Too many invalid authentication attempts."
	s.reason = "auth failed"
}

// cmdEnable is RFC 5161. No extension that needs enabling is offered yet
// (CONDSTORE, QRESYNC and UTF8=ACCEPT will be); unknown names are
// ignored as 3.1 requires.
func (s *session) cmdEnable(c *command, p *parser) (status, error) {
	var names []string
	for !p.atEOL() {
		if err := p.sp(); err != nil {
			return status{}, err
		}
		a, err := p.atom()
		if err != nil {
			return status{}, err
		}
		names = append(names, strings.ToUpper(a))
	}
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	if len(names) == 0 {
		return status{}, badSyntax("Missing parameters")
	}
	var enabled []string
	for _, n := range names {
		if s.enableable(n) && !s.enabled[n] {
			s.enabled[n] = true
			enabled = append(enabled, n)
		}
	}
	s.w.WriteString("* ENABLED")
	for _, n := range enabled {
		s.w.WriteString(" " + n)
	}
	s.w.WriteString("\r\n")
	return ok("Enabled."), nil
}

// enableable lists the capabilities ENABLE can turn on.
func (s *session) enableable(name string) bool { return false }

// cmdNamespace is RFC 2342: one personal namespace with an empty prefix.
func (s *session) cmdNamespace(c *command, p *parser) (status, error) {
	if err := p.crlf(); err != nil {
		return status{}, err
	}
	s.w.WriteString(`* NAMESPACE (("" `)
	s.w.str(s.opts.Separator)
	s.w.WriteString(")) NIL NIL\r\n")
	return ok("Namespace completed."), nil
}
