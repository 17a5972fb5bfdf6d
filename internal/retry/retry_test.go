package retry_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/shopstack/inventory/internal/retry"
)

func TestDoubling(t *testing.T) {
	b := retry.Doubling(50*time.Millisecond, time.Second)
	want := []time.Duration{50, 100, 200, 400, 800, 1000, 1000}
	for i, w := range want {
		if got := b.NextBackOff(); got != w*time.Millisecond {
			t.Fatalf("wait %d: %v, want %v", i+1, got, w*time.Millisecond)
		}
	}
	b.Reset()
	if got := b.NextBackOff(); got != 50*time.Millisecond {
		t.Fatalf("after Reset: %v, want 50ms", got)
	}
}

func TestForever(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		var calls int
		var waits []time.Duration
		err := retry.Forever(context.Background(), retry.Doubling(time.Millisecond, 4*time.Millisecond), func() error {
			if calls++; calls < 5 {
				return errors.New("not yet")
			}
			return nil
		}, func(_ error, d time.Duration) { waits = append(waits, d) })
		if err != nil || calls != 5 {
			t.Fatalf("err %v after %d calls, want nil after 5", err, calls)
		}
		want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond}
		if !slices.Equal(waits, want) {
			t.Fatalf("notified waits %v, want %v", waits, want)
		}
	})
	t.Run("ErrPermanent", func(t *testing.T) {
		stop := errors.New("refused")
		calls := 0
		err := retry.Forever(context.Background(), retry.Doubling(time.Millisecond, time.Millisecond), func() error {
			calls++
			return backoff.Permanent(stop)
		}, nil)
		if !errors.Is(err, stop) || calls != 1 {
			t.Fatalf("err %v after %d calls, want %v after 1", err, calls, stop)
		}
	})
	// backoff.Retry alone gives up when the next wait would end after 15
	// minutes; Forever waits until its context ends.
	t.Run("NoElapsedLimit", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		failed := errors.New("failed")
		err := retry.Forever(ctx, backoff.NewConstantBackOff(20*time.Minute), func() error { return failed }, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the context's deadline", err)
		}
	})
}

func TestSleep(t *testing.T) {
	if !retry.Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep with a live context reported false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if retry.Sleep(ctx, time.Minute) {
		t.Fatal("Sleep with an ended context reported true")
	}
	if time.Since(start) > time.Second {
		t.Fatalf("Sleep with an ended context took %v", time.Since(start))
	}
}
