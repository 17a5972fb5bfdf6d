package inventory

import "slices"

// EventFilter selects the ledger events a subscription receives.
type EventFilter struct {
	// ProductIDs keeps only these products; empty means all.
	ProductIDs []int64
	// AlertsOnly keeps only movements that raised a low-stock alert.
	AlertsOnly bool
	// Reservations keeps only reservation movements, of ReservationIDs
	// if not empty.
	Reservations   bool
	ReservationIDs []int64
	// AfterSeq, if set, first replays the ledger rows after this sequence.
	AfterSeq *int64
}

// Match reports whether m is an event the filter selects.
func (f EventFilter) Match(m Movement) bool {
	if f.AlertsOnly && !m.LowStockAlert {
		return false
	}
	if f.Reservations && (m.ReservationID == 0 || len(f.ReservationIDs) > 0 && !slices.Contains(f.ReservationIDs, m.ReservationID)) {
		return false
	}
	return len(f.ProductIDs) == 0 || slices.Contains(f.ProductIDs, m.ProductID)
}

// MaxSubscribedProducts bounds EventFilter.ProductIDs.
const MaxSubscribedProducts = 100
