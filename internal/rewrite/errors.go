package rewrite

import (
	"errors"
	"fmt"
)

// Error is a cleanup failure that carries the reply Postfix's smtpd gives
// for it at the end of DATA (cleanup_strerror.c, smtpd.c) and the warning
// cleanup logs. smtpd can find it with errors.As and answer Code, Status
// and Text; a mail source that cannot reply (pickup) tells a temporary
// failure (4xx) from a permanent one (5xx) with Temporary.
type Error struct {
	Code   int    // SMTP reply code: 451 or 554
	Status string // RFC 3463 enhanced status code, e.g. "4.6.0"
	Text   string // reply text after the status code
	// Log is the cleanup warning without the queue ID, as Postfix words
	// it ("unreasonable virtual_alias_maps map nesting for a@b -- message
	// not accepted, try again later").
	Log string
	Err error // the cause, for errors.Is (ErrAliasExpansion, ErrTooManyHops)
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s %s: %v", e.Code, e.Status, e.Text, e.Err)
	}
	return fmt.Sprintf("%d %s %s", e.Code, e.Status, e.Text)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Temporary tells whether the sender should try again later (a 4xx
// reply); permanent failures (5xx) are bounced or refused.
func (e *Error) Temporary() bool { return e.Code/100 == 4 }

// SMTPReply returns the reply for the client: code, enhanced status code
// and text, as "451 4.6.0 Alias expansion error".
func (e *Error) SMTPReply() (code int, status, text string) {
	return e.Code, e.Status, e.Text
}

// ErrTooManyHops is wrapped when a message has hopcount_limit Received
// headers or more: a mail loop (RFC 5321 6.3).
var ErrTooManyHops = errors.New("too many hops")

// aliasError is cleanup_map1n's failure for an alias loop or an expansion
// over the limits: "451 4.6.0 Alias expansion error", as Postfix 3.7
// answers (checked against a running Postfix).
func aliasError(log string) *Error {
	return &Error{Code: 451, Status: "4.6.0", Text: "Alias expansion error",
		Log: log + " -- message not accepted, try again later",
		Err: fmt.Errorf("%w: %s", ErrAliasExpansion, log)}
}

// lookupError is cleanup's failure for a table that could not answer:
// Postfix sets CLEANUP_STAT_WRITE and smtpd answers "451 4.3.0 Error:
// queue file write error".
func lookupError(mapName, addr string, err error) *Error {
	return &Error{Code: 451, Status: "4.3.0", Text: "Error: queue file write error",
		Log: fmt.Sprintf("%s map lookup problem for %s -- message not accepted, try again later", mapName, addr),
		Err: err}
}

// hopsError is CLEANUP_STAT_HOPS: "554 5.4.0 Error: too many hops".
func hopsError() *Error {
	return &Error{Code: 554, Status: "5.4.0", Text: "Error: too many hops",
		Log: "message rejected: hopcount exceeded", Err: ErrTooManyHops}
}
