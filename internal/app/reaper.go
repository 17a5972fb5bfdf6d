package app

import (
	"context"
	"sync"
	"time"

	"github.com/shopstack/inventory/internal/duty"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
)

// reaperDuty is the name of the duty elected among replicas.
const reaperDuty = "reservation-reaper"

// reapBatch bounds the levels one reaper round touches.
const reapBatch = 500

// reaper releases expired reservations that no write has released yet. It
// runs on one replica at a time: the one the elector elects. It touches
// each level holding expired items through the ordinary stock path, whose
// transaction releases them (EXPIRE ledger rows), so it needs no code of
// its own for locking, fencing or committing.
type reaper struct {
	s        *Service
	elector  lock.Elector
	interval time.Duration

	duty   duty.Duty
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *reaper) start(ctx context.Context) {
	r.duty = duty.Duty{Name: reaperDuty, Elector: r.elector, Lead: r.lead,
		Title: "reaper", Doing: "expiring reservations", Retry: r.interval, Log: r.s.log}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go func() {
		defer close(r.done)
		r.duty.Run(ctx)
	}()
}

func (r *reaper) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

// lead reaps every interval while this replica leads; its context ends
// when the leadership does.
func (r *reaper) lead(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		if n, err := r.reapOnce(ctx); err != nil && ctx.Err() == nil {
			r.s.log.Warn("reaper: round failed", "err", err)
		} else if n > 0 {
			r.s.log.Info("reaper: released expired reservations", "levels", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reapOnce touches the levels holding expired items and returns how many.
func (r *reaper) reapOnce(ctx context.Context) (int, error) {
	keys, err := r.s.resv.DueLevels(ctx, r.s.now(), reapBatch)
	if err != nil || len(keys) == 0 {
		return 0, err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(keys))
	for i, k := range keys {
		wg.Go(func() { _, errs[i] = r.s.applyStock(ctx, inventory.StockOp{Type: inventory.MovementExpire, Key: k}) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return len(keys), err
		}
	}
	return len(keys), nil
}

// Leading reports whether this replica currently runs the reaper.
func (s *Service) Leading() bool { return s.reaper.duty.Leading() }
