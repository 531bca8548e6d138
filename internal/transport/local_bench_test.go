package transport

import (
	"strings"
	"testing"

	"postcote/internal/queue"
)

// BenchmarkLocalDelivery measures one local(8) delivery of a 4 KiB
// message through an alias, into an mbox spool file (fcntl and dot-lock,
// fsync) and into a Maildir home_mailbox (the mail store's fsyncs).
func BenchmarkLocalDelivery(b *testing.B) {
	msg := "Subject: bench\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n", 64)
	for _, tc := range []struct{ name, homeMailbox string }{{"mbox", ""}, {"maildir", "Maildir/"}} {
		b.Run(tc.name, func(b *testing.B) {
			e := newLocalEnv(b, map[string][]string{"root": {"demo"}})
			e.local.HomeMailbox = tc.homeMailbox
			e.local.MailboxSizeLimit = 0
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				if r := e.deliver(b, "root@localhost", msg); r.Status != queue.StatusSent {
					b.Fatalf("%+v", r)
				}
			}
		})
	}
}
