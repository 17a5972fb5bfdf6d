package inventory

import (
	"time"
)

// ReservationStatus is where a reservation is in its life.
type ReservationStatus string

// Reservation statuses. Only an ACTIVE reservation holds stock.
const (
	ReservationActive    ReservationStatus = "ACTIVE"
	ReservationCommitted ReservationStatus = "COMMITTED"
	ReservationReleased  ReservationStatus = "RELEASED"
	ReservationExpired   ReservationStatus = "EXPIRED"
)

// Reservation holds stock for an order, at one or more levels, until it is
// committed (a sale), released, or expires.
type Reservation struct {
	ID     int64
	Status ReservationStatus
	Items  []ReservationItem
	// ExpiresAt is when an ACTIVE reservation stops holding its stock.
	ExpiresAt      time.Time
	Reference      string
	Actor          string
	IdempotencyKey string
	RequestHash    string
	// Version counts the reservation's changes.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ReservationItem is the stock a reservation holds at one level.
type ReservationItem struct {
	ProductID  int64
	LocationID int64
	Quantity   int64
	// Active is true while the item holds stock (it counts in its level's
	// reserved).
	Active bool
}

// Key is the level the item holds stock at.
func (it ReservationItem) Key() LevelKey {
	return LevelKey{ProductID: it.ProductID, LocationID: it.LocationID}
}

// StatusAt is the reservation's status at now: an ACTIVE reservation past
// its expiry is EXPIRED, whether or not its stock was released yet.
func (r Reservation) StatusAt(now time.Time) ReservationStatus {
	if r.Status == ReservationActive && !now.Before(r.ExpiresAt) {
		return ReservationExpired
	}
	return r.Status
}

// ReservedItem is an active reservation item as a level's transaction
// sees it.
type ReservedItem struct {
	ReservationID int64
	Quantity      int64
}

// StockSet is what one stock transaction reads and changes: its levels,
// and the reservations it loaded or creates.
type StockSet struct {
	// Levels holds a StockTx per LevelWork, in order.
	Levels []*StockTx
	// Now is the transaction's clock reading: expiry is judged against it.
	Now time.Time
	// Reservations are the reservations the transaction loaded (locked),
	// with their items.
	Reservations map[int64]*Reservation
	// NewIDs are reservation IDs allocated for this transaction.
	NewIDs []int64

	created  []*Reservation
	extended map[int64]time.Time
}

// Create adds a new reservation, whose ID must be one of NewIDs; its
// items' RESERVE movements are applied to the levels separately.
func (s *StockSet) Create(r *Reservation) { s.created = append(s.created, r) }

// Extend moves an active reservation's expiry.
func (s *StockSet) Extend(id int64, until time.Time) {
	if s.extended == nil {
		s.extended = map[int64]time.Time{}
	}
	s.extended[id] = until
}

// Created returns the reservations added with Create.
func (s *StockSet) Created() []*Reservation { return s.created }

// Extended returns the new expiry times set with Extend.
func (s *StockSet) Extended() map[int64]time.Time { return s.extended }

// ReservationFilter selects reservations.
type ReservationFilter struct {
	// Status keeps only reservations with this status at the time of the
	// query (empty: any). An ACTIVE reservation past its expiry counts as
	// EXPIRED.
	Status ReservationStatus
}

// ReservationPage is a page of reservations.
type ReservationPage struct {
	Reservations []Reservation
	HasNext      bool
}
