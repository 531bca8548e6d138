// Package sasl owns the server side of the SASL mechanisms that every
// postcote protocol offers (SMTP AUTH, IMAP AUTHENTICATE, POP3 AUTH,
// ManageSieve AUTHENTICATE and the Dovecot auth service), and a SCRAM
// client for tests and outgoing connections.
//
// A mechanism is a small state machine: the protocol layer feeds it the
// client's decoded responses and sends back the challenges it returns,
// base64-encoding them in its own syntax. Passwords are checked through the
// PasswordChecker interface, which internal/userdb implements, so the
// mechanisms know nothing about where users live.
//
// PLAIN is RFC 4616; LOGIN is the draft-murchison-sasl-login mechanism that
// Outlook and old clients use. Both send the password itself (IsPlaintext).
//
// SCRAM-SHA-1 (RFC 5802) and SCRAM-SHA-256 (RFC 7677) never send the
// password: the server needs the user's SCRAM credentials (salt,
// iteration count, StoredKey, ServerKey), which it gets through the
// CredentialsLookup interface; internal/userdb derives them from a stored
// {SCRAM-SHA-256}/{SCRAM-SHA-1} value or from a {PLAIN} password, as
// Dovecot does, and refuses users whose passwords are crypt hashes. The
// exchange is
//
//	C: n,,n=user,r=<c-nonce>                          (client-first)
//	S: r=<c-nonce><s-nonce>,s=<salt>,i=<iterations>   (server-first)
//	C: c=biws,r=<c-nonce><s-nonce>,p=<proof>          (client-final)
//	S: v=<server signature>                           (server-final)
//	C: (empty)
//
// The server-final message is sent as a last challenge and the empty
// response ends the exchange, the form RFC 4422 5 prescribes for protocols
// without "additional data with success" (SMTP 334, IMAP "+", and it
// passes unchanged through Dovecot's auth protocol to Postfix). Channel
// binding (-PLUS) is not offered; a gs2 header of "n" or "y" is accepted
// and "p=" refused. On a failure the server ends with the protocol's
// failure reply, as RFC 5802 5.1 allows and Dovecot does; the RFC 5802 7
// "e=" value is in the returned *SCRAMError for the log.
package sasl
