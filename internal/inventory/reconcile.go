package inventory

import (
	"context"
	"errors"
	"slices"
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
	audits, err := s.store.AuditLevels(ctx, productIDs, locationIDs)
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

// RepairDrift makes a drifted level agree with its history, under its
// lock: one CORRECTION ledger row whose delta accounts for the stock the
// ledger did not explain (the stored stock stays: it is what sales were
// judged against; a count corrects it), and whose reserved delta brings the
// reserved units back to what the active reservations hold.
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
	lease, err := s.lock(ctx, key)
	if err != nil {
		return RepairResult{}, err
	}
	defer s.unlock(ctx, key, lease)
	fence := Fence{Epoch: s.epoch, Token: lease.Token()}
	for attempt := 1; ; attempt++ {
		res, err := s.repairTx(ctx, key, reason, fence, lease.Done())
		if errors.Is(err, ErrVersionConflict) && attempt < maxTxAttempts {
			continue
		}
		return res, err
	}
}

// repairTx audits the level, then writes its correction if it drifted.
// Writers hold the level's lock, so the audit stays true until the write,
// whose compare-and-set on the level checks it.
func (s *Service) repairTx(ctx context.Context, key LevelKey, reason string, fence Fence, lost <-chan struct{}) (RepairResult, error) {
	audits, err := s.store.AuditLevels(ctx, []int64{key.ProductID}, []int64{key.LocationID})
	if err != nil {
		return RepairResult{}, err
	}
	i := slices.IndexFunc(audits, func(a LevelAudit) bool { return a.Key == key })
	if i < 0 {
		return RepairResult{}, Errorf(CodeNotFound, "product %d has no stock at location %d", key.ProductID, key.LocationID)
	}
	res := RepairResult{Before: audits[i]}
	a := res.Before
	var txs []*StockTx
	now := s.now()
	err = s.store.UpdateStocks(ctx, []LevelWork{{Key: key, Fence: fence}}, StockOptions{Now: now}, StockCallbacks{
		Apply: func(set *StockSet) error {
			txs = set.Levels
			tx := set.Levels[0]
			switch {
			case tx.Err != nil:
				return tx.Err
			case fence.Before(tx.Level.Fence):
				return staleLease(fence, tx.Level.Fence)
			case tx.Level.Stock != a.Stock || tx.Level.Reserved != a.Reserved:
				return ErrVersionConflict // changed since the audit: audit again
			}
			res.Level = tx.Level
			if !a.Drifted() {
				return nil
			}
			// Seen from the ledger, the level holds LedgerStock; the
			// correction takes it to the stored stock.
			gap := a.Stock - a.LedgerStock
			tx.Level.Stock -= gap
			tx.Product.Stock -= gap
			m := Movement{Type: MovementCorrection, Delta: gap, ReservedDelta: a.HeldReserved - a.Reserved, Reason: reason,
				Actor: ActorFrom(ctx), Fence: fence, TraceID: s.traceID(ctx), CreatedAt: now}
			if err := tx.Apply(&m); err != nil {
				return Errorf(CodeConflict, "cannot repair product %d at location %d: its active reservations hold %d units but only %d are on hand; count the stock first",
					key.ProductID, key.LocationID, a.HeldReserved, a.Stock)
			}
			return nil
		},
		BeforeCommit: func() error {
			if closed(lost) {
				return errLeaseLost(nil)
			}
			return nil
		},
	})
	if err != nil {
		return RepairResult{}, err
	}
	if ms := txs[0].Movements(); len(ms) > 0 {
		res.Movement, res.Level = &ms[0], txs[0].Level
		s.committed(1, txs)
	}
	return res, nil
}
