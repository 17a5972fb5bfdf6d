package inventory

import "fmt"

// StockOp is one stock request, ready to run in a stock transaction: a use
// case builds it, the write pipeline runs it, and the rules (stockrules.go)
// judge it there.
type StockOp struct {
	Type           MovementType
	Key            LevelKey
	IdempotencyKey string
	// Hash is the request's fingerprint: a retry with the same key must
	// have the same one.
	Hash string
	// Movement builds the movement from the current state, or rejects it.
	Movement func(tx *StockTx) (Movement, error)
	// Levels, instead of Movement, is a request over one or more levels
	// (Key is its first): a reservation's, a bulk adjustment's, a repair's.
	Levels *LevelsOp
	// Unlocked says the request needs no lease of its level: its product
	// is untracked, so nothing is refused for want of stock, and the
	// transaction's lock of the product row orders its writes. (If the
	// product became tracked meanwhile, the transaction judges it as
	// any other: the lease never decides an outcome.)
	Unlocked bool
}

// LevelsOp is a request that changes all its levels or none: a
// reservation's transition. Requests on one level are combined with the
// level's other requests; requests on several run in a job of their own.
type LevelsOp struct {
	// Keys are its levels, without repeats; Keys[0] is the op's key.
	Keys []LevelKey
	// Parts, instead of Apply, make it a request made of requests (a bulk
	// adjustment's items): each part, an op on one of Keys, is judged as a
	// request of its own, with its own key and outcome (Steps, as of the
	// latest run of the transaction). With Atomic, a part that fails
	// rejects them all (ErrPartsRejected), and nothing changes.
	Parts  []StockOp
	Atomic bool
	Steps  []Step
	// Audit has the transaction load its levels' audits (StockTx.Audit).
	Audit bool
	// Load is the reservation the transaction loads and locks for it (zero:
	// none); Create says it needs a new reservation ID.
	Load   int64
	Create bool
	// Transfer is the transfer the transaction loads and locks for it
	// (zero: none).
	Transfer int64
	// Apply makes the request's changes in lt, or refuses it. replayed says
	// the request found its work done already and changed nothing.
	Apply func(lt LevelsTx) (replayed bool, err error)
}

// LevelsTx is what a LevelsOp sees of its transaction.
type LevelsTx struct {
	Set *StockSet
	// Levels and Fences are the op's levels and the leases they are
	// written under, in the op's Keys order.
	Levels []*StockTx
	Fences []Fence
	// NewID is the reservation ID allocated to an op that creates one.
	NewID int64
}

// Serial is the document op loads, or zero: two requests on one
// reservation (its ID) or one transfer (minus its ID) never share a batch,
// so each sees the other's outcome.
func (op StockOp) Serial() int64 {
	switch {
	case op.Levels == nil:
		return 0
	case op.Levels.Transfer != 0:
		return -op.Levels.Transfer
	}
	return op.Levels.Load
}

// Level returns the StockTx of key and the fence it is written under.
func (lt LevelsTx) Level(key LevelKey) (*StockTx, Fence) {
	for i, tx := range lt.Levels {
		if tx.Level.Key() == key {
			return tx, lt.Fences[i]
		}
	}
	return nil, Fence{}
}

// CheckStockRequest validates what every stock request has, and returns its
// level (the default location if locationID is zero).
func CheckStockRequest(productID, locationID int64, reason, reference, key string) (LevelKey, error) {
	if productID <= 0 {
		return LevelKey{}, Errorf(CodeNotFound, "product %d not found", productID)
	}
	if locationID < 0 {
		return LevelKey{}, Errorf(CodeNotFound, "location %d not found", locationID)
	}
	if locationID == 0 {
		locationID = DefaultLocationID
	}
	if err := ValidateText("reason", reason, MaxTextLength); err != nil {
		return LevelKey{}, err
	}
	if err := ValidateText("reference", reference, MaxRefLength); err != nil {
		return LevelKey{}, err
	}
	if err := ValidateIdempotencyKey(key); err != nil {
		return LevelKey{}, err
	}
	return LevelKey{ProductID: productID, LocationID: locationID}, nil
}

func staleLease(ours, newer Fence) *Error {
	return &Error{Code: CodeStaleLease,
		Message: "the stock lock was taken over by a newer holder before this change was written; nothing changed; retry",
		Err:     fmt.Errorf("fence %+v is older than the level's %+v", ours, newer)}
}
