package inventory

import (
	"context"
	"sync"
	"time"

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

	mu      sync.Mutex
	leading bool
	cancel  context.CancelFunc
	done    chan struct{}
}

func (r *reaper) start(ctx context.Context) {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go r.run(ctx)
}

func (r *reaper) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
}

func (r *reaper) run(ctx context.Context) {
	defer close(r.done)
	for ctx.Err() == nil {
		lease, err := r.elector.Campaign(ctx, reaperDuty)
		if err != nil {
			if ctx.Err() == nil {
				r.s.log.Warn("reaper: campaign failed; will retry", "err", err)
				sleep(ctx, r.interval)
			}
			continue
		}
		r.lead(ctx, lease)
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if err := lease.Unlock(uctx); err != nil {
			r.s.log.Warn("reaper: resign failed", "err", err)
		}
		cancel()
	}
}

// lead reaps every interval while this replica leads.
func (r *reaper) lead(ctx context.Context, lease lock.Lease) {
	r.setLeading(true)
	defer r.setLeading(false)
	r.s.log.Info("reaper: leading: expiring reservations on this replica")
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
		case <-lease.Done():
			r.s.log.Warn("reaper: leadership lost")
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
		wg.Go(func() { _, errs[i] = r.s.applyStock(ctx, stockOp{typ: MovementExpire, key: k}) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return len(keys), err
		}
	}
	return len(keys), nil
}

func (r *reaper) setLeading(v bool) {
	r.mu.Lock()
	r.leading = v
	r.mu.Unlock()
}

// Leading reports whether this replica currently runs the reaper.
func (s *Service) Leading() bool {
	s.reaper.mu.Lock()
	defer s.reaper.mu.Unlock()
	return s.reaper.leading
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
