package inventory

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Reservation limits.
const (
	MaxReservationItems       = 100
	DefaultReservationTTL     = 15 * time.Minute
	DefaultMaxReservationTTL  = 24 * time.Hour
	reservationReplayOp       = "reserveStock"
	reservationItemsFieldName = "items"
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

// ReserveStock holds stock at one or more levels, all or nothing, until the
// reservation is committed, released or expires. The held units leave
// available at once.
func (s *Service) ReserveStock(ctx context.Context, in NewReservation) (_ ReservationResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.ReserveStock", attrItems.Int(len(in.Items)))
	defer func() { endSpan(span, err) }()
	items, ttl, err := s.checkNewReservation(&in)
	if err != nil {
		return ReservationResult{}, err
	}
	hash := reservationHash(items, ttl, in.Reference)
	keys := make([]LevelKey, len(items))
	for i, it := range items {
		keys[i] = it.Key()
	}
	key := ""
	if in.IdempotencyKey != "" {
		key = reserveKeyPrefix + in.IdempotencyKey
	}
	// made is the reservation the latest run of apply made: if the request
	// is answered with a fresh reservation, this one was committed.
	var made *Reservation
	r := s.runLevels(ctx, stockOp{typ: MovementReserve, key: keys[0], idempotencyKey: key, hash: hash,
		levels: &levelsOp{keys: keys, create: true, apply: func(lt levelsTx) (bool, error) {
			made = nil
			r := &Reservation{ID: lt.newID, Status: ReservationActive, Items: items, ExpiresAt: lt.set.Now.Add(ttl),
				Reference: in.Reference, Actor: ActorFrom(ctx), IdempotencyKey: in.IdempotencyKey, RequestHash: hash,
				Version: 1, CreatedAt: lt.set.Now, UpdatedAt: lt.set.Now}
			for i, it := range items {
				tx, fence := lt.levels[i], lt.fences[i]
				m := s.newMovement(ctx, MovementReserve, 0, "", in.Reference, "", "")
				if i == 0 && key != "" {
					// The ledger row answers a retry, as a stock movement's does.
					m.IdempotencyKey, m.RequestHash = key, hash
				}
				m.ReservedDelta, m.ReservationID, m.Fence = it.Quantity, r.ID, fence
				if err := tx.Apply(&m); err != nil {
					if ErrorCode(err) == CodeInsufficientStock && len(items) > 1 {
						// Say which item is short.
						return false, Errorf(CodeInsufficientStock, "insufficient stock of %s at location %d: %d available, %d requested",
							tx.Product.SKU, tx.Level.LocationID, max(tx.Level.Available(), 0), it.Quantity)
					}
					return false, err
				}
				if tx.Level.NextExpiry.IsZero() || r.ExpiresAt.Before(tx.Level.NextExpiry) {
					tx.Level.NextExpiry = r.ExpiresAt
				}
			}
			lt.set.Create(r)
			made = r
			return false, nil
		}}})
	switch {
	case r.err != nil:
		return ReservationResult{}, r.err
	case r.res.Replayed:
		// A retry: the reservation as it is now.
		res, err := s.Reservation(ctx, r.res.Movement.ReservationID)
		return ReservationResult{Reservation: res, Replayed: true}, err
	}
	s.resLevels.put(made.ID, keys)
	return ReservationResult{Reservation: *made}, nil
}

// ActiveReservations counts the reservations holding stock now,
// cluster-wide.
func (s *Service) ActiveReservations(ctx context.Context) (int64, error) {
	return s.resv.ActiveReservations(ctx, s.now())
}

// checkNewReservation validates in and returns its items (levels sorted,
// default location filled in) and TTL.
func (s *Service) checkNewReservation(in *NewReservation) ([]ReservationItem, time.Duration, error) {
	if len(in.Items) == 0 || len(in.Items) > MaxReservationItems {
		return nil, 0, invalid(reservationItemsFieldName, "a reservation holds 1 to %d items", MaxReservationItems)
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = DefaultReservationTTL
	}
	if err := s.checkTTL(ttl); err != nil {
		return nil, 0, err
	}
	if err := validateText("reference", in.Reference, MaxRefLength); err != nil {
		return nil, 0, err
	}
	if err := validateIdempotencyKey(in.IdempotencyKey); err != nil {
		return nil, 0, err
	}
	items := make([]ReservationItem, len(in.Items))
	for i, it := range in.Items {
		key, err := checkStockRequest(it.ProductID, it.LocationID, "", "", "")
		if err != nil {
			return nil, 0, err
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return nil, 0, invalid("quantity", "quantity must be between 1 and %d", MaxQuantity)
		}
		items[i] = ReservationItem{ProductID: key.ProductID, LocationID: key.LocationID, Quantity: it.Quantity, Active: true}
	}
	slices.SortFunc(items, func(a, b ReservationItem) int {
		if a.ProductID != b.ProductID {
			return compare(a.ProductID, b.ProductID)
		}
		return compare(a.LocationID, b.LocationID)
	})
	for i := 1; i < len(items); i++ {
		if items[i].Key() == items[i-1].Key() {
			return nil, 0, invalid(reservationItemsFieldName, "product %d at location %d is listed twice", items[i].ProductID, items[i].LocationID)
		}
	}
	return items, ttl, nil
}

func (s *Service) checkTTL(ttl time.Duration) error {
	if ttl < time.Second || ttl > s.maxReservationTTL {
		return invalid("ttlSeconds", "ttlSeconds must be between 1 and %d", int64(s.maxReservationTTL/time.Second))
	}
	return nil
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func reservationHash(items []ReservationItem, ttl time.Duration, reference string) string {
	fields := []string{strconv.FormatInt(int64(ttl/time.Millisecond), 10), reference}
	for _, it := range items {
		fields = append(fields, itoa(it.ProductID), itoa(it.LocationID), itoa(it.Quantity))
	}
	return requestHash(reservationReplayOp, fields...)
}

// CommitReservation turns an active reservation into a sale: its units
// leave the stock with a COMMIT ledger row per item.
func (s *Service) CommitReservation(ctx context.Context, id int64) (_ ReservationResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CommitReservation", attrReservation.Int64(id))
	defer func() { endSpan(span, err) }()
	return s.closeReservation(ctx, id, ReservationCommitted)
}

// ReleaseReservation gives an active reservation's units back. Releasing
// one that expired succeeds too: its units are back either way.
func (s *Service) ReleaseReservation(ctx context.Context, id int64) (_ ReservationResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.ReleaseReservation", attrReservation.Int64(id))
	defer func() { endSpan(span, err) }()
	return s.closeReservation(ctx, id, ReservationReleased)
}

// closeReservation commits or releases reservation id.
func (s *Service) closeReservation(ctx context.Context, id int64, to ReservationStatus) (ReservationResult, error) {
	typ := MovementRelease
	if to == ReservationCommitted {
		typ = MovementCommit
	}
	return s.changeReservation(ctx, id, typ, func(lt levelsTx, r *Reservation) (bool, error) {
		if res, done, err := closedAlready(*r, to); done || err != nil {
			return res.Replayed, err
		}
		var closed []LevelKey
		at := lt.set.Now
		for _, it := range r.Items {
			if !it.Active {
				continue
			}
			delta := int64(0)
			if typ == MovementCommit {
				delta = -it.Quantity
			}
			tx, fence := lt.level(it.Key())
			m := s.newMovement(ctx, typ, delta, "", r.Reference, "", "")
			m.ReservedDelta, m.ReservationID, m.Fence = -it.Quantity, id, fence
			if err := tx.Apply(&m); err != nil {
				return false, fmt.Errorf("%s reservation %d: %w", typ, id, err)
			}
			closed, at = append(closed, it.Key()), m.CreatedAt
		}
		lt.set.Close(id, to, at, closed...)
		return false, nil
	})
}

// changeReservation runs fn on reservation id in a stock transaction over
// its levels, and answers with the reservation as the transaction left it.
// fn sees a copy of the reservation with its status as of the
// transaction's clock; it reports whether the request was a replay.
func (s *Service) changeReservation(ctx context.Context, id int64, typ MovementType,
	fn func(lt levelsTx, r *Reservation) (replayed bool, err error)) (ReservationResult, error) {
	keys, err := s.reservationLevels(ctx, id)
	if err != nil {
		return ReservationResult{}, err
	}
	var loaded *Reservation // as the store leaves it at the commit
	res := s.runLevels(ctx, stockOp{typ: typ, key: keys[0], levels: &levelsOp{keys: keys, load: id,
		apply: func(lt levelsTx) (bool, error) {
			loaded = lt.set.Reservations[id]
			if loaded == nil {
				return false, Errorf(CodeNotFound, "reservation %d not found", id)
			}
			cur := *loaded
			cur.Status = loaded.StatusAt(lt.set.Now)
			return fn(lt, &cur)
		}}})
	if res.err != nil {
		return ReservationResult{}, res.err
	}
	return ReservationResult{Reservation: s.asOfNow(loaded), Replayed: res.res.Replayed}, nil
}

// asOfNow returns a copy of r with its status as of now.
func (s *Service) asOfNow(r *Reservation) Reservation {
	out := *r
	out.Items = slices.Clone(r.Items)
	out.Status = r.StatusAt(s.now())
	return out
}

// closedAlready tells whether moving r to status has nothing left to do
// (done), with the answer for the client: a replay if r is already there,
// or the error if r cannot get there.
func closedAlready(r Reservation, to ReservationStatus) (ReservationResult, bool, error) {
	switch {
	case r.Status == ReservationActive:
		return ReservationResult{}, false, nil
	case r.Status == to:
		return ReservationResult{Reservation: r, Replayed: true}, true, nil
	case r.Status == ReservationExpired && to == ReservationReleased:
		return ReservationResult{Reservation: r, Replayed: true}, true, nil
	case r.Status == ReservationExpired:
		return ReservationResult{}, true, Errorf(CodeReservationExpired, "reservation %d expired at %s", r.ID, r.ExpiresAt.Format(time.RFC3339))
	default:
		return ReservationResult{}, true, Errorf(CodeConflict, "reservation %d is %s", r.ID, r.Status)
	}
}

// ExtendReservation makes an active reservation hold its stock for ttl from
// now.
func (s *Service) ExtendReservation(ctx context.Context, id int64, ttl time.Duration) (_ ReservationResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.ExtendReservation", attrReservation.Int64(id))
	defer func() { endSpan(span, err) }()
	if err := s.checkTTL(ttl); err != nil {
		return ReservationResult{}, err
	}
	return s.changeReservation(ctx, id, "", func(lt levelsTx, r *Reservation) (bool, error) {
		if _, done, err := closedAlready(*r, ReservationActive); done || err != nil {
			return false, extendError(*r, err)
		}
		lt.set.Extend(id, lt.set.Now.Add(ttl))
		return false, nil
	})
}

// extendError is the error of extending r, which is not active.
func extendError(r Reservation, err error) error {
	if err != nil {
		return err
	}
	if r.Status == ReservationExpired {
		return Errorf(CodeReservationExpired, "reservation %d expired at %s", r.ID, r.ExpiresAt.Format(time.RFC3339))
	}
	return Errorf(CodeConflict, "reservation %d is %s", r.ID, r.Status)
}

func reservationKeys(r Reservation) []LevelKey {
	keys := make([]LevelKey, len(r.Items))
	for i, it := range r.Items {
		keys[i] = it.Key()
	}
	return keys
}

// reservationLevels returns the levels reservation id holds stock at: the
// queues its requests join. A reservation's items never change, so they
// are remembered once known.
func (s *Service) reservationLevels(ctx context.Context, id int64) ([]LevelKey, error) {
	if keys, ok := s.resLevels.get(id); ok {
		return keys, nil
	}
	r, err := s.Reservation(ctx, id)
	if err != nil {
		return nil, err
	}
	keys := reservationKeys(r)
	s.resLevels.put(id, keys)
	return keys, nil
}

// levelsCache maps reservation IDs to their levels, holding at most max.
type levelsCache struct {
	mu  sync.Mutex
	m   map[int64][]LevelKey
	max int
}

// maxCachedReservations bounds the reservations whose levels a service
// remembers (about 100 bytes each).
const maxCachedReservations = 1 << 17

func (c *levelsCache) get(id int64) ([]LevelKey, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys, ok := c.m[id]
	return keys, ok
}

func (c *levelsCache) put(id int64, keys []LevelKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[int64][]LevelKey)
	}
	if len(c.m) >= c.max {
		for k := range c.m { // an arbitrary one: map order is random
			delete(c.m, k)
			break
		}
	}
	c.m[id] = keys
}

// reserveKeyPrefix sets reservations' idempotency keys apart from stock
// movements': a reservation made with key K records "reserve:K" on its
// first RESERVE movement, and a final refusal of it under the same key.
const reserveKeyPrefix = "reserve:"

// Reservation returns a reservation, with its status as of now.
func (s *Service) Reservation(ctx context.Context, id int64) (Reservation, error) {
	if id <= 0 {
		return Reservation{}, Errorf(CodeNotFound, "reservation %d not found", id)
	}
	r, err := s.resv.Reservation(ctx, id)
	if err != nil {
		return Reservation{}, err
	}
	r.Status = r.StatusAt(s.now())
	return r, nil
}

// Reservations returns up to first reservations with IDs above afterID that
// match f, with their status as of now.
func (s *Service) Reservations(ctx context.Context, f ReservationFilter, first int, afterID int64) (ReservationPage, error) {
	if err := checkFirst(first); err != nil {
		return ReservationPage{}, err
	}
	switch f.Status {
	case "", ReservationActive, ReservationCommitted, ReservationReleased, ReservationExpired:
	default:
		return ReservationPage{}, invalid("status", "unknown status %q", f.Status)
	}
	now := s.now()
	page, err := s.resv.Reservations(ctx, f, now, afterID, first)
	for i := range page.Reservations {
		page.Reservations[i].Status = page.Reservations[i].StatusAt(now)
	}
	return page, err
}
