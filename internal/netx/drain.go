package netx

import (
	"context"
	"sync"
)

// Drain is the end of a server's Shutdown: it waits for the connections
// counted in wg to finish; when ctx ends first it calls force (which
// closes or interrupts what is left), waits for them again and returns
// ctx's error.
func Drain(ctx context.Context, wg *sync.WaitGroup, force func()) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	force()
	<-done
	return ctx.Err()
}
