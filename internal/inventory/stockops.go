package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shopstack/inventory/internal/lock"
)

// maxTxAttempts bounds the retries of a stock transaction that lost a race
// it can recover from (a version conflict or a concurrent duplicate key).
const maxTxAttempts = 3

// stockOp is one stock mutation, ready to run in a StockTx.
type stockOp struct {
	typ            MovementType
	key            LevelKey
	idempotencyKey string
	hash           string
	// movement builds the movement from the current state, or rejects it.
	movement func(tx *StockTx) (Movement, error)
	// levels, instead of movement, is a request over one or more levels
	// (key is its first): a reservation's.
	levels *levelsOp
}

// levelsOp is a request that changes all its levels or none: a
// reservation's transition. Requests on one level are combined with the
// level's other requests; requests on several run in a job of their own.
type levelsOp struct {
	// keys are its levels, without repeats; keys[0] is the op's key.
	keys []LevelKey
	// parts, instead of apply, make it a request made of requests (a bulk
	// adjustment's items): each part, an op on one of keys, is judged as a
	// request of its own, with its own key and outcome (steps, as of the
	// latest run of the transaction). With atomic, a part that fails
	// rejects them all (errPartsRejected), and nothing changes.
	parts  []stockOp
	atomic bool
	steps  []batchStep
	// audit has the transaction load its levels' audits (StockTx.Audit).
	audit bool
	// load is the reservation the transaction loads and locks for it (zero:
	// none); create says it needs a new reservation ID.
	load   int64
	create bool
	// apply makes the request's changes in lt, or refuses it. replayed says
	// the request found its work done already and changed nothing.
	apply func(lt levelsTx) (replayed bool, err error)
}

// levelsTx is what a levelsOp sees of its transaction.
type levelsTx struct {
	set *StockSet
	// levels and fences are the op's levels and the leases they are
	// written under, in the op's keys order.
	levels []*StockTx
	fences []Fence
	// newID is the reservation ID allocated to an op that creates one.
	newID int64
}

// loads is the reservation op loads, or zero.
func (op stockOp) loads() int64 {
	if op.levels == nil {
		return 0
	}
	return op.levels.load
}

// level returns the StockTx of key and the fence it is written under.
func (lt levelsTx) level(key LevelKey) (*StockTx, Fence) {
	for i, tx := range lt.levels {
		if tx.Level.Key() == key {
			return tx, lt.fences[i]
		}
	}
	return nil, Fence{}
}

// StockIn receives stock at a location.
func (s *Service) StockIn(ctx context.Context, in StockChange) (StockResult, error) {
	return s.change(ctx, MovementIn, in)
}

// StockOut removes stock from a location. It fails with INSUFFICIENT_STOCK
// unless the location has at least the quantity available.
func (s *Service) StockOut(ctx context.Context, in StockChange) (StockResult, error) {
	return s.change(ctx, MovementOut, in)
}

func (s *Service) change(ctx context.Context, typ MovementType, in StockChange) (StockResult, error) {
	key, err := checkStockRequest(in.ProductID, in.LocationID, in.Reason, in.Reference, in.IdempotencyKey)
	if err != nil {
		return StockResult{}, err
	}
	if in.Quantity < 1 || in.Quantity > MaxQuantity {
		return StockResult{}, invalid("quantity", "quantity must be between 1 and %d", MaxQuantity)
	}
	hash := requestHash(string(typ), itoa(key.ProductID), itoa(key.LocationID), itoa(in.Quantity), in.Reason, in.Reference)
	delta := in.Quantity
	if typ == MovementOut {
		delta = -delta
	}
	return s.applyStock(ctx, stockOp{
		typ:            typ,
		key:            key,
		idempotencyKey: in.IdempotencyKey,
		hash:           hash,
		movement: func(tx *StockTx) (Movement, error) {
			return s.newMovement(ctx, typ, delta, in.Reason, in.Reference, in.IdempotencyKey, hash), nil
		},
	})
}

// AdjustStock sets the on-hand quantity at a location, for example after a
// count. The ledger row records the difference.
func (s *Service) AdjustStock(ctx context.Context, in StockAdjustment) (StockResult, error) {
	key, err := checkStockRequest(in.ProductID, in.LocationID, in.Reason, in.Reference, in.IdempotencyKey)
	if err != nil {
		return StockResult{}, err
	}
	if in.Quantity < 0 || in.Quantity > MaxStock {
		return StockResult{}, invalid("quantity", "quantity must be between 0 and %d", MaxStock)
	}
	if c := in.ChangeFromQuantity; c != nil && (*c < 0 || *c > MaxStock) {
		return StockResult{}, invalid("changeFromQuantity", "changeFromQuantity must be between 0 and %d", MaxStock)
	}
	hash := requestHash(string(MovementAdjust), itoa(key.ProductID), itoa(key.LocationID), itoa(in.Quantity),
		optItoa(in.ChangeFromQuantity), in.Reason, in.Reference)
	return s.applyStock(ctx, stockOp{
		typ:            MovementAdjust,
		key:            key,
		idempotencyKey: in.IdempotencyKey,
		hash:           hash,
		movement: func(tx *StockTx) (Movement, error) {
			if c := in.ChangeFromQuantity; c != nil && *c != tx.Level.Stock {
				return Movement{}, Errorf(CodeConflict, "stock at the location is %d, not the expected %d", tx.Level.Stock, *c)
			}
			if in.Quantity < tx.Level.Reserved {
				return Movement{}, Errorf(CodeInsufficientStock, "cannot set stock to %d: %d units are reserved", in.Quantity, tx.Level.Reserved)
			}
			return s.newMovement(ctx, MovementAdjust, in.Quantity-tx.Level.Stock, in.Reason, in.Reference, in.IdempotencyKey, hash), nil
		},
	})
}

func checkStockRequest(productID, locationID int64, reason, reference, key string) (LevelKey, error) {
	if productID <= 0 {
		return LevelKey{}, Errorf(CodeNotFound, "product %d not found", productID)
	}
	if locationID < 0 {
		return LevelKey{}, Errorf(CodeNotFound, "location %d not found", locationID)
	}
	if locationID == 0 {
		locationID = DefaultLocationID
	}
	if err := validateText("reason", reason, MaxTextLength); err != nil {
		return LevelKey{}, err
	}
	if err := validateText("reference", reference, MaxRefLength); err != nil {
		return LevelKey{}, err
	}
	if err := validateIdempotencyKey(key); err != nil {
		return LevelKey{}, err
	}
	return LevelKey{ProductID: productID, LocationID: locationID}, nil
}

// newMovement returns a movement stamped with who, when and under which trace.
func (s *Service) newMovement(ctx context.Context, typ MovementType, delta int64, reason, reference, key, hash string) Movement {
	return Movement{
		Type:           typ,
		Delta:          delta,
		Reason:         reason,
		Reference:      reference,
		Actor:          ActorFrom(ctx),
		IdempotencyKey: key,
		RequestHash:    hash,
		TraceID:        s.traceID(ctx),
		CreatedAt:      s.now(),
	}
}

// lock acquires the lease of key, waiting up to the lock timeout.
func (s *Service) lock(ctx context.Context, key LevelKey) (lock.Lease, error) {
	lctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	lease, err := s.locker.Lock(lctx, key.LockName())
	if err != nil {
		return nil, lockError(ctx, err)
	}
	return lease, nil
}

// lockLevels takes the leases of keys in the order of their lock names,
// the one order every holder of several leases takes them in, and returns
// each level's lease.
func (s *Service) lockLevels(ctx context.Context, keys []LevelKey) (lock.Leases, map[LevelKey]lock.Lease, error) {
	names := make([]string, len(keys))
	byName := make(map[string]LevelKey, len(keys))
	for i, k := range keys {
		names[i] = k.LockName()
		byName[names[i]] = k
	}
	lctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	leases, err := lock.LockAll(lctx, s.locker, names)
	if err != nil {
		return nil, nil, lockError(ctx, err)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	levels := make(map[LevelKey]lock.Lease, len(keys))
	for i, name := range names {
		levels[byName[name]] = leases[i]
	}
	return leases, levels, nil
}

// lockError is the client's error for a lock that could not be taken for a
// request whose context is ctx.
// An *Error from the locker (a circuit breaker refusing the call) is passed
// on as it is.
func lockError(ctx context.Context, err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	switch {
	case ctx.Err() != nil:
		return &Error{Code: CodeUnavailable, Message: "request cancelled while waiting for the stock lock", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, lock.ErrNotAcquired):
		return &Error{Code: CodeUnavailable, Message: "timed out waiting for the stock lock; retry", Err: err}
	default:
		return &Error{Code: CodeUnavailable, Message: "lock service unavailable; retry", Err: err}
	}
}

// unlockTimeout bounds the release of leases.
const unlockTimeout = 5 * time.Second

func errLeaseLost(cause error) *Error {
	return &Error{Code: CodeUnavailable, Message: "the stock lock lapsed before the change was committed; nothing changed; retry", Err: cause}
}

func staleLease(ours, newer Fence) *Error {
	return &Error{Code: CodeStaleLease,
		Message: "the stock lock was taken over by a newer holder before this change was written; nothing changed; retry",
		Err:     fmt.Errorf("fence %+v is older than the level's %+v", ours, newer)}
}

func (s *Service) unlock(ctx context.Context, key LevelKey, lease lock.Lease) {
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
