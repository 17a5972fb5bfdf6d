package inventory

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

// Check validates what applies to the call as a whole.
func (in *BulkAdjustment) Check() error {
	if len(in.Items) == 0 || len(in.Items) > MaxBulkItems {
		return Invalid("items", "a bulk adjustment has 1 to %d items", MaxBulkItems)
	}
	switch in.Policy {
	case "":
		in.Policy = BulkRejectEverything
	case BulkRejectEverything, BulkRejectFailedRows, BulkIgnoreFailed:
	default:
		return Invalid("errorPolicy", "unknown error policy %q", in.Policy)
	}
	if err := ValidateText("reason", in.Reason, MaxTextLength); err != nil {
		return err
	}
	if err := ValidateText("reference", in.Reference, MaxRefLength); err != nil {
		return err
	}
	if len(in.IdempotencyKey) > maxBulkKeyLength {
		return Invalid("idempotencyKey", "a bulk adjustment's idempotencyKey must be at most %d bytes", maxBulkKeyLength)
	}
	return ValidateIdempotencyKey(in.IdempotencyKey)
}
