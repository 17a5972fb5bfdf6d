package inventory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/shopstack/inventory/internal/lock"
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
	if res, ok, err := s.replayReservation(ctx, in.IdempotencyKey, hash); ok || err != nil {
		return res, err
	}
	keys := make([]LevelKey, len(items))
	for i, it := range items {
		keys[i] = it.Key()
	}
	var id int64
	var remember *Rejection
	if in.IdempotencyKey != "" {
		remember = &Rejection{Key: reserveKeyPrefix + in.IdempotencyKey, RequestHash: hash}
	}
	err = s.reservationTx(ctx, keys, nil, 1, remember, func(set *StockSet, fences map[LevelKey]Fence) error {
		id = set.NewIDs[0]
		r := &Reservation{ID: id, Status: ReservationActive, Items: items, ExpiresAt: set.Now.Add(ttl),
			Reference: in.Reference, Actor: ActorFrom(ctx), IdempotencyKey: in.IdempotencyKey, RequestHash: hash,
			Version: 1, CreatedAt: set.Now, UpdatedAt: set.Now}
		for _, it := range items {
			tx := levelOf(set, it.Key())
			m := s.newMovement(ctx, MovementReserve, 0, "", in.Reference, "", "")
			m.ReservedDelta, m.ReservationID, m.Fence = it.Quantity, id, fences[it.Key()]
			if err := tx.Apply(&m); err != nil {
				if ErrorCode(err) == CodeInsufficientStock && len(items) > 1 {
					// Say which item is short.
					return Errorf(CodeInsufficientStock, "insufficient stock of %s at location %d: %d available, %d requested",
						tx.Product.SKU, tx.Level.LocationID, max(tx.Level.Available(), 0), it.Quantity)
				}
				return err
			}
			if tx.Level.NextExpiry.IsZero() || r.ExpiresAt.Before(tx.Level.NextExpiry) {
				tx.Level.NextExpiry = r.ExpiresAt
			}
		}
		set.Create(r)
		return nil
	})
	if errors.Is(err, ErrDuplicateKey) {
		// A concurrent request with the same key won; answer as its retry.
		if res, ok, err := s.replayReservation(ctx, in.IdempotencyKey, hash); ok || err != nil {
			return res, err
		}
	}
	if err != nil {
		return ReservationResult{}, err
	}
	r, err := s.Reservation(ctx, id)
	return ReservationResult{Reservation: r}, err
}

// ActiveReservations counts the reservations holding stock now,
// cluster-wide.
func (s *Service) ActiveReservations(ctx context.Context) (int64, error) {
	return s.store.ActiveReservations(ctx, s.now())
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

// replayReservation answers a reservation whose idempotency key was already
// used: with that reservation if the request is the same, CONFLICT if not.
func (s *Service) replayReservation(ctx context.Context, key, hash string) (ReservationResult, bool, error) {
	if key == "" {
		return ReservationResult{}, false, nil
	}
	r, ok, err := s.store.ReservationByKey(ctx, key)
	if err != nil || !ok {
		return ReservationResult{}, false, err
	}
	if r.RequestHash != hash {
		return ReservationResult{}, true, errKeyReused()
	}
	r.Status = r.StatusAt(s.now())
	return ReservationResult{Reservation: r, Replayed: true}, true, nil
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
	r, err := s.Reservation(ctx, id)
	if err != nil {
		return ReservationResult{}, err
	}
	if res, done, err := closedAlready(r, to); done || err != nil {
		return res, err
	}
	replayed := false
	err = s.reservationTx(ctx, reservationKeys(r), []int64{id}, 0, nil, func(set *StockSet, fences map[LevelKey]Fence) error {
		r := set.Reservations[id]
		if r == nil {
			return Errorf(CodeNotFound, "reservation %d not found", id)
		}
		cur := *r
		cur.Status = r.StatusAt(set.Now)
		if res, done, err := closedAlready(cur, to); done || err != nil {
			replayed = res.Replayed
			return err
		}
		typ, delta := MovementRelease, int64(0)
		if to == ReservationCommitted {
			typ = MovementCommit
		}
		for _, it := range r.Items {
			if !it.Active {
				continue
			}
			if typ == MovementCommit {
				delta = -it.Quantity
			}
			m := s.newMovement(ctx, typ, delta, "", r.Reference, "", "")
			m.ReservedDelta, m.ReservationID, m.Fence = -it.Quantity, id, fences[it.Key()]
			if err := levelOf(set, it.Key()).Apply(&m); err != nil {
				return fmt.Errorf("%s reservation %d: %w", typ, id, err)
			}
		}
		return nil
	})
	if err != nil {
		return ReservationResult{}, err
	}
	r, err = s.Reservation(ctx, id)
	return ReservationResult{Reservation: r, Replayed: replayed}, err
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
	r, err := s.Reservation(ctx, id)
	if err != nil {
		return ReservationResult{}, err
	}
	if _, done, err := closedAlready(r, ReservationActive); done || err != nil {
		return ReservationResult{}, extendError(r, err)
	}
	err = s.reservationTx(ctx, reservationKeys(r), []int64{id}, 0, nil, func(set *StockSet, _ map[LevelKey]Fence) error {
		r := set.Reservations[id]
		if r == nil {
			return Errorf(CodeNotFound, "reservation %d not found", id)
		}
		cur := *r
		cur.Status = r.StatusAt(set.Now)
		if _, done, err := closedAlready(cur, ReservationActive); done || err != nil {
			return extendError(cur, err)
		}
		set.Extend(id, set.Now.Add(ttl))
		return nil
	})
	if err != nil {
		return ReservationResult{}, err
	}
	r, err = s.Reservation(ctx, id)
	return ReservationResult{Reservation: r}, err
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

func levelOf(set *StockSet, key LevelKey) *StockTx {
	for _, tx := range set.Levels {
		if tx.Level.ProductID == key.ProductID && tx.Level.LocationID == key.LocationID {
			return tx
		}
	}
	return nil
}

// reservationTx runs fn in one stock transaction over keys, under their
// leases, taken in sorted order. Before fn, every level must be
// changeable (it exists, and no newer lease wrote it) and has its expired
// items released. It retries races it can recover from.
//
// With remember set, a final refusal by fn is remembered under its key,
// and a request whose key was refused before gets the same refusal: a
// late duplicate is never applied after the client was told no.
func (s *Service) reservationTx(ctx context.Context, keys []LevelKey, load []int64, create int, remember *Rejection,
	fn func(set *StockSet, fences map[LevelKey]Fence) error) error {
	leases, fences, err := s.lockLevels(ctx, keys)
	if err != nil {
		return err
	}
	defer s.unlockAll(ctx, leases)
	works := make([]LevelWork, len(keys))
	for i, k := range keys {
		works[i] = LevelWork{Key: k, Fence: fences[k]}
	}
	if remember != nil {
		works[0].ReplayKeys = []string{remember.Key}
		fn = refusalsRemembered(remember, fn)
	}
	err = s.reservationTxn(ctx, works, leases, load, create, fn)
	if e, ok := errors.AsType[*refusal](err); ok {
		if e.fresh {
			s.rememberRefusal(ctx, works[0], *remember, e.err)
		}
		return e.err
	}
	return err
}

// reserveKeyPrefix sets reservations' idempotency keys apart from stock
// movements' among the remembered refusals.
const reserveKeyPrefix = "reserve:"

// refusal is fn's final refusal of a request whose refusals are
// remembered: fresh, or the earlier one replayed.
type refusal struct {
	err   *Error
	fresh bool
}

func (r *refusal) Error() string { return r.err.Error() }

// refusalsRemembered wraps fn: an earlier refusal of the key is replayed,
// and fn's final refusals are marked to be remembered.
func refusalsRemembered(r *Rejection, fn func(*StockSet, map[LevelKey]Fence) error) func(*StockSet, map[LevelKey]Fence) error {
	return func(set *StockSet, fences map[LevelKey]Fence) error {
		if old, ok := set.Levels[0].Rejections[r.Key]; ok {
			if old.RequestHash != r.RequestHash {
				return errKeyReused()
			}
			return &refusal{err: &Error{Code: old.Code, Message: old.Message}}
		}
		err := fn(set, fences)
		if e, ok := errors.AsType[*Error](err); ok && final(e) {
			return &refusal{err: e, fresh: true}
		}
		return err
	}
}

// rememberRefusal writes a refusal, in a transaction of its own: the one
// that judged it rolled back. The request still holds its leases, so
// nothing changed in between.
func (s *Service) rememberRefusal(ctx context.Context, w LevelWork, r Rejection, e *Error) {
	r.Code, r.Message = e.Code, e.Message
	w.ReplayKeys = nil
	err := s.store.UpdateStocks(ctx, []LevelWork{w}, StockOptions{Now: s.now()}, StockCallbacks{
		Apply: func(set *StockSet) error {
			set.Levels[0].Reject(r)
			return nil
		},
	})
	if err != nil {
		s.log.WarnContext(ctx, "could not remember a refusal", "key", r.Key, "err", err)
	}
}

// reservationTxn runs fn in stock transactions over works, under leases,
// until it commits or fails for good.
func (s *Service) reservationTxn(ctx context.Context, works []LevelWork, leases lock.Leases, load []int64, create int,
	fn func(set *StockSet, fences map[LevelKey]Fence) error) error {
	fences := make(map[LevelKey]Fence, len(works))
	for _, w := range works {
		fences[w.Key] = w.Fence
	}
	var err error
	for attempt := 1; ; attempt++ {
		now := s.now()
		var txs []*StockTx
		err = s.store.UpdateStocks(ctx, works, StockOptions{Now: now, Reservations: load, NewReservations: create}, StockCallbacks{
			Apply: func(set *StockSet) error {
				txs = set.Levels
				for i, tx := range set.Levels {
					if tx.Err != nil {
						return tx.Err
					}
					if f := works[i].Fence; f.Before(tx.Level.Fence) {
						return staleLease(f, tx.Level.Fence)
					}
					releaseExpired(tx, works[i].Fence, now, s.traceID(ctx))
				}
				return fn(set, fences)
			},
			BeforeCommit: func() error {
				for _, l := range leases {
					if closed(l.Done()) {
						return errLeaseLost(lock.ErrLeaseLost)
					}
				}
				return nil
			},
		})
		if (errors.Is(err, ErrVersionConflict) || errors.Is(err, ErrDuplicateKey) && create == 0) && attempt < maxTxAttempts {
			continue
		}
		if errors.Is(err, ErrVersionConflict) {
			err = &Error{Code: CodeUnavailable, Message: "stock level is busy; retry", Err: err}
		}
		if err == nil {
			s.committed(1, txs)
		}
		return err
	}
}

// lockLevels takes the leases of keys in sorted order and returns the
// fence of each level.
func (s *Service) lockLevels(ctx context.Context, keys []LevelKey) (lock.Leases, map[LevelKey]Fence, error) {
	names := make([]string, len(keys))
	byName := make(map[string]LevelKey, len(keys))
	for i, k := range keys {
		names[i] = k.LockName()
		byName[names[i]] = k
	}
	lctx, cancel := context.WithTimeout(ctx, s.lockTimeout)
	defer cancel()
	leases, err := lock.LockAll(lctx, s.locker, names)
	if err != nil {
		return nil, nil, lockError(ctx, err)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	fences := make(map[LevelKey]Fence, len(keys))
	for i, name := range names {
		fences[byName[name]] = Fence{Epoch: s.epoch, Token: leases[i].Token()}
	}
	return leases, fences, nil
}

// Reservation returns a reservation, with its status as of now.
func (s *Service) Reservation(ctx context.Context, id int64) (Reservation, error) {
	if id <= 0 {
		return Reservation{}, Errorf(CodeNotFound, "reservation %d not found", id)
	}
	r, err := s.store.Reservation(ctx, id)
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
	page, err := s.store.Reservations(ctx, f, now, afterID, first)
	for i := range page.Reservations {
		page.Reservations[i].Status = page.Reservations[i].StatusAt(now)
	}
	return page, err
}
