package smtpd

import (
	"context"
	"crypto/tls"
	"io"
	"net/netip"
	"time"

	"postcote/internal/dnsx"
	"postcote/internal/maillog"
	"postcote/internal/queue"
	"postcote/internal/rewrite"
)

// TLS security levels of smtpd_tls_security_level.
const (
	TLSNone    = "none"    // no STARTTLS offered
	TLSMay     = "may"     // STARTTLS offered, not required
	TLSEncrypt = "encrypt" // MAIL and AUTH refused before STARTTLS
)

// Options is everything one SMTP service needs, named after the main.cf
// (or master.cf -o) parameter each field comes from. Zero values mean the
// Postfix default, filled in by New.
type Options struct {
	// Hostname is myhostname: the name in the greeting, EHLO reply and
	// Received header.
	Hostname string
	// Banner is smtpd_banner after $name expansion, without the "220 ".
	// Empty means "$myhostname ESMTP postcote".
	Banner string
	// ServiceName is the master.cf service name ("smtp", "submission",
	// "submissions", "127.0.0.1:10025"). Log lines go to
	// "postcote/<service>/smtpd", or "postcote/smtpd" for "smtp".
	ServiceName string

	// TLS holds the certificate (smtpd_tls_cert_file, smtpd_tls_key_file)
	// and protocol settings. Nil means no TLS.
	TLS *tls.Config
	// TLSLevel is smtpd_tls_security_level: TLSNone, TLSMay or TLSEncrypt.
	// Empty means TLSMay when TLS is set, else TLSNone.
	TLSLevel string
	// WrapperMode is smtpd_tls_wrappermode: TLS from the first byte
	// (submissions, port 465).
	WrapperMode bool
	// TLSLogLevel is smtpd_tls_loglevel: 1 or more logs each established
	// TLS session ("Anonymous TLS connection established from …").
	TLSLogLevel int
	// ReceivedHeaderTLS is smtpd_tls_received_header: name the protocol and
	// cipher in the Received header.
	ReceivedHeaderTLS bool

	// SASLEnable is smtpd_sasl_auth_enable.
	SASLEnable bool
	// TLSAuthOnly is smtpd_tls_auth_only: offer and accept AUTH only over
	// TLS.
	TLSAuthOnly bool
	// SASLMechanisms lists the mechanisms offered; empty means those
	// of the checker when it is a MechanismLister, else PLAIN and
	// LOGIN. SCRAM-SHA-1/-256 need a checker that implements
	// sasl.CredentialsLookup.
	SASLMechanisms []string
	// BrokenSASLAuthClients is broken_sasl_auth_clients: also advertise
	// the pre-RFC "AUTH=PLAIN LOGIN" form for old Outlook clients.
	BrokenSASLAuthClients bool
	// SASLSecurityOptions is smtpd_sasl_security_options (default
	// noanonymous) and SASLTLSSecurityOptions smtpd_sasl_tls_security_options
	// (default: the same), for sessions without and with TLS. noplaintext,
	// noactive, nodictionary and mutual_auth remove PLAIN and LOGIN.
	SASLSecurityOptions    []string
	SASLTLSSecurityOptions []string
	// SASLAuthenticatedHeader is smtpd_sasl_authenticated_header: add
	// "(Authenticated sender: user)" to the Received header (default no).
	SASLAuthenticatedHeader bool

	// MessageSizeLimit is message_size_limit in bytes (default 10240000);
	// negative means no limit (Postfix's 0).
	MessageSizeLimit int64
	// RecipientLimit is smtpd_recipient_limit (default 1000).
	RecipientLimit int
	// MaxLineLength is line_length_limit (default 2048): the longest
	// command line accepted. Longer message lines are passed through in
	// pieces, never buffered whole.
	MaxLineLength int
	// Timeouts are smtpd_timeout for commands and for message data.
	Timeouts Timeouts

	// HardErrorLimit is smtpd_hard_error_limit (default 20): after this
	// many errors the session ends with 421.
	HardErrorLimit int
	// SoftErrorLimit is smtpd_soft_error_limit (default 10): beyond it
	// every reply waits ErrorSleepTime.
	SoftErrorLimit int
	// ErrorSleepTime is smtpd_error_sleep_time (default 1s); a negative
	// value means no sleep (for tests).
	ErrorSleepTime time.Duration
	// HeloRequired is smtpd_helo_required (default no).
	HeloRequired bool
	// DisableVRFY is disable_vrfy_command (default no).
	DisableVRFY bool

	// MyNetworks is mynetworks (after mynetworks_style), the trusted
	// clients of permit_mynetworks.
	MyNetworks []netip.Prefix
	// ClientRestrictions, HeloRestrictions, SenderRestrictions,
	// RelayRestrictions and RecipientRestrictions are
	// smtpd_client_restrictions … smtpd_recipient_restrictions, one
	// restriction name (or "name argument" pair) per element. A nil
	// RelayRestrictions means Postfix's default "permit_mynetworks,
	// permit_sasl_authenticated, defer_unauth_destination"; an empty
	// non-nil slice means none.
	ClientRestrictions    []string
	HeloRestrictions      []string
	SenderRestrictions    []string
	RelayRestrictions     []string
	RecipientRestrictions []string
	// NoDelayReject is smtpd_delay_reject = no. By default (yes) client,
	// helo and sender restrictions are evaluated at RCPT time, with the
	// recipient known; with NoDelayReject they run at connect, HELO/EHLO
	// and MAIL. (Inverted so that the zero value is Postfix's default.)
	NoDelayReject bool
	// KeepUnlistedRecipients is smtpd_reject_unlisted_recipient = no:
	// without an explicit reject_unlisted_recipient, a recipient in one
	// of our domains that no table lists is accepted (and later bounced)
	// instead of refused at RCPT (the default, as Postfix).
	KeepUnlistedRecipients bool
	// SenderLoginMaps is smtpd_sender_login_maps, used by
	// reject_sender_login_mismatch; nil when not configured.
	SenderLoginMaps Table
	// OpenTable opens a lookup table named "type:name" for check_*_access
	// restrictions; nil means such restrictions are a configuration error.
	OpenTable func(name string) (Table, error)

	// ClientConnectionCountLimit is smtpd_client_connection_count_limit
	// (default 50): simultaneous sessions from one address; negative
	// means no limit (Postfix's 0).
	ClientConnectionCountLimit int
	// ClientConnectionRateLimit, ClientMessageRateLimit and
	// ClientRecipientRateLimit are smtpd_client_connection_rate_limit,
	// smtpd_client_message_rate_limit and
	// smtpd_client_recipient_rate_limit: connections, MAIL and RCPT
	// commands per client per RateTimeUnit; 0 means no limit (the
	// Postfix default).
	ClientConnectionRateLimit int
	ClientMessageRateLimit    int
	ClientRecipientRateLimit  int
	// RateTimeUnit is anvil_rate_time_unit (default 60s).
	RateTimeUnit time.Duration
	// ClientEventLimitExceptions is smtpd_client_event_limit_exceptions;
	// nil means MyNetworks, as Postfix's default $mynetworks.
	ClientEventLimitExceptions []netip.Prefix
	// Anvil, when set, is shared with other services so that limits count
	// across them, as Postfix's one anvil server does; nil gives this
	// server its own (with RateTimeUnit).
	Anvil *Anvil

	// MaxConnections is the master.cf process limit
	// (default_process_limit, default 100): concurrent sessions beyond it
	// get "421 4.7.0" and are closed.
	MaxConnections int

	// DataRestrictions and EndOfDataRestrictions are
	// smtpd_data_restrictions (evaluated at DATA and the first BDAT) and
	// smtpd_end_of_data_restrictions (after the message content, before
	// it is committed to the queue).
	DataRestrictions      []string
	EndOfDataRestrictions []string

	// Resolver is the DNS of the client name lookup
	// (smtpd_peername_lookup: PTR, then the name's addresses must include
	// the client's) and of the DNS-based restrictions
	// (reject_unknown_*_domain, reject_unknown_*_hostname, reject_rbl_client,
	// reject_rhsbl_*, permit_dnswl_client). Each query should have a
	// timeout (dnsx.WithTimeout). Nil means no DNS: clients are "unknown"
	// and the DNS restrictions are configuration errors.
	Resolver dnsx.Resolver
	// NoPeernameLookup is smtpd_peername_lookup = no: every client is
	// "unknown" without asking the DNS.
	NoPeernameLookup bool
	// LookupAddr is a PTR-only name lookup used when Resolver is nil
	// (tests); its name is taken as confirmed.
	LookupAddr func(ctx context.Context, ip string) (string, error)
	// UnknownAddressRejectCode (unknown_address_reject_code, default
	// 450), UnknownHostnameRejectCode (unknown_hostname_reject_code, 450),
	// UnknownClientRejectCode (unknown_client_reject_code, 450),
	// MapsRBLRejectCode (maps_rbl_reject_code, 554) and
	// MultiRecipientBounceRejectCode (multi_recipient_bounce_reject_code,
	// 550) are the reply codes of those refusals; 0 means the default.
	UnknownAddressRejectCode       int
	UnknownHostnameRejectCode      int
	UnknownClientRejectCode        int
	MapsRBLRejectCode              int
	MultiRecipientBounceRejectCode int
	// UnknownAddressTempfailAction and UnknownHeloHostnameTempfailAction
	// (unknown_address_tempfail_action,
	// unknown_helo_hostname_tempfail_action, default $reject_tempfail_action
	// = defer_if_permit) say what a temporary DNS failure does:
	// "defer_if_permit" (450 unless something else rejects) or "defer".
	UnknownAddressTempfailAction      string
	UnknownHeloHostnameTempfailAction string
	// DefaultRBLReply is default_rbl_reply (empty: DefaultRBLReply) and
	// RBLReplyMaps rbl_reply_maps: the "type:name" tables (opened with
	// OpenTable, searched in order) of reply templates per DNS list
	// domain.
	DefaultRBLReply string
	RBLReplyMaps    []string
	// Logger receives the Postfix-shaped log lines; nil discards them.
	Logger *maillog.Logger
	// Now is the clock for Received headers; nil means time.Now.
	Now func() time.Time
}

// Timeouts bounds every read and write of a session.
type Timeouts struct {
	// Command is smtpd_timeout (default 300s): the wait for each command
	// line and for each reply write.
	Command time.Duration
	// Data is the wait for each read during DATA or BDAT (default: the
	// Command timeout).
	Data time.Duration
}

// Class is the address class of a domain, as Postfix's trivial-rewrite
// resolves it (ADDRESS_CLASS_README); internal/rewrite owns it.
type Class = rewrite.Class

// Address classes, in smtpd's words.
const (
	Other          = rewrite.Default        // default class: relaying needs a permit
	Local          = rewrite.Local          // mydestination
	VirtualAlias   = rewrite.VirtualAlias   // virtual_alias_domains
	VirtualMailbox = rewrite.VirtualMailbox // virtual_mailbox_domains
	Relay          = rewrite.Relay          // relay_domains
)

// Queue is where accepted mail goes.
type Queue interface {
	// NewID returns a fresh queue ID.
	NewID() queue.ID
	// Enqueue reads content to EOF and returns only when the message is
	// durable (fsynced). When reading content fails (client gone, size
	// limit, timeout) it returns that error and queues nothing.
	Enqueue(ctx context.Context, env *queue.Envelope, content io.Reader) error
}

// Addresses answers routing questions for the restrictions.
type Addresses interface {
	// Classify says which address class the domain (lower case, no
	// trailing dot; "[1.2.3.4]" for address literals) belongs to.
	Classify(ctx context.Context, domain string) (Class, error)
	// KnownRecipient says whether address (in one of our domains) is a
	// user or alias that exists.
	KnownRecipient(ctx context.Context, address string) (bool, error)
}

// Table is a Postfix lookup table as internal/lookup provides it: the
// values for key, none when the key is absent.
type Table interface {
	Lookup(ctx context.Context, key string) ([]string, error)
}

// queueEnvelope is shorthand inside the package.
type queueEnvelope = queue.Envelope
