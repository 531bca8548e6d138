// Package authd owns Dovecot's authentication protocol ("auth-client"
// protocol, version 1.x): the server that lets a real Postfix
// (smtpd_sasl_type = dovecot) authenticate SMTP clients against postcote's
// passdbs, and the client that lets postcote's own SMTP server
// authenticate against a real Dovecot (or another postcote).
//
// The protocol is line based: each line is a command name and parameters
// separated by TAB and ended by LF, at most MaxLineLength bytes. Values use
// Dovecot's "tab-escaping" with \001 as escape byte (\0010 NUL, \0011
// \001, \001t TAB, \001r CR, \001n LF). A connection starts with both
// sides sending
//
//	C: VERSION 1 2            S: VERSION 1 2
//	C: CPID <pid>             S: MECH PLAIN plaintext   (one per mechanism)
//	                          S: SPID <pid>
//	                          S: CUID <connection id>
//	                          S: COOKIE <32 hex digits>
//	                          S: DONE
//
// after which the client sends any number of concurrent requests,
// each named by a numeric id the client chooses:
//
//	C: AUTH <id> <mech> service=smtp [secured] [valid-client-cert]
//	        [lip=…] [rip=…] [lport=…] [rport=…] [resp=<base64>]
//	S: CONT <id> <base64 challenge>     C: CONT <id> <base64 response>
//	S: OK <id> user=<name>
//	S: FAIL <id> [user=<name>] [reason=<text>] [code=temp_fail temp]
//
// Unknown optional parameters are ignored; a major version other than 1
// ends the connection. The client sends a random CPID per connection
// (Dovecot refuses two open connections with one CPID, and one postcote
// process may hold several), keeps its connection open between requests,
// reconnects when the server closed it, and turns an unreachable or silent
// server into sasl.ErrTempFail (SMTP 454 4.7.0), never a wrong password. The server answers every request on its own
// goroutine, so one request held back by the growing failure delay of
// internal/userdb does not delay the others on the same connection.
// The mechanisms are internal/sasl's: PLAIN and LOGIN (MECH flag
// "plaintext") and SCRAM-SHA-1/SCRAM-SHA-256 ("mutual-auth"); whether
// plaintext is allowed on an unencrypted connection is the auth client's
// decision (Postfix's smtpd_tls_auth_only), as it is with Dovecot, whose
// auth process leaves that check to its login processes. SCRAM's
// server-final message goes to the client as one more CONT, answered by an
// empty CONT, before the OK: Dovecot sends it as "resp=" on the OK line
// instead, which Postfix's xsasl_dovecot_server ignores, so its SMTP
// clients never see the server's signature; a CONT reaches them as a 334.
//
// Reference: Dovecot's "Authentication Protocol" design document
// (doc.dovecot.org, developers/design/auth_protocol) and Postfix's
// xsasl_dovecot_server.c, the client this server must satisfy.
package authd
