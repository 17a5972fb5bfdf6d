package app

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

const (
	reservationReplayOp       = "reserveStock"
	reservationItemsFieldName = "items"
)

// ReserveStock holds stock at one or more levels, all or nothing, until the
// reservation is committed, released or expires. The held units leave
// available at once.
func (s *Service) ReserveStock(ctx context.Context, in inventory.NewReservation) (_ inventory.ReservationResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.ReserveStock", attrItems.Int(len(in.Items)))
	defer func() { endSpan(span, err) }()
	items, ttl, err := s.checkNewReservation(&in)
	if err != nil {
		return inventory.ReservationResult{}, err
	}
	hash := inventory.ReservationFingerprint(items, ttl, in.Reference)
	for attempt := 0; ; attempt++ {
		res, err := s.reserve(ctx, in, items, ttl, hash)
		if attempt == 0 {
			if learned, lerr := s.learnedBundle(ctx, err); lerr != nil || learned {
				if lerr != nil {
					return inventory.ReservationResult{}, lerr
				}
				continue // run again with the bundle's components
			}
		}
		return res, err
	}
}

// reserve makes the reservation of the requested items (summed per
// level), its bundles' items made of their components'.
func (s *Service) reserve(ctx context.Context, in inventory.NewReservation, requested []inventory.ReservationItem, ttl time.Duration,
	hash string) (inventory.ReservationResult, error) {
	items, err := s.expandBundles(requested)
	if err != nil {
		return inventory.ReservationResult{}, err
	}
	keys := reservationKeys(inventory.Reservation{Items: items})
	key := ""
	if in.IdempotencyKey != "" {
		key = reserveKeyPrefix + in.IdempotencyKey
	}
	// made is the reservation the latest run of apply made: if the request
	// is answered with a fresh reservation, this one was committed.
	var made *inventory.Reservation
	r := s.runLevels(ctx, inventory.StockOp{Type: inventory.MovementReserve, Key: keys[0], IdempotencyKey: key, Hash: hash,
		Levels: &inventory.LevelsOp{Keys: keys, Create: true, Apply: func(lt inventory.LevelsTx) (bool, error) {
			made = nil
			// Each level is judged on the request's whole demand there,
			// a product's own items and its bundles' alike (they are
			// adjacent: items are in level order); sellable is what the
			// level had before the first of them.
			var sellable int64
			r := &inventory.Reservation{ID: lt.NewID, Status: inventory.ReservationActive, Items: items, ExpiresAt: lt.Set.Now.Add(ttl),
				Reference: in.Reference, Actor: inventory.ActorFrom(ctx), IdempotencyKey: in.IdempotencyKey, RequestHash: hash,
				Version: 1, CreatedAt: lt.Set.Now, UpdatedAt: lt.Set.Now}
			for i, it := range items {
				tx, fence := lt.Level(it.Key())
				if i == 0 || items[i-1].Key() != it.Key() {
					sellable = tx.Sellable()
				}
				m := s.newMovement(ctx, inventory.MovementReserve, 0, "", in.Reference, "", "")
				if i == 0 && key != "" {
					// The ledger row answers a retry, as a stock movement's does.
					m.IdempotencyKey, m.RequestHash = key, hash
				}
				m.ReservedDelta, m.ReservationID, m.BundleID, m.Fence = it.Quantity, r.ID, it.BundleID, fence
				if err := tx.Apply(&m); err != nil {
					if inventory.ErrorCode(err) == inventory.CodeInsufficientStock && len(items) > 1 {
						// Say which level is short, and of the whole demand.
						return false, inventory.Errorf(inventory.CodeInsufficientStock, "insufficient stock of %s at location %d: %d available, %d requested",
							tx.Product.SKU, tx.Level.LocationID, sellable, levelDemand(items, it.Key()))
					}
					return false, err
				}
				if tx.Level.NextExpiry.IsZero() || r.ExpiresAt.Before(tx.Level.NextExpiry) {
					tx.Level.NextExpiry = r.ExpiresAt
				}
			}
			lt.Set.Create(r)
			made = r
			return false, nil
		}}})
	switch {
	case r.Err != nil:
		return inventory.ReservationResult{}, r.Err
	case r.Result.Replayed:
		// A retry: the reservation as it is now.
		res, err := s.Reservation(ctx, r.Result.Movement.ReservationID)
		return inventory.ReservationResult{Reservation: res, Replayed: true}, err
	}
	s.resLevels.put(made.ID, keys)
	return inventory.ReservationResult{Reservation: *made}, nil
}

// ActiveReservations counts the reservations holding stock now,
// cluster-wide.
func (s *Service) ActiveReservations(ctx context.Context) (int64, error) {
	return s.resv.ActiveReservations(ctx, s.now())
}

// checkNewReservation validates in and returns its items (levels sorted,
// default location filled in) and TTL.
func (s *Service) checkNewReservation(in *inventory.NewReservation) ([]inventory.ReservationItem, time.Duration, error) {
	if len(in.Items) == 0 || len(in.Items) > inventory.MaxReservationItems {
		return nil, 0, inventory.Invalid(reservationItemsFieldName, "a reservation holds 1 to %d items", inventory.MaxReservationItems)
	}
	ttl := in.TTL
	if ttl == 0 {
		ttl = inventory.DefaultReservationTTL
	}
	if err := s.checkTTL(ttl); err != nil {
		return nil, 0, err
	}
	if err := inventory.ValidateText("reference", in.Reference, inventory.MaxRefLength); err != nil {
		return nil, 0, err
	}
	if err := inventory.ValidateIdempotencyKey(in.IdempotencyKey); err != nil {
		return nil, 0, err
	}
	items := make([]inventory.ReservationItem, len(in.Items))
	for i, it := range in.Items {
		key, err := inventory.CheckStockRequest(it.ProductID, it.LocationID, "", "", "")
		if err != nil {
			return nil, 0, err
		}
		if it.Quantity < 1 || it.Quantity > inventory.MaxQuantity {
			return nil, 0, inventory.Invalid(inventory.ItemField(reservationItemsFieldName, i, "quantity"), "quantity must be between 1 and %d", inventory.MaxQuantity)
		}
		items[i] = inventory.ReservationItem{ProductID: key.ProductID, LocationID: key.LocationID, Quantity: it.Quantity, Active: true}
	}
	inventory.SortItems(items)
	items = inventory.SumLines(items, func(it inventory.ReservationItem) inventory.LevelKey { return it.Key() },
		func(it *inventory.ReservationItem) *int64 { return &it.Quantity })
	for _, it := range items {
		if it.Quantity > inventory.MaxQuantity {
			return nil, 0, inventory.Invalid(reservationItemsFieldName, "the items of one level sum to more than %d", inventory.MaxQuantity)
		}
	}
	return items, ttl, nil
}

func (s *Service) checkTTL(ttl time.Duration) error {
	if ttl < time.Second || ttl > s.maxReservationTTL {
		return inventory.Invalid("ttlSeconds", "ttlSeconds must be between 1 and %d", int64(s.maxReservationTTL/time.Second))
	}
	return nil
}

// CommitReservation turns an active reservation into a sale: its units
// leave the stock with a COMMIT ledger row per item.
func (s *Service) CommitReservation(ctx context.Context, id int64) (_ inventory.ReservationResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CommitReservation", attrReservation.Int64(id))
	defer func() { endSpan(span, err) }()
	return s.closeReservation(ctx, id, inventory.ReservationCommitted)
}

// ReleaseReservation gives an active reservation's units back. Releasing
// one that expired succeeds too: its units are back either way.
func (s *Service) ReleaseReservation(ctx context.Context, id int64) (_ inventory.ReservationResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.ReleaseReservation", attrReservation.Int64(id))
	defer func() { endSpan(span, err) }()
	return s.closeReservation(ctx, id, inventory.ReservationReleased)
}

// closeReservation commits or releases reservation id.
func (s *Service) closeReservation(ctx context.Context, id int64, to inventory.ReservationStatus) (inventory.ReservationResult, error) {
	typ := inventory.MovementRelease
	if to == inventory.ReservationCommitted {
		typ = inventory.MovementCommit
	}
	return s.changeReservation(ctx, id, typ, func(lt inventory.LevelsTx, r *inventory.Reservation) (bool, error) {
		if res, done, err := closedAlready(*r, to); done || err != nil {
			return res.Replayed, err
		}
		var closed []inventory.LevelKey
		at := lt.Set.Now
		for _, it := range r.Items {
			if !it.Active {
				continue
			}
			delta := int64(0)
			if typ == inventory.MovementCommit {
				delta = -it.Quantity
			}
			tx, fence := lt.Level(it.Key())
			m := s.newMovement(ctx, typ, delta, "", r.Reference, "", "")
			m.ReservedDelta, m.ReservationID, m.BundleID, m.Fence = -it.Quantity, id, it.BundleID, fence
			if err := tx.Apply(&m); err != nil {
				return false, fmt.Errorf("%s reservation %d: %w", typ, id, err)
			}
			closed, at = append(closed, it.Key()), m.CreatedAt
		}
		lt.Set.Close(id, to, at, slices.Compact(closed)...) // items are in level order
		return false, nil
	})
}

// changeReservation runs fn on reservation id in a stock transaction over
// its levels, and answers with the reservation as the transaction left it.
// fn sees a copy of the reservation with its status as of the
// transaction's clock; it reports whether the request was a replay.
func (s *Service) changeReservation(ctx context.Context, id int64, typ inventory.MovementType,
	fn func(lt inventory.LevelsTx, r *inventory.Reservation) (replayed bool, err error)) (inventory.ReservationResult, error) {
	keys, err := s.reservationLevels(ctx, id)
	if err != nil {
		return inventory.ReservationResult{}, err
	}
	var loaded *inventory.Reservation // as the store leaves it at the commit
	res := s.runLevels(ctx, inventory.StockOp{Type: typ, Key: keys[0], Levels: &inventory.LevelsOp{Keys: keys, Load: id,
		Apply: func(lt inventory.LevelsTx) (bool, error) {
			loaded = lt.Set.Reservations[id]
			if loaded == nil {
				return false, inventory.Errorf(inventory.CodeNotFound, "reservation %d not found", id)
			}
			cur := *loaded
			cur.Status = loaded.StatusAt(lt.Set.Now)
			return fn(lt, &cur)
		}}})
	if res.Err != nil {
		return inventory.ReservationResult{}, res.Err
	}
	return inventory.ReservationResult{Reservation: s.asOfNow(loaded), Replayed: res.Result.Replayed}, nil
}

// asOfNow returns a copy of r with its status as of now.
func (s *Service) asOfNow(r *inventory.Reservation) inventory.Reservation {
	out := *r
	out.Items = slices.Clone(r.Items)
	out.Status = r.StatusAt(s.now())
	return out
}

// closedAlready tells whether moving r to status has nothing left to do
// (done), with the answer for the client: a replay if r is already there,
// or the error if r cannot get there.
func closedAlready(r inventory.Reservation, to inventory.ReservationStatus) (inventory.ReservationResult, bool, error) {
	switch {
	case r.Status == inventory.ReservationActive:
		return inventory.ReservationResult{}, false, nil
	case r.Status == to:
		return inventory.ReservationResult{Reservation: r, Replayed: true}, true, nil
	case r.Status == inventory.ReservationExpired && to == inventory.ReservationReleased:
		return inventory.ReservationResult{Reservation: r, Replayed: true}, true, nil
	case r.Status == inventory.ReservationExpired:
		return inventory.ReservationResult{}, true, inventory.Errorf(inventory.CodeReservationExpired, "reservation %d expired at %s", r.ID, r.ExpiresAt.Format(time.RFC3339))
	default:
		return inventory.ReservationResult{}, true, inventory.Errorf(inventory.CodeConflict, "reservation %d is %s", r.ID, r.Status)
	}
}

// ExtendReservation makes an active reservation hold its stock for ttl from
// now.
func (s *Service) ExtendReservation(ctx context.Context, id int64, ttl time.Duration) (_ inventory.ReservationResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.ExtendReservation", attrReservation.Int64(id))
	defer func() { endSpan(span, err) }()
	if err := s.checkTTL(ttl); err != nil {
		return inventory.ReservationResult{}, err
	}
	return s.changeReservation(ctx, id, "", func(lt inventory.LevelsTx, r *inventory.Reservation) (bool, error) {
		if _, done, err := closedAlready(*r, inventory.ReservationActive); done || err != nil {
			return false, extendError(*r, err)
		}
		lt.Set.Extend(id, lt.Set.Now.Add(ttl))
		return false, nil
	})
}

// extendError is the error of extending r, which is not active.
func extendError(r inventory.Reservation, err error) error {
	if err != nil {
		return err
	}
	if r.Status == inventory.ReservationExpired {
		return inventory.Errorf(inventory.CodeReservationExpired, "reservation %d expired at %s", r.ID, r.ExpiresAt.Format(time.RFC3339))
	}
	return inventory.Errorf(inventory.CodeConflict, "reservation %d is %s", r.ID, r.Status)
}

// reservationKeys returns r's levels, each once (its items are in level
// order; a level may hold items for the product and for bundles).
func reservationKeys(r inventory.Reservation) []inventory.LevelKey {
	keys := make([]inventory.LevelKey, len(r.Items))
	for i, it := range r.Items {
		keys[i] = it.Key()
	}
	return slices.Compact(keys)
}

// expandBundles replaces the items of bundles among items with their
// components' (each naming its bundle), in level order, one item per
// level and bundle.
func (s *Service) expandBundles(items []inventory.ReservationItem) ([]inventory.ReservationItem, error) {
	if !slices.ContainsFunc(items, func(it inventory.ReservationItem) bool { _, ok := s.bundles.get(it.ProductID); return ok }) {
		return items, nil // in level order and summed already
	}
	var out []inventory.ReservationItem
	for _, it := range items {
		comps, ok := s.bundles.get(it.ProductID)
		if !ok {
			out = append(out, it)
			continue
		}
		lines, err := inventory.BundleLines(it.ProductID, comps, it.LocationID, it.Quantity)
		if err != nil {
			return nil, err
		}
		out = append(out, lines...)
	}
	inventory.SortItems(out)
	return inventory.SumLines(out, func(it inventory.ReservationItem) itemKey { return itemKey{it.Key(), it.BundleID} },
		func(it *inventory.ReservationItem) *int64 { return &it.Quantity }), nil
}

// levelDemand is what items ask of level key.
func levelDemand(items []inventory.ReservationItem, key inventory.LevelKey) int64 {
	var n int64
	for _, it := range items {
		if it.Key() == key {
			n += it.Quantity
		}
	}
	return n
}

// itemKey is what tells reservation items apart: their level and bundle.
type itemKey struct {
	level  inventory.LevelKey
	bundle int64
}

// reservationLevels returns the levels reservation id holds stock at: the
// queues its requests join. A reservation's items never change, so they
// are remembered once known.
func (s *Service) reservationLevels(ctx context.Context, id int64) ([]inventory.LevelKey, error) {
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

// maxCachedReservations bounds the reservations whose levels a service
// remembers (about 100 bytes each).
const maxCachedReservations = 1 << 17

// reserveKeyPrefix sets reservations' idempotency keys apart from stock
// movements': a reservation made with key K records "reserve:K" on its
// first RESERVE movement, and a final refusal of it under the same key.
const reserveKeyPrefix = "reserve:"

// Reservation returns a reservation, with its status as of now.
func (s *Service) Reservation(ctx context.Context, id int64) (inventory.Reservation, error) {
	if id <= 0 {
		return inventory.Reservation{}, inventory.Errorf(inventory.CodeNotFound, "reservation %d not found", id)
	}
	r, err := s.resv.Reservation(ctx, id)
	if err != nil {
		return inventory.Reservation{}, err
	}
	r.Status = r.StatusAt(s.now())
	return r, nil
}

// Reservations returns up to first reservations with IDs above afterID that
// match f, with their status as of now.
func (s *Service) Reservations(ctx context.Context, f inventory.ReservationFilter, first int, afterID int64) (inventory.ReservationPage, error) {
	if err := checkFirst(first); err != nil {
		return inventory.ReservationPage{}, err
	}
	switch f.Status {
	case "", inventory.ReservationActive, inventory.ReservationCommitted, inventory.ReservationReleased, inventory.ReservationExpired:
	default:
		return inventory.ReservationPage{}, inventory.Invalid("status", "unknown status %q", f.Status)
	}
	now := s.now()
	page, err := s.resv.Reservations(ctx, f, now, afterID, first)
	for i := range page.Reservations {
		page.Reservations[i].Status = page.Reservations[i].StatusAt(now)
	}
	return page, err
}
