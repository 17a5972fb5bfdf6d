package inventory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
)

// MaxBulkItems bounds the items of one bulk adjustment: its applied items
// are ledger rows of one transaction.
const MaxBulkItems = MaxBatchLimit

// BulkErrorPolicy says what a bulk adjustment does with items that fail.
type BulkErrorPolicy string

// Bulk error policies.
const (
	// BulkRejectEverything applies all items or none: one failing item
	// rejects the call, and nothing changes.
	BulkRejectEverything BulkErrorPolicy = "REJECT_EVERYTHING"
	// BulkRejectFailedRows applies the good items; each failing item is
	// reported FAILED with its error.
	BulkRejectFailedRows BulkErrorPolicy = "REJECT_FAILED_ROWS"
	// BulkIgnoreFailed applies the good items; failing items are SKIPPED,
	// their errors given for the record, and the call counts as complete.
	BulkIgnoreFailed BulkErrorPolicy = "IGNORE_FAILED"
)

// BulkItem is one line of a bulk adjustment: a change of one level by
// Delta, or to the absolute Quantity (exactly one of the two). The product
// is named by ProductID or by SKU (exactly one of the two).
type BulkItem struct {
	ProductID  int64
	SKU        string
	LocationID int64 // 0: the default location
	Delta      *int64
	Quantity   *int64
	// ChangeFromQuantity, if set, makes the item fail with CONFLICT unless
	// the level's on-hand stock equals it.
	ChangeFromQuantity *int64
}

// BulkAdjustment is a bulk adjustment request.
type BulkAdjustment struct {
	Items  []BulkItem
	Policy BulkErrorPolicy // empty: BulkRejectEverything
	Reason string
	// Reference is recorded on every ledger row, e.g. the stock-take's ID.
	Reference string
	// IdempotencyKey makes the call safe to retry: items already applied
	// under it are replayed, never applied twice.
	IdempotencyKey string
}

// BulkRowStatus is what became of one item.
type BulkRowStatus string

// Bulk row statuses.
const (
	BulkApplied    BulkRowStatus = "APPLIED"
	BulkReplayed   BulkRowStatus = "REPLAYED"    // applied by an earlier call with the same key
	BulkFailed     BulkRowStatus = "FAILED"      // see Err
	BulkNotApplied BulkRowStatus = "NOT_APPLIED" // good, but another item rejected the call
	BulkSkipped    BulkRowStatus = "SKIPPED"     // failed under BulkIgnoreFailed; see Err
)

// BulkRow is the outcome of one item, by its index in the request.
type BulkRow struct {
	Index  int
	Status BulkRowStatus
	// Result is the level and movement of an applied or replayed item.
	Result StockResult
	Err    *Error
}

// BulkResult is the outcome of a bulk adjustment.
type BulkResult struct {
	// Applied counts the items applied (or replayed); Failed the others
	// that failed (FAILED or SKIPPED).
	Applied, Failed int
	// Rejected is set when BulkRejectEverything rejected the call: nothing
	// changed.
	Rejected bool
	Rows     []BulkRow
}

// maxBulkKeyLength leaves room for the item suffix of the idempotency key
// ("/999").
const maxBulkKeyLength = MaxKeyLength - 4

// errNotApplied marks a good item of a rejected call.
var errNotApplied = &Error{Code: CodeConflict, Message: "not applied: another item rejected the call"}

// BulkAdjustStock adjusts many levels in one call, as after a stock-take.
// The levels are locked in sorted order and the items applied in one
// transaction, one ADJUST ledger row each, as in.Policy says. A failure of
// the call as a whole (the lock or the database) is returned as an error,
// and nothing was applied.
func (s *Service) BulkAdjustStock(ctx context.Context, in BulkAdjustment) (_ BulkResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.BulkAdjustStock", attrItems.Int(len(in.Items)))
	defer func() { endSpan(span, err) }()
	if err := in.check(); err != nil {
		return BulkResult{}, err
	}
	rows := make([]BulkRow, len(in.Items))
	ops := make([]stockOp, 0, len(in.Items))
	opRow := make([]int, 0, len(in.Items))
	callHash := requestHash("bulkAdjustStock", string(in.Policy), in.Reason, in.Reference, itoa(int64(len(in.Items))))
	seen := make(map[LevelKey]int, len(in.Items))
	for i, it := range in.Items {
		rows[i].Index = i
		op, err := s.bulkOp(ctx, i, it, in, callHash)
		if err == nil {
			if j, dup := seen[op.key]; dup {
				err = invalid(fmt.Sprintf("items[%d]", i), "the level of product %d at location %d is also items[%d]", op.key.ProductID, op.key.LocationID, j)
			}
			seen[op.key] = i
		}
		if err != nil {
			rows[i].Err = asError(err)
			continue
		}
		ops, opRow = append(ops, op), append(opRow, i)
	}
	invalidRows := len(in.Items) - len(ops)
	var results []opResult
	if len(ops) > 0 && !(invalidRows > 0 && in.Policy == BulkRejectEverything) {
		results, err = s.bulkApply(ctx, ops, in.Policy == BulkRejectEverything)
		if err != nil {
			return BulkResult{}, err
		}
	}
	return in.result(rows, results, opRow), nil
}

// check validates what applies to the call as a whole.
func (in *BulkAdjustment) check() error {
	if len(in.Items) == 0 || len(in.Items) > MaxBulkItems {
		return invalid("items", "a bulk adjustment has 1 to %d items", MaxBulkItems)
	}
	switch in.Policy {
	case "":
		in.Policy = BulkRejectEverything
	case BulkRejectEverything, BulkRejectFailedRows, BulkIgnoreFailed:
	default:
		return invalid("errorPolicy", "unknown error policy %q", in.Policy)
	}
	if err := validateText("reason", in.Reason, MaxTextLength); err != nil {
		return err
	}
	if err := validateText("reference", in.Reference, MaxRefLength); err != nil {
		return err
	}
	if len(in.IdempotencyKey) > maxBulkKeyLength {
		return invalid("idempotencyKey", "a bulk adjustment's idempotencyKey must be at most %d bytes", maxBulkKeyLength)
	}
	return validateIdempotencyKey(in.IdempotencyKey)
}

// bulkOp validates item i and returns its stock operation. The item's
// idempotency key is the call's with the item's index appended, so a retry
// replays exactly the items the first call applied.
func (s *Service) bulkOp(ctx context.Context, i int, it BulkItem, in BulkAdjustment, callHash string) (stockOp, error) {
	field := func(name string) string { return fmt.Sprintf("items[%d].%s", i, name) }
	if (it.ProductID == 0) == (it.SKU == "") {
		return stockOp{}, invalid(field("productId"), "items[%d] needs exactly one of productId and sku", i)
	}
	if it.SKU != "" {
		ps, err := s.catalog.ProductStockBySKU(ctx, NormalizeSKU(it.SKU))
		if ErrorCode(err) == CodeNotFound {
			return stockOp{}, Errorf(CodeNotFound, "no product has SKU %q", it.SKU)
		}
		if err != nil {
			return stockOp{}, err
		}
		it.ProductID = ps.Product.ID
	}
	key, err := checkStockRequest(it.ProductID, it.LocationID, "", "", "")
	if err != nil {
		return stockOp{}, err
	}
	switch {
	case (it.Delta == nil) == (it.Quantity == nil):
		return stockOp{}, invalid(field("delta"), "items[%d] needs exactly one of delta and quantity", i)
	case it.Delta != nil && (*it.Delta == 0 || *it.Delta < -MaxStock || *it.Delta > MaxStock):
		return stockOp{}, invalid(field("delta"), "delta must be between %d and %d, and not 0", -MaxStock, MaxStock)
	case it.Quantity != nil && (*it.Quantity < 0 || *it.Quantity > MaxStock):
		return stockOp{}, invalid(field("quantity"), "quantity must be between 0 and %d", MaxStock)
	case it.ChangeFromQuantity != nil && (*it.ChangeFromQuantity < 0 || *it.ChangeFromQuantity > MaxStock):
		return stockOp{}, invalid(field("changeFromQuantity"), "changeFromQuantity must be between 0 and %d", MaxStock)
	}
	op := stockOp{typ: MovementAdjust, key: key,
		hash: requestHash(callHash, itoa(int64(i)), itoa(key.ProductID), itoa(key.LocationID), optItoa(it.Delta), optItoa(it.Quantity), optItoa(it.ChangeFromQuantity))}
	if in.IdempotencyKey != "" {
		op.idempotencyKey = in.IdempotencyKey + "/" + strconv.Itoa(i)
	}
	op.movement = func(tx *StockTx) (Movement, error) {
		if c := it.ChangeFromQuantity; c != nil && *c != tx.Level.Stock {
			return Movement{}, Errorf(CodeConflict, "stock of product %d at location %d is %d, not the expected %d", key.ProductID, key.LocationID, tx.Level.Stock, *c)
		}
		delta := int64(0)
		if it.Delta != nil {
			delta = *it.Delta
		} else {
			delta = *it.Quantity - tx.Level.Stock
		}
		if after := tx.Level.Stock + delta; after < tx.Level.Reserved {
			return Movement{}, Errorf(CodeInsufficientStock, "stock of product %d at location %d cannot be %d: %d on hand, %d reserved",
				key.ProductID, key.LocationID, after, tx.Level.Stock, tx.Level.Reserved)
		}
		return s.newMovement(ctx, MovementAdjust, delta, in.Reason, in.Reference, op.idempotencyKey, op.hash), nil
	}
	return op, nil
}

// bulkApply applies ops, one per level, as one request over their levels
// (locked in the one order every request over several levels takes them
// in), in one transaction of the pipeline: each op is judged as a request
// of its own, with its own key and outcome. With allOrNothing a failing op
// rejects them all: nothing changes, and the others' outcome is
// errNotApplied.
func (s *Service) bulkApply(ctx context.Context, ops []stockOp, allOrNothing bool) ([]opResult, error) {
	keys := make([]LevelKey, len(ops))
	for i, op := range ops {
		keys[i] = op.key
	}
	lo := &levelsOp{keys: keys, parts: ops, atomic: allOrNothing}
	r := s.runLevels(ctx, stockOp{typ: MovementAdjust, key: keys[0], levels: lo})
	switch {
	case errors.Is(r.err, errPartsRejected):
		results := make([]opResult, len(ops))
		for i, st := range lo.steps {
			results[i].err = cmp.Or(st.err, error(errNotApplied))
		}
		return results, nil
	case r.err != nil:
		return nil, r.err
	}
	return finishSteps(lo.steps), nil
}

// result assembles the call's result: rows holds the invalid items'
// errors; results are the outcomes of the ops of the items opRow names.
func (in BulkAdjustment) result(rows []BulkRow, results []opResult, opRow []int) BulkResult {
	for k, r := range results {
		row := &rows[opRow[k]]
		if r.err != nil {
			row.Err = asError(r.err)
			continue
		}
		row.Result, row.Status = r.res, BulkApplied
		if r.res.Replayed {
			row.Status = BulkReplayed
		}
	}
	var out BulkResult
	for i := range rows {
		row := &rows[i]
		switch {
		case row.Err == errNotApplied:
			row.Status, row.Err = BulkNotApplied, nil
		case row.Err != nil && in.Policy == BulkIgnoreFailed:
			row.Status = BulkSkipped
			out.Failed++
		case row.Err != nil:
			row.Status = BulkFailed
			out.Failed++
		case row.Status == "": // a good item of a call rejected before its transaction
			row.Status = BulkNotApplied
		default:
			out.Applied++
		}
	}
	out.Rejected = in.Policy == BulkRejectEverything && out.Failed > 0
	out.Rows = rows
	return out
}

// asError returns err as an *Error; any other error is an internal one.
func asError(err error) *Error {
	if e, ok := errors.AsType[*Error](err); ok {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}
