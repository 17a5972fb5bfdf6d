package inventory

import (
	"context"
)

// LevelAudit sets a level's stored values beside what its history says.
type LevelAudit struct {
	Key LevelKey
	// Stock is the stored on-hand quantity; LedgerStock the sum of the
	// level's ledger deltas.
	Stock, LedgerStock int64
	// Reserved is the stored reserved quantity; HeldReserved the sum of
	// the level's active reservation items (expired ones not yet released
	// included, as in Reserved).
	Reserved, HeldReserved int64
}

// Drifted reports whether the level's stored values disagree with its
// history.
func (a LevelAudit) Drifted() bool {
	return a.Stock != a.LedgerStock || a.Reserved != a.HeldReserved
}

// ReconcileReport is the outcome of a reconcile.
type ReconcileReport struct {
	// Levels is how many levels were checked.
	Levels int
	// Drifts are the levels that disagree with their history, by product
	// and location.
	Drifts []LevelAudit
}

// MaxReconcileIDs bounds the product and location filters of a reconcile.
const MaxReconcileIDs = 1000

// Reconcile recomputes each level's stock from the ledger and its reserved
// units from the active reservations, and reports every level whose stored
// values disagree. productIDs and locationIDs narrow the levels checked;
// empty checks them all. Each level is read in one statement, so a
// healthy system reports no drift even while it is being written.
func (s *Service) Reconcile(ctx context.Context, productIDs, locationIDs []int64) (_ ReconcileReport, err error) {
	ctx, span := s.startSpan(ctx, "inventory.Reconcile")
	defer func() { endSpan(span, err) }()
	if len(productIDs) > MaxReconcileIDs || len(locationIDs) > MaxReconcileIDs {
		return ReconcileReport{}, invalid("productIds", "at most %d productIds and %d locationIds", MaxReconcileIDs, MaxReconcileIDs)
	}
	audits, err := s.audit.AuditLevels(ctx, productIDs, locationIDs)
	if err != nil {
		return ReconcileReport{}, err
	}
	report := ReconcileReport{Levels: len(audits)}
	for _, a := range audits {
		if a.Drifted() {
			report.Drifts = append(report.Drifts, a)
		}
	}
	return report, nil
}

// RepairResult is what RepairDrift found and did.
type RepairResult struct {
	// Before is the level's audit before the repair.
	Before LevelAudit
	// Movement is the CORRECTION row written; nil if the level had no
	// drift, and nothing changed.
	Movement *Movement
	Level    Level
}

// RepairDrift makes a drifted level agree with its history, as a request
// of the write pipeline on the level: one CORRECTION ledger row whose delta
// accounts for the stock the ledger did not explain (the stored stock
// stays: it is what sales were judged against; a count corrects it), and
// whose reserved delta brings the reserved units back to what the active
// reservations hold. The audit is read in the request's transaction, under
// the level's lock, so it is what the correction corrects. (Drift is what
// no movement changes: a request applied before it in the same
// transaction moves the stored values and their history alike.)
func (s *Service) RepairDrift(ctx context.Context, key LevelKey, reason string) (_ RepairResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.RepairDrift", attrProduct.Int64(key.ProductID), attrLocation.Int64(key.LocationID))
	defer func() { endSpan(span, err) }()
	if reason == "" {
		return RepairResult{}, invalid("reason", "a repair needs a reason")
	}
	key, err = checkStockRequest(key.ProductID, key.LocationID, reason, "", "")
	if err != nil {
		return RepairResult{}, err
	}
	var before LevelAudit
	r := s.runLevels(ctx, stockOp{typ: MovementCorrection, key: key, levels: &levelsOp{keys: []LevelKey{key}, audit: true,
		apply: func(lt levelsTx) (bool, error) {
			tx, fence := lt.levels[0], lt.fences[0]
			if tx.Level.Version == 0 {
				return false, Errorf(CodeNotFound, "product %d has no stock at location %d", key.ProductID, key.LocationID)
			}
			before = *tx.Audit
			if !before.Drifted() {
				return false, nil
			}
			// Seen from the ledger, the level holds LedgerStock; the
			// correction takes it to the stored stock.
			gap := before.Stock - before.LedgerStock
			tx.Level.Stock -= gap
			tx.Product.Stock -= gap
			m := s.newMovement(ctx, MovementCorrection, gap, reason, "", "", "")
			m.ReservedDelta, m.Fence = before.HeldReserved-before.Reserved, fence
			if err := tx.Apply(&m); err != nil {
				return false, Errorf(CodeConflict, "cannot repair product %d at location %d: its active reservations hold %d units but only %d are on hand; count the stock first",
					key.ProductID, key.LocationID, before.HeldReserved, before.Stock)
			}
			return false, nil
		}}})
	if r.err != nil {
		return RepairResult{}, r.err
	}
	res := RepairResult{Before: before, Level: r.res.Level}
	if m := r.res.Movement; m.Type == MovementCorrection {
		res.Movement = &m
	}
	return res, nil
}
