// Package mailstore keeps mailboxes on disk in Maildir, laid out exactly
// as Dovecot 2.3 does, so that Dovecot and postcote can take turns on the
// same mail. api.go is the contract with the protocol servers; NewStore
// returns its implementation for mail_location = maildir:PATH[:options].
//
// # Location
//
// ParseLocation reads Dovecot's mail_location: "~" is the user's home;
// the % variables (%u %n %d %h) must already be expanded by the caller
// (the userdb does it, as Dovecot's auth process does); a location still
// holding one is refused. Options: LAYOUT=fs
// (default Maildir++), INBOX=, INDEX= (a directory, or MEMORY), CONTROL=,
// DIRNAME= (fs layout only). sdbox:, mdbox: and mbox: are refused with a
// clear error.
//
// # On disk
//
//	Maildir/                      the root; INBOX lives here (Maildir++)
//	  cur/ new/ tmp/              INBOX's messages
//	  dovecot-uidlist             UID <-> file name map (version 3)
//	  dovecot-keywords            "<n> <keyword>": keyword n is letter 'a'+n
//	  dovecot-uidvalidity(.XXXX)  the account's UIDVALIDITY counter
//	  subscriptions               "V\t2", "", then names with TAB as separator
//	  postcote-specialuse         "<\Attr> <name>": special-use we were told
//	  postcote-index              postcote's MODSEQ/date cache (see index.go)
//	  .Sent/ .Archive.2024/       folders; API "Archive/2024"; each has
//	                              cur/ new/ tmp/, maildirfolder, its own
//	                              dovecot-uidlist, dovecot-keywords, index
//
// With LAYOUT=fs folders are directories "Archive/2024/" instead, and
// with DIRNAME=x the Maildir of each folder is "Archive/2024/x/" (INBOX
// in "INBOX/x/"). CONTROL= and INDEX= move the control files and the
// index under their own trees, where INBOX's are in ".INBOX/" (Maildir++)
// or "INBOX/" (fs), as Dovecot puts them.
//
// A message file is named <secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>,W=<vsize>
// and, in cur/, ":2,<flags>" with the flag letters in ASCII order (D
// draft, F flagged, P passed, R answered, S seen, T deleted, then a–z for
// keywords). Files are stored with LF line ends as Dovecot does
// (mail_save_crlf = no); S= is the size on disk, W= the size with CRLF,
// which is RFC822.SIZE. Open returns the CRLF form. The internal date is
// the file's mtime.
//
// # Durability
//
// A new message is written to tmp/, fsynced, renamed into new/ (or cur/
// when it has flags, as APPEND with flags does in Dovecot) and the
// directory is fsynced; then its UID is appended to dovecot-uidlist and
// fsynced, under Dovecot's dotlock protocol (dovecot-uidlist.lock, made
// atomically with "PID:HOST" in it; a lock whose process is gone is taken
// over at once, any other after two minutes; a rewrite goes to
// dovecot-uidlist.tmp and is renamed over while the lock is held). Only
// then does Append or Deliver return. Saves to one mailbox in
// flight at the same time share the directory fsync and the uidlist write
// (group commit, save.go). A crash before the rename leaves a file in
// tmp/, removed after 36 hours as Dovecot does; never half a message in
// new/ or cur/.
//
// # UIDs, \Recent and MODSEQ
//
// UIDs come from dovecot-uidlist; files without a record get the next
// UIDs in the order of their time-stamped names, under the lock, and the
// header's next UID never goes down, so UIDs are never reused. A message
// in new/ is \Recent for the first read-write session that sees it, which
// moves it to cur/. MODSEQs live only in postcote-index, a cache; what
// happens when it is lost is explained in index.go.
//
// # Names
//
// API names use "/"; ASCII names are taken as modified UTF-7 as IMAP
// sends them and stored unchanged (Dovecot does the same); a name with
// non-ASCII UTF-8 (Sieve fileinto, IMAP4rev2) is stored in modified
// UTF-7. Empty levels, "." and "..", control characters, and "." inside a
// level with Maildir++ are ErrBadName: no name leaves the mail root.
// Symbolic links are never followed to a folder or a message file, so a
// user with a shell cannot make the server read other files. RENAME
// leaves the subscriptions as they are and DELETE keeps them, as Dovecot
// does.
//
// # Sharing
//
// One MaildirStore serves the process and keeps one shared state per
// open mailbox (mbox). Sessions (Mailbox values) hold snapshots that
// move only when they Poll; a change by one session or delivery signals
// the others' Changes channel. Changes by other programs are found when
// Poll sees new mtimes on new/, cur/ or dovecot-uidlist; a mailbox whose
// directories have not changed is not rescanned. If another program
// recreated dovecot-uidlist (new UIDVALIDITY), Poll returns
// ErrUIDValidityChanged and the session must end. A few mailboxes no
// session holds stay in memory (Options.IdleMailboxes) so that STATUS
// and re-SELECT are cheap.
package mailstore
