package smtpd

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	"postcote/internal/sasl"
)

// authLineLimit is the longest AUTH line or SASL response accepted
// (RFC 4954 4: 12288 octets).
const authLineLimit = 12288

// authOffered says whether EHLO lists AUTH now: SASL is on, and TLS is
// active unless smtpd_tls_auth_only is off and the level is not encrypt.
func (s *session) authOffered() bool {
	if !s.opts.SASLEnable || len(s.mechanisms(s.tlsState != nil)) == 0 {
		return false
	}
	if s.tlsState != nil {
		return true
	}
	return !s.opts.TLSAuthOnly && s.opts.TLSLevel != TLSEncrypt
}

// mechanisms lists what may be offered with or without TLS under
// smtpd_sasl(_tls)_security_options.
func (s *session) mechanisms(tls bool) []string {
	opts := s.opts.SASLSecurityOptions
	if tls {
		opts = s.opts.SASLTLSSecurityOptions
	}
	var out []string
	for _, m := range s.opts.SASLMechanisms {
		if mechanismAllowed(m, opts) {
			out = append(out, m)
		}
	}
	return out
}

// mechanismAllowed applies the security options to one mechanism by its
// flags, as Postfix's xsasl_dovecot_server does with the flags of the auth
// server's MECH lines. PLAIN and LOGIN send the password itself, so every
// option but noanonymous rules them out; SCRAM ("mutual-auth") passes
// all but forward_secrecy, which no mechanism here has.
func mechanismAllowed(mech string, opts []string) bool {
	flags := sasl.Flags(mech)
	plaintext := slices.Contains(flags, sasl.FlagPlaintext)
	for _, o := range splitRestrictions(opts) {
		switch strings.ToLower(o) {
		case "noplaintext", "noactive", "nodictionary":
			if plaintext {
				return false
			}
		case "mutual_auth":
			if !slices.Contains(flags, sasl.FlagMutualAuth) {
				return false
			}
		case "forward_secrecy":
			return false
		}
	}
	return true
}

// cmdSTARTTLS: RFC 3207. Whatever the client pipelined after STARTTLS is
// thrown away (4.2: the client must not pipeline past it) so that it can
// never be read as if it came over TLS (command injection, CVE-2011-0411),
// and all SMTP state is forgotten (4.2).
func (s *session) cmdSTARTTLS(ctx context.Context, arg string) Reply {
	if s.opts.TLS == nil || s.opts.TLSLevel == TLSNone {
		return Reply{502, "5.5.1", "Error: command not implemented"}
	}
	if s.tlsState != nil {
		return Reply{554, "5.5.1", "Error: TLS already active"}
	}
	if arg != "" {
		return Reply{501, "5.5.4", "Syntax: STARTTLS"}
	}
	if n := s.r.Buffered(); n > 0 {
		s.warnf("%s: discarding %d bytes of plaintext pipelined after STARTTLS (possible command injection)", s.namaddr(), n)
		s.r.Discard(n)
	}
	s.send(Reply{220, "2.0.0", "Ready to start TLS"})
	if err := s.flush(); err != nil {
		s.logf("lost connection after STARTTLS from %s", s.namaddr())
		return Reply{}
	}
	tc := tls.Server(s.currentConn(), s.opts.TLS)
	hctx, cancel := context.WithTimeout(ctx, s.opts.Timeouts.Command)
	err := tc.HandshakeContext(hctx)
	cancel()
	if err != nil {
		s.warnf("TLS library problem: %s: %v", s.namaddr(), err)
		s.logf("lost connection after STARTTLS from %s", s.namaddr())
		s.closing = true
		return Reply{}
	}
	s.abortTx()
	s.helo, s.esmtp, s.authUser, s.authMech = "", false, "", ""
	s.startTLS(tc)
	return replySent // the 220 was the reply

}

// cmdAUTH: RFC 4954 4. The mechanisms are internal/sasl's; this method
// only carries their challenges and responses in base64 over 334 lines.
func (s *session) cmdAUTH(ctx context.Context, arg string) Reply {
	switch {
	case !s.opts.SASLEnable:
		return Reply{503, "5.5.1", "Error: authentication not enabled"}
	case s.opts.TLSLevel == TLSEncrypt && s.tlsState == nil:
		return replyNeedTLS
	case s.opts.TLSAuthOnly && s.tlsState == nil:
		return Reply{538, "5.7.11", "Encryption required for requested authentication mechanism"}
	case !s.esmtp:
		return Reply{503, "5.5.1", "Error: send EHLO first"}
	case s.authUser != "":
		return Reply{503, "5.5.1", "Error: already authenticated"}
	case s.tx != nil:
		return Reply{503, "5.5.1", "Error: MAIL transaction in progress"}
	}
	f := strings.Fields(arg)
	if len(f) == 0 || len(f) > 2 {
		return Reply{501, "5.5.4", "Syntax: AUTH mechanism"}
	}
	mech := strings.ToUpper(f[0])
	if !slices.Contains(s.mechanisms(s.tlsState != nil), mech) {
		if s.tlsState == nil && slices.Contains(s.mechanisms(true), mech) {
			// RFC 4954 6: the mechanism exists, but only over TLS.
			return Reply{538, "5.7.11", "Encryption required for requested authentication mechanism"}
		}
		return Reply{535, "5.7.8", "Error: authentication failed: Invalid authentication mechanism"}
	}
	var resp []byte
	if len(f) == 2 {
		if f[1] == "=" { // RFC 4954 4: an empty initial response
			resp = []byte{}
		} else {
			b, err := base64.StdEncoding.DecodeString(f[1])
			if err != nil {
				return Reply{501, "5.5.2", "Cannot decode response"}
			}
			resp = b
		}
	}
	m := sasl.NewServer(mech, s.srv.auth, sasl.Request{
		Service: "smtp", Remote: s.currentConn().RemoteAddr(), Local: s.currentConn().LocalAddr(), Secured: s.tlsState != nil,
	})
	for {
		challenge, done, err := m.Next(ctx, resp)
		if done {
			return s.authResult(mech, m, err)
		}
		s.send(Reply{334, "", base64.StdEncoding.EncodeToString(challenge)})
		if err := s.flush(); err != nil {
			return Reply{}
		}
		s.setReadDeadline(s.opts.Timeouts.Command)
		line, err := s.readLine(authLineLimit)
		if err == errLineTooLong {
			return Reply{500, "5.5.6", "SASL response limit exceeded"}
		}
		if err != nil {
			s.readFailed(err)
			return Reply{}
		}
		if line == "*" { // RFC 4954 4: the client cancels
			return Reply{501, "5.7.0", "Authentication aborted"}
		}
		resp, err = base64.StdEncoding.DecodeString(line)
		if err != nil {
			return Reply{501, "5.5.2", "Cannot decode response"}
		}
	}
}

func (s *session) authResult(mech string, m sasl.Server, err error) Reply {
	switch {
	case err == nil:
		s.authUser, s.authMech = m.User(), mech
		return Reply{235, "2.7.0", "Authentication successful"}
	case errors.Is(err, sasl.ErrCancelled):
		return Reply{501, "5.7.0", "Authentication aborted"}
	case errors.Is(err, sasl.ErrTempFail):
		s.warnf("%s: SASL %s authentication failed: %v", s.namaddr(), mech, err)
		return Reply{454, "4.7.0", "Temporary authentication failure"}
	}
	s.warnf("%s: SASL %s authentication failed: %v", s.namaddr(), mech, err)
	return Reply{535, "5.7.8", "Error: authentication failed: authentication failure"}
}
