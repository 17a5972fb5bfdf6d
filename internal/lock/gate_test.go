package lock_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shopstack/inventory/internal/lock"
)

func TestGate(t *testing.T) {
	var g lock.Gate
	ctx := context.Background()
	leave, err := g.Enter(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := g.Enter(waitCtx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enter on a held key = %v, want DeadlineExceeded", err)
	}
	other, err := g.Enter(ctx, "other")
	if err != nil {
		t.Fatalf("a held key blocked another: %v", err)
	}
	other()
	leave()
	leave() // idempotent: must not free a later holder
	again, err := g.Enter(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	leave()
	waitCtx2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := g.Enter(waitCtx2, "k"); err == nil {
		t.Fatal("a repeated leave freed the key under its next holder")
	}
	again()
	if n := g.Len(); n != 0 {
		t.Fatalf("%d keys kept after every holder left, want 0", n)
	}
}

func TestGateTryEnter(t *testing.T) {
	var g lock.Gate
	leave, ok := g.TryEnter("k")
	if !ok {
		t.Fatal("TryEnter of a free key failed")
	}
	if _, ok := g.TryEnter("k"); ok {
		t.Fatal("TryEnter of a held key succeeded")
	}
	if _, ok := g.TryEnter("other"); !ok {
		t.Fatal("TryEnter of another key failed")
	}
	waitCtx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := g.Enter(waitCtx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Enter of a key held through TryEnter = %v", err)
	}
	leave()
	leave()
	again, err := g.Enter(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	again()
	if n := g.Len(); n != 1 { // "other" is still held
		t.Fatalf("Len = %d, want 1", n)
	}
}
