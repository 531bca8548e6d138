package netx

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestDrain(t *testing.T) {
	// Everything finishes in time: nil, force not called.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { time.Sleep(10 * time.Millisecond); wg.Done() }()
	if err := Drain(context.Background(), &wg, func() { t.Error("force called") }); err != nil {
		t.Fatalf("Drain: %v", err)
	}

	// A connection that only ends when forced: force runs, Drain waits
	// for it and returns ctx's error.
	stuck := make(chan struct{})
	wg.Add(1)
	go func() { <-stuck; wg.Done() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	forced := false
	err := Drain(ctx, &wg, func() { forced = true; close(stuck) })
	if !forced || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("forced %v, err %v", forced, err)
	}
}
