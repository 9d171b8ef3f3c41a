package media

import (
	"context"
	"errors"
	"testing"
)

// Slots bound the jobs at once and the queue behind them; a waiter gives up with its context.
func TestAcquireBoundsJobsAndQueue(t *testing.T) {
	tc := &Transcoder{MaxConcurrent: 1, MaxQueued: -1}
	release, err := tc.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("second job with no queue: %v, want ErrBusy", err)
	}
	release()
	again, err := tc.Acquire(context.Background())
	if err != nil {
		t.Fatalf("the released slot is not free again: %v", err)
	}
	again()

	tq := &Transcoder{MaxConcurrent: 1, MaxQueued: 1}
	release, err = tq.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tq.Acquire(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("queued job whose context ends: %v, want context.Canceled", err)
	}
	if n := tq.queued.Load(); n != 0 {
		t.Fatalf("%d jobs still counted in the queue after giving up", n)
	}
}
