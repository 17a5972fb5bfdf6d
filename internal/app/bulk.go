package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/shopstack/inventory/internal/inventory"
)

// errNotApplied marks a good item of a rejected call.
var errNotApplied = &inventory.Error{Code: inventory.CodeConflict, Message: "not applied: another item rejected the call"}

// BulkAdjustStock adjusts many levels in one call, as after a stock-take.
// The levels are locked in sorted order and the items applied in one
// transaction, one ADJUST ledger row each, as in.Policy says. A failure of
// the call as a whole (the lock or the database) is returned as an error,
// and nothing was applied.
func (s *Service) BulkAdjustStock(ctx context.Context, in inventory.BulkAdjustment) (_ inventory.BulkResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.BulkAdjustStock", attrItems.Int(len(in.Items)))
	defer func() { endSpan(span, err) }()
	if err := in.Check(); err != nil {
		return inventory.BulkResult{}, err
	}
	rows := make([]inventory.BulkRow, len(in.Items))
	ops := make([]inventory.StockOp, 0, len(in.Items))
	opRow := make([]int, 0, len(in.Items))
	callHash := in.Fingerprint()
	seen := make(map[inventory.LevelKey]int, len(in.Items))
	for i, it := range in.Items {
		rows[i].Index = i
		op, err := s.bulkOp(ctx, i, it, in, callHash)
		if err == nil {
			if j, dup := seen[op.Key]; dup {
				err = inventory.Invalid(fmt.Sprintf("items[%d]", i), "the level of product %d at location %d is also items[%d]", op.Key.ProductID, op.Key.LocationID, j)
			}
			seen[op.Key] = i
		}
		if err != nil {
			rows[i].Err = asError(err)
			continue
		}
		ops, opRow = append(ops, op), append(opRow, i)
	}
	invalidRows := len(in.Items) - len(ops)
	var results []inventory.Outcome
	if len(ops) > 0 && !(invalidRows > 0 && in.Policy == inventory.BulkRejectEverything) {
		results, err = s.bulkApply(ctx, ops, in.Policy == inventory.BulkRejectEverything)
		if err != nil {
			return inventory.BulkResult{}, err
		}
	}
	return bulkResult(in, rows, results, opRow), nil
}

// bulkOp validates item i and returns its stock operation. The item's
// idempotency key is the call's with the item's index appended, so a retry
// replays exactly the items the first call applied.
func (s *Service) bulkOp(ctx context.Context, i int, it inventory.BulkItem, in inventory.BulkAdjustment, callHash string) (inventory.StockOp, error) {
	field := func(name string) string { return fmt.Sprintf("items[%d].%s", i, name) }
	if (it.ProductID == 0) == (it.SKU == "") {
		return inventory.StockOp{}, inventory.Invalid(field("productId"), "items[%d] needs exactly one of productId and sku", i)
	}
	if it.SKU != "" {
		ps, err := s.catalog.ProductStockBySKU(ctx, inventory.NormalizeSKU(it.SKU))
		if inventory.ErrorCode(err) == inventory.CodeNotFound {
			return inventory.StockOp{}, inventory.Errorf(inventory.CodeNotFound, "no product has SKU %q", it.SKU)
		}
		if err != nil {
			return inventory.StockOp{}, err
		}
		it.ProductID = ps.Product.ID
	}
	key, err := inventory.CheckStockRequest(it.ProductID, it.LocationID, "", "", "")
	if err != nil {
		return inventory.StockOp{}, err
	}
	switch {
	case (it.Delta == nil) == (it.Quantity == nil):
		return inventory.StockOp{}, inventory.Invalid(field("delta"), "items[%d] needs exactly one of delta and quantity", i)
	case it.Delta != nil && (*it.Delta == 0 || *it.Delta < -inventory.MaxStock || *it.Delta > inventory.MaxStock):
		return inventory.StockOp{}, inventory.Invalid(field("delta"), "delta must be between %d and %d, and not 0", -inventory.MaxStock, inventory.MaxStock)
	case it.Quantity != nil && (*it.Quantity < 0 || *it.Quantity > inventory.MaxStock):
		return inventory.StockOp{}, inventory.Invalid(field("quantity"), "quantity must be between 0 and %d", inventory.MaxStock)
	case it.ChangeFromQuantity != nil && (*it.ChangeFromQuantity < 0 || *it.ChangeFromQuantity > inventory.MaxStock):
		return inventory.StockOp{}, inventory.Invalid(field("changeFromQuantity"), "changeFromQuantity must be between 0 and %d", inventory.MaxStock)
	}
	op := inventory.StockOp{Type: inventory.MovementAdjust, Key: key,
		Hash: it.Fingerprint(callHash, i, key)}
	if in.IdempotencyKey != "" {
		op.IdempotencyKey = in.IdempotencyKey + "/" + strconv.Itoa(i)
	}
	op.Movement = func(tx *inventory.StockTx) (inventory.Movement, error) {
		if c := it.ChangeFromQuantity; c != nil && *c != tx.Level.Stock {
			return inventory.Movement{}, inventory.Errorf(inventory.CodeConflict, "stock of product %d at location %d is %d, not the expected %d", key.ProductID, key.LocationID, tx.Level.Stock, *c)
		}
		delta := int64(0)
		if it.Delta != nil {
			delta = *it.Delta
		} else {
			delta = *it.Quantity - tx.Level.Stock
		}
		if err := tx.CheckOnHand(tx.Level.Stock + delta); err != nil {
			return inventory.Movement{}, err
		}
		return s.newMovement(ctx, inventory.MovementAdjust, delta, in.Reason, in.Reference, op.IdempotencyKey, op.Hash), nil
	}
	return op, nil
}

// bulkApply applies ops, one per level, as one request over their levels
// (locked in the one order every request over several levels takes them
// in), in one transaction of the pipeline: each op is judged as a request
// of its own, with its own key and outcome. With allOrNothing a failing op
// rejects them all: nothing changes, and the others' outcome is
// errNotApplied.
func (s *Service) bulkApply(ctx context.Context, ops []inventory.StockOp, allOrNothing bool) ([]inventory.Outcome, error) {
	keys := make([]inventory.LevelKey, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	lo := &inventory.LevelsOp{Keys: keys, Parts: ops, Atomic: allOrNothing}
	r := s.runLevels(ctx, inventory.StockOp{Type: inventory.MovementAdjust, Key: keys[0], Levels: lo})
	switch {
	case errors.Is(r.Err, inventory.ErrPartsRejected):
		results := make([]inventory.Outcome, len(ops))
		for i, st := range lo.Steps {
			results[i].Err = cmp.Or(st.Err(), error(errNotApplied))
		}
		return results, nil
	case r.Err != nil:
		return nil, r.Err
	}
	return inventory.FinishSteps(lo.Steps), nil
}

// bulkResult assembles the call's result: rows holds the invalid items'
// errors; results are the outcomes of the ops of the items opRow names.
func bulkResult(in inventory.BulkAdjustment, rows []inventory.BulkRow, results []inventory.Outcome, opRow []int) inventory.BulkResult {
	for k, r := range results {
		row := &rows[opRow[k]]
		if r.Err != nil {
			row.Err = asError(r.Err)
			continue
		}
		row.Result, row.Status = r.Result, inventory.BulkApplied
		if r.Result.Replayed {
			row.Status = inventory.BulkReplayed
		}
	}
	var out inventory.BulkResult
	for i := range rows {
		row := &rows[i]
		switch {
		case row.Err == errNotApplied:
			row.Status, row.Err = inventory.BulkNotApplied, nil
		case row.Err != nil && in.Policy == inventory.BulkIgnoreFailed:
			row.Status = inventory.BulkSkipped
			out.Failed++
		case row.Err != nil:
			row.Status = inventory.BulkFailed
			out.Failed++
		case row.Status == "": // a good item of a call rejected before its transaction
			row.Status = inventory.BulkNotApplied
		default:
			out.Applied++
		}
	}
	out.Rejected = in.Policy == inventory.BulkRejectEverything && out.Failed > 0
	out.Rows = rows
	return out
}

// asError returns err as an *Error; any other error is an internal one.
func asError(err error) *inventory.Error {
	if e, ok := errors.AsType[*inventory.Error](err); ok {
		return e
	}
	return &inventory.Error{Code: inventory.CodeInternal, Message: "internal error", Err: err}
}
