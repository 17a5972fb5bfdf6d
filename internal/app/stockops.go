package app

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
)

// maxTxAttempts bounds the retries of a stock transaction that lost a race
// it can recover from (a version conflict or a concurrent duplicate key).
const maxTxAttempts = 3

// StockIn receives stock at a location.
func (s *Service) StockIn(ctx context.Context, in inventory.StockChange) (inventory.StockResult, error) {
	return s.change(ctx, inventory.MovementIn, in)
}

// StockOut removes stock from a location. It fails with INSUFFICIENT_STOCK
// unless the location has at least the quantity available.
func (s *Service) StockOut(ctx context.Context, in inventory.StockChange) (inventory.StockResult, error) {
	return s.change(ctx, inventory.MovementOut, in)
}

// ExpectStock records units on their way to a location from a supplier:
// they count as incoming there until a move from INCOMING receives them.
func (s *Service) ExpectStock(ctx context.Context, in inventory.StockChange) (inventory.StockResult, error) {
	return s.change(ctx, inventory.MovementExpect, in)
}

// MoveStock moves units between two states of a level. It fails with
// INSUFFICIENT_STOCK unless the source state has the units (available
// units exclude reserved ones).
func (s *Service) MoveStock(ctx context.Context, in inventory.StockMove) (inventory.StockResult, error) {
	key, err := in.Check()
	if err != nil {
		return inventory.StockResult{}, err
	}
	hash := in.Fingerprint(key)
	return s.applyStock(ctx, inventory.StockOp{
		Type:           inventory.MovementMove,
		Key:            key,
		IdempotencyKey: in.IdempotencyKey,
		Hash:           hash,
		Movement: func(tx *inventory.StockTx) (inventory.Movement, error) {
			return in.Movement(tx, s.newMovement(ctx, inventory.MovementMove, 0, in.Reason, in.Reference, in.IdempotencyKey, hash))
		},
	})
}

func (s *Service) change(ctx context.Context, typ inventory.MovementType, in inventory.StockChange) (inventory.StockResult, error) {
	key, err := inventory.CheckStockRequest(in.ProductID, in.LocationID, in.Reason, in.Reference, in.IdempotencyKey)
	if err != nil {
		return inventory.StockResult{}, err
	}
	if in.Quantity < 1 || in.Quantity > inventory.MaxQuantity {
		return inventory.StockResult{}, inventory.Invalid("quantity", "quantity must be between 1 and %d", inventory.MaxQuantity)
	}
	hash := in.Fingerprint(typ, key)
	if comps, ok := s.bundles.get(key.ProductID); ok && typ == inventory.MovementOut {
		return s.sellBundle(ctx, in, key, hash, comps)
	}
	t := in.Transition(typ)
	res, err := s.applyStock(ctx, inventory.StockOp{
		Type:           typ,
		Key:            key,
		IdempotencyKey: in.IdempotencyKey,
		Hash:           hash,
		Movement: func(tx *inventory.StockTx) (inventory.Movement, error) {
			m := s.newMovement(ctx, typ, 0, in.Reason, in.Reference, in.IdempotencyKey, hash)
			t.On(&m)
			return m, nil
		},
	})
	if typ == inventory.MovementOut {
		if learned, lerr := s.learnedBundle(ctx, err); lerr != nil || learned {
			if lerr != nil {
				return inventory.StockResult{}, lerr
			}
			comps, _ := s.bundles.get(key.ProductID)
			return s.sellBundle(ctx, in, key, hash, comps)
		}
	}
	return res, err
}

// AdjustStock sets the on-hand quantity at a location, for example after a
// count. The ledger row records the difference.
func (s *Service) AdjustStock(ctx context.Context, in inventory.StockAdjustment) (inventory.StockResult, error) {
	key, err := inventory.CheckStockRequest(in.ProductID, in.LocationID, in.Reason, in.Reference, in.IdempotencyKey)
	if err != nil {
		return inventory.StockResult{}, err
	}
	if in.Quantity < 0 || in.Quantity > inventory.MaxStock {
		return inventory.StockResult{}, inventory.Invalid("quantity", "quantity must be between 0 and %d", inventory.MaxStock)
	}
	if c := in.ChangeFromQuantity; c != nil && (*c < 0 || *c > inventory.MaxStock) {
		return inventory.StockResult{}, inventory.Invalid("changeFromQuantity", "changeFromQuantity must be between 0 and %d", inventory.MaxStock)
	}
	hash := in.Fingerprint(key)
	return s.applyStock(ctx, inventory.StockOp{
		Type:           inventory.MovementAdjust,
		Key:            key,
		IdempotencyKey: in.IdempotencyKey,
		Hash:           hash,
		Movement: func(tx *inventory.StockTx) (inventory.Movement, error) {
			if c := in.ChangeFromQuantity; c != nil && *c != tx.Level.Stock {
				return inventory.Movement{}, inventory.Errorf(inventory.CodeConflict, "stock at the location is %d, not the expected %d", tx.Level.Stock, *c)
			}
			if err := tx.CheckOnHand(in.Quantity); err != nil {
				return inventory.Movement{}, err
			}
			return s.newMovement(ctx, inventory.MovementAdjust, in.Quantity-tx.Level.Stock, in.Reason, in.Reference, in.IdempotencyKey, hash), nil
		},
	})
}

// newMovement returns a movement stamped with who, when and under which trace.
func (s *Service) newMovement(ctx context.Context, typ inventory.MovementType, delta int64, reason, reference, key, hash string) inventory.Movement {
	return inventory.Movement{
		Type:           typ,
		Delta:          delta,
		Reason:         reason,
		Reference:      reference,
		Actor:          inventory.ActorFrom(ctx),
		IdempotencyKey: key,
		RequestHash:    hash,
		TraceID:        s.traceID(ctx),
		CreatedAt:      s.now(),
	}
}

// lock acquires the lease of key, waiting up to the lock timeout.
func (s *Service) lock(ctx context.Context, key inventory.LevelKey) (lock.Lease, error) {
	lctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	if err := s.stale.advance(lctx, key.LockName()); err != nil {
		s.log.Warn("advance the lock's fencing tokens", "key", key.LockName(), "err", err)
	}
	lease, err := s.locker.Lock(lctx, key.LockName())
	if err != nil {
		return nil, lockError(ctx, err)
	}
	return lease, nil
}

// tryLock takes the leases of the free levels of keys, each granted or
// refused on its own (lock.Locker.TryLock); the errors are the locker's.
func (s *Service) tryLock(ctx context.Context, keys []inventory.LevelKey) []lock.Grant {
	lctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.LockName()
		if err := s.stale.advance(lctx, names[i]); err != nil {
			s.log.Warn("advance the lock's fencing tokens", "key", names[i], "err", err)
		}
	}
	return s.locker.TryLock(lctx, names)
}

// lockLevels takes the leases of keys, all or none (lock.LockAll), and
// returns each level's lease.
func (s *Service) lockLevels(ctx context.Context, keys []inventory.LevelKey) (lock.Leases, map[inventory.LevelKey]lock.Lease, error) {
	names := make([]string, len(keys))
	byName := make(map[string]inventory.LevelKey, len(keys))
	for i, k := range keys {
		names[i] = k.LockName()
		byName[names[i]] = k
	}
	lctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	for _, name := range names {
		if err := s.stale.advance(lctx, name); err != nil {
			s.log.Warn("advance the lock's fencing tokens", "key", name, "err", err)
		}
	}
	leases, err := lock.LockAll(lctx, s.locker, names)
	if err != nil {
		return nil, nil, lockError(ctx, err)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	levels := make(map[inventory.LevelKey]lock.Lease, len(keys))
	for i, name := range names {
		levels[byName[name]] = leases[i]
	}
	return leases, levels, nil
}

// lockError is the client's error for a lock that could not be taken for a
// request whose context is ctx.
// An *Error from the locker (a circuit breaker refusing the call) is passed
// on as it is.
func lockError(ctx context.Context, err error) *inventory.Error {
	if e, ok := errors.AsType[*inventory.Error](err); ok {
		return e
	}
	switch {
	case ctx.Err() != nil:
		return &inventory.Error{Code: inventory.CodeUnavailable, Message: "request cancelled while waiting for the stock lock", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, lock.ErrNotAcquired):
		return &inventory.Error{Code: inventory.CodeUnavailable, Message: "timed out waiting for the stock lock; retry", Err: err}
	default:
		return &inventory.Error{Code: inventory.CodeUnavailable, Message: "lock service unavailable; retry", Err: err}
	}
}

// unlockTimeout bounds the release of leases.
const unlockTimeout = 5 * time.Second

func errLeaseLost(cause error) *inventory.Error {
	return &inventory.Error{Code: inventory.CodeUnavailable, Message: "the stock lock lapsed before the change was committed; nothing changed; retry", Err: cause}
}

func (s *Service) unlock(ctx context.Context, key inventory.LevelKey, lease lock.Lease) {
	// Release even if the request was cancelled: the lease must not wait
	// for its TTL.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	if err := lease.Unlock(uctx); err != nil {
		s.log.Warn("unlock failed", "key", key.LockName(), "err", err)
	}
}

// unlockAll releases leases, even if the request was cancelled.
func (s *Service) unlockAll(ctx context.Context, leases lock.Leases) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	if err := leases.Unlock(uctx); err != nil {
		s.log.Warn("unlock failed", "err", err)
	}
}
