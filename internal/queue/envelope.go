package queue

import "time"

// ID is a queue ID in Postfix's long form: it sorts by arrival time and
// is unique on this host (for example "4cYvZb0yq2z1Q").
type ID string

// Envelope is everything the MTA knows about a message besides its
// content: who sent it, to whom, and how it arrived. The smtpd, sendmail
// and bounce paths fill it; the scheduler and transports read it.
type Envelope struct {
	ID         ID
	Sender     string // reverse path, "" for the null sender <>
	Recipients []Recipient
	Arrival    time.Time

	// How the message arrived, for Received headers and logs.
	ClientName string // reverse DNS name or "unknown"
	ClientAddr string // IP address, no port
	Helo       string
	Protocol   string // "ESMTP", "ESMTPSA", "ESMTPS", "SMTP", "LMTP", "local"
	AuthUser   string // SASL login name, "" when not authenticated

	// ESMTP parameters of MAIL FROM (RFC 3461, 6152, 6531).
	BodyType string // "7BIT", "8BITMIME", "BINARYMIME" or ""
	SMTPUTF8 bool
	DSNRet   string // "FULL", "HDRS" or ""
	DSNEnvID string
}

// Recipient is one envelope recipient with its delivery state.
type Recipient struct {
	Address     string // the address to deliver to, after rewriting
	OrigAddress string // the address as the client gave it (orig_to=)
	DSNNotify   string // RFC 3461 NOTIFY, e.g. "SUCCESS,FAILURE", "" for default
	DSNORcpt    string // RFC 3461 ORCPT as given, e.g. "rfc822;user@example.com"

	// State, owned by the queue.
	Status   RecipientStatus
	Attempts int
	LastErr  string // last delivery reply, for bounces and mailq

	// Delivery detail kept for delivery status notifications (RFC 3464).
	DSN        string // last enhanced status code (RFC 3463), e.g. "4.4.1"
	Diagnostic string // Diagnostic-Code value with its type, e.g. "smtp; 550 5.1.1 No such user"
	RemoteMTA  string // Remote-MTA host name, "" when the failure was local
}

// RecipientStatus says what has happened to a recipient so far.
type RecipientStatus int

const (
	Pending   RecipientStatus = iota // not yet delivered
	Delivered                        // delivered (or discarded) for good
	Bounced                          // failed permanently; a bounce is due or sent
)
