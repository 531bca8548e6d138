package mailstore

import (
	"context"
	"errors"
	"io"
	"time"
)

// This file is the contract between the mail store and the protocol
// servers (imapd, pop3d, lmtpd, the delivery agents). The protocol
// packages use only what is declared here; how mail sits on disk is the
// store's business alone.
//
// Mailbox names in this API are the names as IMAP shows them with "/" as
// the hierarchy separator ("INBOX", "Archive/2024"). INBOX is
// case-insensitive and always spelled "INBOX" here. The IMAP layer maps
// the namespace separator the configuration chooses onto "/".

// Errors a protocol can map onto its own replies.
var (
	ErrNoMailbox     = errors.New("mailbox does not exist")      // IMAP [NONEXISTENT]
	ErrMailboxExists = errors.New("mailbox already exists")      // IMAP [ALREADYEXISTS]
	ErrBadName       = errors.New("invalid mailbox name")        // names that escape the root, empty parts, ...
	ErrNoSuchMessage = errors.New("message does not exist")      // expunged meanwhile
	ErrReadOnly      = errors.New("mailbox is open read-only")   // EXAMINE
	ErrOverQuota     = errors.New("quota exceeded")              // IMAP [OVERQUOTA], LMTP 552 5.2.2
	ErrInbox         = errors.New("INBOX cannot be deleted")     // DELETE INBOX
	ErrHasChildren   = errors.New("mailbox has child mailboxes") // DELETE of a \Noselect parent

	// ErrUIDValidityChanged comes from Mailbox.Poll when another program
	// recreated the mailbox's UID list: the session's UIDs mean nothing
	// any more and it must end (RFC 9051 2.3.1.1; Dovecot disconnects).
	ErrUIDValidityChanged = errors.New("mailbox UIDVALIDITY changed")
)

// System flags as IMAP spells them. Keywords are any other atom.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
	FlagRecent   = `\Recent` // session state: never stored, never set by clients
)

// User says whose mail this is and where it lives, as the userdb gives it.
type User struct {
	Name         string // login name, e.g. "info@example.jp"
	Home         string // home directory, for "~" in MailLocation
	MailLocation string // Dovecot mail_location, e.g. "maildir:~/Maildir" or "maildir:/mailboxes/%u"
	UID, GID     int    // owner of files the store creates; -1 = process's own
}

// Store opens accounts. One Store serves the whole process; it keeps the
// in-process change notifications between sessions of the same mailbox.
type Store interface {
	Open(ctx context.Context, u User) (Account, error)
}

// MailboxInfo is one line of a LIST answer.
type MailboxInfo struct {
	Name       string   // "/"-separated
	Attributes []string // `\HasChildren`, `\HasNoChildren`, `\Noselect`, `\NonExistent`, special-use such as `\Sent`
	Subscribed bool
}

// Status answers IMAP STATUS and SELECT without opening a session.
type Status struct {
	Messages      uint32
	Recent        uint32
	Unseen        uint32 // messages without \Seen
	UIDNext       uint32
	UIDValidity   uint32
	HighestModSeq uint64
	Size          int64 // sum of message sizes
}

// Account is one user's set of mailboxes.
type Account interface {
	User() User
	List(ctx context.Context) ([]MailboxInfo, error) // every mailbox, INBOX first
	Create(ctx context.Context, name string, specialUse string) error
	Delete(ctx context.Context, name string) error
	Rename(ctx context.Context, oldName, newName string) error // RFC 9051 6.3.6, including INBOX
	Subscribe(ctx context.Context, name string) error
	Unsubscribe(ctx context.Context, name string) error
	Status(ctx context.Context, name string) (Status, error)

	// Append stores a message in mailbox name, durable (fsynced) before it
	// returns. date zero means now. It returns the mailbox's UIDVALIDITY
	// and the new UID (RFC 4315 APPENDUID).
	Append(ctx context.Context, name string, flags []string, date time.Time, r io.Reader) (uidValidity, uid uint32, err error)

	// Select opens a mailbox for a session. readOnly is EXAMINE.
	Select(ctx context.Context, name string, readOnly bool) (Mailbox, error)
	Close() error
}

// MessageInfo is what a session knows of one message without reading it.
type MessageInfo struct {
	UID          uint32
	Flags        []string // system flags and keywords; \Recent included when this session owns it
	InternalDate time.Time
	Size         int64 // RFC822.SIZE, with CRLF line ends
	ModSeq       uint64
}

// Update is what changed in a mailbox since the session last looked,
// reported by Mailbox.Poll for untagged EXISTS/EXPUNGE/FETCH responses.
type Update struct {
	Expunged []uint32      // UIDs gone, in ascending order
	New      []MessageInfo // messages added, ascending UIDs
	Changed  []MessageInfo // flag changes made by others
}

// FlagOp says how Store combines flags (IMAP STORE FLAGS, +FLAGS, -FLAGS).
type FlagOp int

const (
	FlagsReplace FlagOp = iota
	FlagsAdd
	FlagsRemove
)

// Mailbox is one session's view of a selected mailbox. Its message list
// is a snapshot that moves forward only when the session calls Poll, so
// sequence numbers stay stable between commands as RFC 9051 7.5.1
// requires. A Mailbox is used by one goroutine at a time.
type Mailbox interface {
	Name() string
	ReadOnly() bool
	UIDValidity() uint32
	UIDNext() uint32
	HighestModSeq() uint64

	// Messages is the snapshot, in sequence order (ascending UID).
	Messages() []MessageInfo

	// Poll brings the snapshot up to date with changes made by other
	// sessions, deliveries and other programs (Dovecot on the same
	// Maildir). It returns what changed.
	Poll(ctx context.Context) (Update, error)

	// Changes returns a channel that receives a value when something may
	// have changed (in-process deliveries and sessions; other programs are
	// seen by calling Poll on a timer). Used by IDLE.
	Changes() <-chan struct{}

	// Open returns the message's content as stored (RFC 5322 bytes with
	// CRLF line ends) and its size.
	Open(ctx context.Context, uid uint32) (io.ReadSeekCloser, int64, error)

	// Store changes flags of the given UIDs and returns their new state.
	// unchangedSince > 0 applies CONDSTORE's UNCHANGEDSINCE (RFC 7162
	// 3.1.3): messages modified after it are left alone and returned in
	// failed.
	Store(ctx context.Context, uids []uint32, op FlagOp, flags []string, unchangedSince uint64) (updated []MessageInfo, failed []uint32, err error)

	// Expunge removes the given UIDs that carry \Deleted (all \Deleted
	// messages when uids is nil) and returns the removed UIDs.
	Expunge(ctx context.Context, uids []uint32) ([]uint32, error)

	// Copy copies messages into mailbox dest, durable before it returns,
	// and returns dest's UIDVALIDITY with source and new UIDs in matching
	// order (RFC 4315 COPYUID).
	Copy(ctx context.Context, uids []uint32, dest string) (uidValidity uint32, srcUIDs, destUIDs []uint32, err error)

	// Move is Copy followed by an expunge of the sources (RFC 6851).
	Move(ctx context.Context, uids []uint32, dest string) (uidValidity uint32, srcUIDs, destUIDs []uint32, err error)

	Close() error
}

// Deliverer is what delivery agents (virtual/local transports, LMTP,
// Sieve's fileinto) use: put one message into a mailbox, creating the
// mailbox when it is missing, durable before it returns.
type Deliverer interface {
	Deliver(ctx context.Context, u User, mailbox string, flags []string, r io.Reader) error
}

// KeywordLister is implemented by the Maildir store's Mailbox values: the
// keywords defined in the mailbox, for the FLAGS and PERMANENTFLAGS
// responses (RFC 9051 7.1, 7.3.5). A Maildir names at most 26 keywords;
// when all are taken, new ones are dropped (as Dovecot does), so
// PERMANENTFLAGS should then not offer `\*`.
type KeywordLister interface {
	Keywords() []string
}
