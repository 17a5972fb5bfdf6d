package memlock_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/lock"
	"github.com/shopstack/inventory/internal/lock/locktest"
	"github.com/shopstack/inventory/internal/lock/memlock"
)

func TestConformance(t *testing.T) {
	// Every replica of the in-process backend is the same process.
	shared := memlock.New(0)
	locktest.Run(t, locktest.Backend{New: func(*testing.T) lock.Locker { return shared }, Contended: true})
}

func TestTokensStartAboveBase(t *testing.T) {
	l := memlock.New(41)
	lease, err := l.Lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Unlock(context.Background())
	if got := lease.Token(); got != 42 {
		t.Fatalf("first token = %d, want 42", got)
	}
}

func TestKeysAreForgotten(t *testing.T) {
	l := memlock.New(0)
	ctx := context.Background()
	for i := range 1000 {
		lease, err := l.Lock(ctx, string(rune('a'+i%26))+string(rune(i)))
		if err != nil {
			t.Fatal(err)
		}
		_ = lease.Unlock(ctx)
	}
	if n := l.KeyCount(); n != 0 {
		t.Fatalf("%d keys kept after all leases were released, want 0", n)
	}
}

func TestElector(t *testing.T) {
	shared := memlock.New(0)
	locktest.RunElector(t, func(*testing.T) lock.Elector { return lock.LockElector{Locker: shared} }, 0, nil)
}
