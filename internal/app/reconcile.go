package app

import (
	"context"
	"slices"

	"github.com/shopstack/inventory/internal/inventory"
)

// Reconcile recomputes each level's stock and states from the ledger and
// its reserved units from the active reservations, and each transfer's
// units in transit from its ledger rows, and reports every level and
// transfer item whose stored values disagree (or whose rows do not
// conserve units). productIDs and locationIDs narrow the levels checked;
// empty checks them all. Each level is read in one statement, so a
// healthy system reports no drift even while it is being written.
func (s *Service) Reconcile(ctx context.Context, productIDs, locationIDs []int64) (_ inventory.ReconcileReport, err error) {
	ctx, span := s.startSpan(ctx, "inventory.Reconcile")
	defer func() { endSpan(span, err) }()
	if len(productIDs) > inventory.MaxReconcileIDs || len(locationIDs) > inventory.MaxReconcileIDs {
		return inventory.ReconcileReport{}, inventory.Invalid("productIds", "at most %d productIds and %d locationIds", inventory.MaxReconcileIDs, inventory.MaxReconcileIDs)
	}
	audits, err := s.audit.AuditLevels(ctx, productIDs, locationIDs)
	if err != nil {
		return inventory.ReconcileReport{}, err
	}
	report := inventory.ReconcileReport{Levels: len(audits)}
	for _, a := range audits {
		if a.Drifted() {
			report.Drifts = append(report.Drifts, a)
		}
	}
	transfers, err := s.audit.AuditTransfers(ctx, nil)
	if err != nil {
		return inventory.ReconcileReport{}, err
	}
	for _, a := range transfers {
		if len(productIDs) > 0 && !slices.Contains(productIDs, a.ProductID) {
			continue
		}
		report.TransferItems++
		if a.Drifted() {
			report.TransferDrifts = append(report.TransferDrifts, a)
		}
	}
	return report, nil
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
func (s *Service) RepairDrift(ctx context.Context, key inventory.LevelKey, reason string) (_ inventory.RepairResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.RepairDrift", attrProduct.Int64(key.ProductID), attrLocation.Int64(key.LocationID))
	defer func() { endSpan(span, err) }()
	if reason == "" {
		return inventory.RepairResult{}, inventory.Invalid("reason", "a repair needs a reason")
	}
	key, err = inventory.CheckStockRequest(key.ProductID, key.LocationID, reason, "", "")
	if err != nil {
		return inventory.RepairResult{}, err
	}
	var before inventory.LevelAudit
	r := s.runLevels(ctx, inventory.StockOp{Type: inventory.MovementCorrection, Key: key, Levels: &inventory.LevelsOp{Keys: []inventory.LevelKey{key}, Audit: true,
		Apply: func(lt inventory.LevelsTx) (bool, error) {
			tx, fence := lt.Levels[0], lt.Fences[0]
			if tx.Level.Version == 0 {
				return false, inventory.Errorf(inventory.CodeNotFound, "product %d has no stock at location %d", key.ProductID, key.LocationID)
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
			// So do its states: the correction's changes of them take
			// the ledger's sums to the stored states.
			states := before.States.Minus(before.LedgerStates)
			tx.Level.States = tx.Level.States.Minus(states)
			tx.Product.States = tx.Product.States.Minus(states)
			m := s.newMovement(ctx, inventory.MovementCorrection, gap, reason, "", "", "")
			m.ReservedDelta, m.StatesDelta, m.Fence = before.HeldReserved-before.Reserved, states, fence
			if err := tx.Apply(&m); err != nil {
				return false, inventory.Errorf(inventory.CodeConflict, "cannot repair product %d at location %d: its active reservations hold %d units but only %d are on hand; count the stock first",
					key.ProductID, key.LocationID, before.HeldReserved, before.Stock)
			}
			return false, nil
		}}})
	if r.Err != nil {
		return inventory.RepairResult{}, r.Err
	}
	res := inventory.RepairResult{Before: before, Level: r.Result.Level}
	if m := r.Result.Movement; m.Type == inventory.MovementCorrection {
		res.Movement = &m
	}
	return res, nil
}
