// Package queue is postcote's durable mail queue: Postfix's incoming,
// active, deferred and hold queues, its qmgr scheduler and its bounce
// daemon, in one package.
//
// # On disk
//
//	DIR/lock                    flock(2): one process per spool
//	DIR/spool/NNNNNNNNNNNN.seg  append-only segment log, numbered from 1
//	DIR/spool/spare             the next segment, being filled with zeros
//	DIR/large/ID                content of a message over LargeThreshold (1 MiB)
//	DIR/corrupt/                damaged segments, moved aside for the administrator
//
// A segment is a sequence of records: magic "PCQ1", type (1 byte), payload
// length (4 bytes), CRC-32C of type, length and payload (4 bytes), payload.
// Types: message (envelope, recipient states, hold/warned flags, next retry,
// then the content inline unless large), update (per-recipient results and
// the next retry time), hold, release, remove (done: delivered, bounced or
// deleted). A message's state is its last message record plus the records
// after it; so every message is in exactly one state (pending, deferred,
// hold, done) at every point of the log. The index in memory holds
// envelopes and content offsets, never bodies.
//
// # Durability and speed
//
// One committer goroutine owns the current segment. Callers hand it
// records through a channel; it takes everything waiting, writes it with
// one pwrite, calls fdatasync once, applies the records to the index, and
// only then answers every waiter: N concurrent Enqueue calls cost one
// fsync, not N. Appending creates no directory entry; a segment's entry is
// fsynced once, when it starts (every 64 MiB). A large message's file and
// its directory entry are fsynced before its record is written. Segments
// are preallocated (spool/spare is filled with zeros and fsynced in the
// background, then renamed into place), so a commit overwrites existing
// blocks and fdatasync has no file size to journal: 2.5 times the fsync
// rate on ext4. So once Enqueue returns, the message survives a crash at
// any instant.
//
// Recovery: zeros after the last record are unused preallocated space. A
// bad record with nothing valid after it in the newest segment is a torn
// write that was never acknowledged (its fsync had not returned), and is
// cut off. A bad record anywhere else is damage: Open logs it, salvages
// every good record, copies the live messages into a new segment and
// moves the damaged one to corrupt/. Delivery results are committed the
// same way before a message counts as done, so a crash can repeat a
// delivery but never lose a message.
//
// Segments are removed from the oldest on once no live message record is
// in them (only a prefix of the log may go: a later segment may hold
// records about messages of an earlier one). When a new segment starts,
// old segments less than half live have their live messages copied
// forward, state included; so long-deferred mail does not pin old
// segments, and the spool stays within about twice its live data.
//
// # Scheduling
//
// Run hands due messages to the transports; Enqueue wakes it, so new
// mail starts at once; deferred mail waits in a heap ordered by retry
// time, behind a timer. With a Router (the server's transport router)
// it schedules as Postfix's qmgr does (dest.go, scheduler_jobs.go): a due
// message (at most ActiveLimit at once) has its pending recipients routed
// to destinations (transport and next hop; the recipient itself when the
// transport's recipient limit is 1) and split into deliveries of at most
// the recipient limit. Each destination runs its deliveries within its
// concurrency window (starting at the initial concurrency, +1/window per
// delivery that reached it, -1/window per one that did not, up to its
// concurrency limit), one at a time with a pause after each under a rate
// delay, and within its transport's process limit, the transport's
// waiting destinations taking turns: a slow destination holds up only its
// own mail. A destination whose failures add up to the failed cohort
// limit is dead for MinimalBackoff: its other recipients are deferred
// without a try ("delivery temporarily suspended: …"); Flush and FlushID
// revive dead destinations. The deliveries of one message are recorded
// together, in one commit, once the last is done: one notice per attempt,
// and a crash repeats deliveries, never loses one. A plain Agent gets all
// of a message's recipients in one call, at most Concurrency at once. The retry
// interval is Postfix's: the message's age clamped to [MinimalBackoff,
// MaximalBackoff], which doubles from the minimum. QueueRunDelay bounds
// how long the scheduler sleeps without looking. After an attempt that
// leaves recipients deferred past MaximalQueueLifetime (BounceQueueLifetime
// for mail from <>), they are returned to the sender.
//
// # Notifications
//
// Bounces and delay warnings are RFC 3464 reports (multipart/report with a
// human part in Postfix's wording, message/delivery-status, and the
// original message or, for RET=HDRS, delay warnings and originals over
// BounceSizeLimit, its header as text/rfc822-headers). A notice is
// queued from <> in the same commit that records the failure. NOTIFY
// (RFC 3461) is honoured: NEVER, or a list without FAILURE/DELAY, means no
// notice; mail from <> never gets one: a notice that cannot be delivered
// is dropped with a log line, as Postfix does with its default
// notify_classes, or with "2bounce" (or "bounce") goes in full to the
// postmaster from the double-bounce address (a double bounce); a
// postmaster notice that fails is dropped ("undeliverable postmaster
// notification discarded"), so notices never loop. notify_classes
// "bounce" and "delay" copy bounces and delay warnings (headers only) to
// the postmaster, "resource" and "software" report mail deferred for
// this system's own problems (notify.go). NOTIFY=SUCCESS gets
// a "Successful Mail Delivery Report" (Action: delivered, or relayed when
// the next hop does not do DSN; none when the agent passed NOTIFY on).
// Not done yet: message/global-delivery-status (RFC 6533) for SMTPUTF8
// mail.
//
// # API
//
// Open/Close own the spool (one process at a time, by flock); NewID and
// Enqueue are for smtpd and sendmail; Run drives an Agent; List, Hold,
// Release, Delete, Requeue (each also for "ALL"), Flush and FlushID
// serve postqueue and postsuper in the server process; Snapshot reads a spool another process
// has open (postqueue -p while the server runs); WriteMailq prints
// Postfix's mailq layout.
//
// Log lines follow Postfix: "cleanup: ID: message-id=<…>", "qmgr: ID:
// from=<…>, size=N, nrcpt=N (queue active)", "ID: to=<…>, relay=…,
// delay=…, delays=a/b/c/d, dsn=…, status=sent (…)", "qmgr: ID: removed".
package queue
