// Package qctl is the control socket of the running server's queue: what
// postqueue and postsuper talk to while `postcote serve` owns the spool
// (Postfix's showq and the postsuper/flush requests to qmgr). The spool is
// a single-writer log, so no other process may open it for writing while
// the server runs; these tools ask the server instead.
//
// # Socket
//
// $queue_directory/public/qmgr, a unix stream socket of mode 0666. Anyone
// may LIST (Postfix's showq is public) and FLUSH (authorized_flush_users
// defaults to anyone); HOLD, RELEASE, DELETE and REQUEUE are for root and the
// user the server runs as only, checked by the peer's credentials
// (SO_PEERCRED), never by anything the client says.
//
// # Protocol
//
// One request a line, one reply a line, as many as the client likes on a
// connection; lines are at most 1024 bytes, the connection is closed after
// 30 seconds without a request.
//
//	LIST                        OK <JSON array of queue.Summary>
//	FLUSH                       OK         every deferred message due now (postqueue -f)
//	FLUSH ID                    OK         that message due now (postqueue -i); unknown IDs too
//	HOLD ID|ALL [queue…]        OK [ID…]   the messages placed on hold
//	RELEASE ID|ALL [queue…]     OK [ID…]   the messages released
//	DELETE ID|ALL [queue…]      OK [ID…]   the messages removed
//	REQUEUE ID|ALL [queue…]     OK [ID…]   the messages requeued (postsuper -r), by old ID
//	anything wrong              ERR <reason>
//
// The optional queue names (hold, incoming, active, deferred, as
// postsuper takes them) restrict the request to messages in those states;
// postcote has no separate incoming queue, so incoming means active. An
// ID that is not queued changes nothing and is no error, as with
// postsuper.
//
// Both FLUSH forms also forget which destinations the scheduler holds
// dead, as Postfix's flush does. The server requeues through its current
// cleanup stage, so a requeued message's addresses are rewritten again
// (canonical maps, virtual aliases) and its recipients routed anew.
//
// Apply is the same operation on a queue opened in this process, for
// postsuper when the server is not running; REQUEUE there queues the
// message again without address rewriting (queue.Queue.Requeue), and
// routing happens anew when the server delivers it.
package qctl
