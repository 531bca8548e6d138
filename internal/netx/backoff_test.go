package netx

import (
	"context"
	"testing"
	"time"
)

func TestAcceptBackoff(t *testing.T) {
	var b AcceptBackoff
	for _, want := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond} {
		if !b.Wait(context.Background()) || b.Delay() != want {
			t.Fatalf("delay %v, want %v", b.Delay(), want)
		}
	}
	b.d = 800 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b.Wait(ctx) {
		t.Error("Wait ignored a cancelled context")
	}
	if b.Delay() != time.Second {
		t.Errorf("delay %v, want the 1 s cap", b.Delay())
	}
	b.Reset()
	if b.Delay() != 0 {
		t.Error("Reset kept the delay")
	}
}
