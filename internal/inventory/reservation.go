package inventory

import (
	"cmp"
	"slices"
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

// Reservation limits.
const (
	MaxReservationItems      = 100
	DefaultReservationTTL    = 15 * time.Minute
	DefaultMaxReservationTTL = 24 * time.Hour
)

// NewReservation is the input of ReserveStock.
type NewReservation struct {
	Items []ReservationItemInput
	// TTL is how long the reservation holds its stock; zero means
	// DefaultReservationTTL.
	TTL            time.Duration
	Reference      string
	IdempotencyKey string
}

// ReservationItemInput is one item of NewReservation.
type ReservationItemInput struct {
	ProductID int64
	// LocationID is the location; zero means the default location.
	LocationID int64
	Quantity   int64
}

// ReservationResult is what reservation mutations return.
type ReservationResult struct {
	Reservation Reservation
	// Replayed is true when the reservation was already in the state the
	// request asks for (a retry); the request changed nothing.
	Replayed bool
}

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
	// BundleID is the bundle the item holds units for (zero: the product
	// itself). One level may hold items of a reservation for the product
	// and for bundles alike.
	BundleID int64
	// Active is true while the item holds stock (it counts in its level's
	// reserved).
	Active bool
}

// Key is the level the item holds stock at.
func (it ReservationItem) Key() LevelKey {
	return LevelKey{ProductID: it.ProductID, LocationID: it.LocationID}
}

// SortItems sorts items by level, then bundle: the order of a
// reservation's items.
func SortItems(items []ReservationItem) {
	slices.SortFunc(items, func(a, b ReservationItem) int {
		return cmp.Or(cmp.Compare(a.ProductID, b.ProductID), cmp.Compare(a.LocationID, b.LocationID), cmp.Compare(a.BundleID, b.BundleID))
	})
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
	BundleID      int64
}

// StockSet is what one stock transaction reads and changes: its levels,
// and the reservations it loaded or changes. The domain records here every
// change of a reservation (created, closed, extended); the store writes
// what is recorded, and infers nothing.
type StockSet struct {
	// Levels holds a StockTx per LevelWork, in order.
	Levels []*StockTx
	// Now is the transaction's clock reading: expiry is judged against it.
	Now time.Time
	// Reservations are the reservations the transaction loaded (locked),
	// with their items. They change as the transaction records changes, so
	// after the commit they are as the store wrote them.
	Reservations map[int64]*Reservation
	// NewIDs are reservation IDs allocated for this transaction.
	NewIDs []int64
	// Transfers are the transfers the transaction loaded (locked), with
	// their items; ChangeTransfer replaces one with its new state.
	Transfers map[int64]*Transfer

	created   []*Reservation
	closed    []ReservationClosure
	extended  []ReservationExtension
	transfers []*Transfer
}

// ReservationClosure is a reservation's items that stop holding stock in a
// transaction (a COMMIT, RELEASE or EXPIRE movement each), and the status
// the reservation moves to if it is still ACTIVE: the items of an expired
// reservation at other levels may expire in later transactions, which find
// it EXPIRED already.
type ReservationClosure struct {
	ReservationID int64
	Status        ReservationStatus
	Levels        []LevelKey
	At            time.Time
}

// ReservationExtension moves an active reservation's expiry, and its active
// items'.
type ReservationExtension struct {
	ReservationID int64
	ExpiresAt, At time.Time
}

// The recording methods are called once the movements of the change are
// applied: a request that fails after recording could not take the record
// back.

// Create adds a new reservation, whose ID must be one of NewIDs; its
// items' RESERVE movements are applied to the levels separately.
func (s *StockSet) Create(r *Reservation) { s.created = append(s.created, r) }

// Close records that reservation id's items at levels stop holding stock,
// and that the reservation becomes status if it is ACTIVE. A reservation
// closed in the transaction is not extended in it.
func (s *StockSet) Close(id int64, status ReservationStatus, at time.Time, levels ...LevelKey) {
	s.extended = slices.DeleteFunc(s.extended, func(e ReservationExtension) bool { return e.ReservationID == id })
	if i := slices.IndexFunc(s.closed, func(c ReservationClosure) bool { return c.ReservationID == id }); i >= 0 {
		s.closed[i].Levels = append(s.closed[i].Levels, levels...)
	} else {
		s.closed = append(s.closed, ReservationClosure{ReservationID: id, Status: status, Levels: levels, At: at})
	}
	r := s.Reservations[id]
	if r == nil {
		return
	}
	for i := range r.Items {
		if slices.Contains(levels, r.Items[i].Key()) {
			r.Items[i].Active = false
		}
	}
	if r.Status == ReservationActive {
		r.Status, r.UpdatedAt = status, at
		r.Version++
	}
}

// Extend moves an active reservation's expiry to until.
func (s *StockSet) Extend(id int64, until time.Time) {
	if slices.ContainsFunc(s.closed, func(c ReservationClosure) bool { return c.ReservationID == id }) {
		return
	}
	e := ReservationExtension{ReservationID: id, ExpiresAt: until, At: s.Now}
	if i := slices.IndexFunc(s.extended, func(e ReservationExtension) bool { return e.ReservationID == id }); i >= 0 {
		s.extended[i] = e
	} else {
		s.extended = append(s.extended, e)
	}
	if r := s.Reservations[id]; r != nil {
		r.ExpiresAt, r.UpdatedAt = until, s.Now
		r.Version++
	}
}

// ChangeTransfer records t as its transfer's new state, which the store
// writes: its status, version and items' shipped, received and returned
// units.
func (s *StockSet) ChangeTransfer(t *Transfer) {
	if i := slices.IndexFunc(s.transfers, func(x *Transfer) bool { return x.ID == t.ID }); i >= 0 {
		s.transfers[i] = t
	} else {
		s.transfers = append(s.transfers, t)
	}
	if s.Transfers == nil {
		s.Transfers = map[int64]*Transfer{}
	}
	s.Transfers[t.ID] = t
}

// ChangedTransfers returns the transfers recorded with ChangeTransfer.
func (s *StockSet) ChangedTransfers() []*Transfer { return s.transfers }

// Created returns the reservations added with Create.
func (s *StockSet) Created() []*Reservation { return s.created }

// Closed returns the closures recorded with Close, one per reservation.
func (s *StockSet) Closed() []ReservationClosure { return s.closed }

// Extended returns the extensions recorded with Extend.
func (s *StockSet) Extended() []ReservationExtension { return s.extended }

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
