package gormstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

const reservationColumns = "id, status, expires_at, reference, actor, idempotency_key, request_hash, version, created_at, updated_at"

type reservationRow struct {
	ID             int64
	Status         string
	ExpiresAt      time.Time
	Reference      string
	Actor          string
	IdempotencyKey sql.NullString
	RequestHash    sql.NullString
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (r *reservationRow) fields() []any {
	return []any{&r.ID, &r.Status, &r.ExpiresAt, &r.Reference, &r.Actor, &r.IdempotencyKey, &r.RequestHash, &r.Version, &r.CreatedAt, &r.UpdatedAt}
}

func (r reservationRow) reservation() *inventory.Reservation {
	return &inventory.Reservation{
		ID: r.ID, Status: inventory.ReservationStatus(r.Status), ExpiresAt: r.ExpiresAt.UTC(), Reference: r.Reference, Actor: r.Actor,
		IdempotencyKey: r.IdempotencyKey.String, RequestHash: r.RequestHash.String, Version: r.Version,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

const itemColumns = "reservation_id, product_id, location_id, quantity, active"

type itemRow struct {
	ReservationID int64
	ProductID     int64
	LocationID    int64
	Quantity      int64
	Active        bool
}

func (r *itemRow) fields() []any {
	return []any{&r.ReservationID, &r.ProductID, &r.LocationID, &r.Quantity, &r.Active}
}

func (r itemRow) item() inventory.ReservationItem {
	return inventory.ReservationItem{ProductID: r.ProductID, LocationID: r.LocationID, Quantity: r.Quantity, Active: r.Active}
}

// attachItems gives each reservation its items, in level order.
func attachItems(rs map[int64]*inventory.Reservation, items []itemRow) {
	for _, it := range items {
		if r := rs[it.ReservationID]; r != nil {
			r.Items = append(r.Items, it.item())
		}
	}
}

// reservationWrites is what a stock transaction changes in reservations:
// derived from its reservation movements, plus creations and extensions.
type reservationWrites struct {
	created []*inventory.Reservation
	// closed items (a COMMIT, RELEASE or EXPIRE movement each), and the
	// status each moves its ACTIVE reservation to.
	closed   []closedItem
	extended map[int64]time.Time
	now      time.Time // the transaction's clock reading
}

type closedItem struct {
	reservationID         int64
	productID, locationID int64
	status                inventory.ReservationStatus
	at                    time.Time
}

// closingStatus is the status a reservation movement moves an ACTIVE
// reservation to.
var closingStatus = map[inventory.MovementType]inventory.ReservationStatus{
	inventory.MovementCommit:  inventory.ReservationCommitted,
	inventory.MovementRelease: inventory.ReservationReleased,
	inventory.MovementExpire:  inventory.ReservationExpired,
}

func reservationChanges(set *inventory.StockSet) reservationWrites {
	w := reservationWrites{created: set.Created(), extended: set.Extended(), now: set.Now.UTC()}
	for _, st := range set.Levels {
		for _, m := range st.Movements() {
			if status, ok := closingStatus[m.Type]; ok && m.ReservationID != 0 {
				w.closed = append(w.closed, closedItem{m.ReservationID, m.ProductID, m.LocationID, status, m.CreatedAt.UTC()})
			}
		}
	}
	for _, c := range w.closed {
		delete(w.extended, c.reservationID) // a closed reservation is not extended
	}
	return w
}

func (w reservationWrites) empty() bool {
	return len(w.created) == 0 && len(w.closed) == 0 && len(w.extended) == 0
}

// What reservation movements imply, for both databases: a COMMIT, RELEASE
// or EXPIRE movement deactivates its item, and the first of an ACTIVE
// reservation closes it; an extension moves an active reservation's expiry.
// The rows v come from %s: typed arrays on PostgreSQL, a VALUES list on
// SQLite (execValues).
const (
	itemsClosedSQL = `UPDATE reservation_items AS i SET active = FALSE FROM %s
		WHERE i.reservation_id = v.rid AND i.product_id = v.pid AND i.location_id = v.lid`
	reservationsClosedSQL = `UPDATE reservations AS r SET status = v.status, updated_at = v.at, version = r.version + 1 FROM %s
		WHERE r.id = v.rid AND r.status = 'ACTIVE'`
	reservationsExtendedSQL = `UPDATE reservations AS r SET expires_at = v.exp, updated_at = v.at, version = r.version + 1 FROM %s
		WHERE r.id = v.rid`
	itemsExtendedSQL = `UPDATE reservation_items AS i SET expires_at = v.exp FROM %s
		WHERE i.reservation_id = v.rid AND i.active`
)

// execValues runs stmt (one of the statements above) on SQLite over rows,
// as the VALUES list v with the columns cols.
func execValues(tx *gorm.DB, stmt, cols string, rows [][]any) error {
	values := make([]string, len(rows))
	var args []any
	for i, r := range rows {
		values[i] = "(" + strings.TrimSuffix(strings.Repeat("?, ", len(r)), ", ") + ")"
		args = append(args, r...)
	}
	return tx.Exec("WITH v ("+cols+") AS (VALUES "+strings.Join(values, ", ")+") "+fmt.Sprintf(stmt, "v"), args...).Error
}

// writeReservations applies w on SQLite.
func writeReservations(tx *gorm.DB, w reservationWrites) error {
	for _, r := range w.created {
		err := tx.Exec("INSERT INTO reservations ("+reservationColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
			r.ID, string(r.Status), r.ExpiresAt.UTC(), r.Reference, r.Actor, nullable(r.IdempotencyKey),
			sql.NullString{String: r.RequestHash, Valid: r.IdempotencyKey != ""}, r.CreatedAt.UTC(), r.UpdatedAt.UTC()).Error
		if err != nil {
			return err
		}
		for _, it := range r.Items {
			if err := tx.Exec("INSERT INTO reservation_items (reservation_id, product_id, location_id, quantity, expires_at, active) VALUES (?, ?, ?, ?, ?, TRUE)",
				r.ID, it.ProductID, it.LocationID, it.Quantity, r.ExpiresAt.UTC()).Error; err != nil {
				return err
			}
		}
	}
	if len(w.closed) > 0 {
		var items, closes [][]any
		seen := map[int64]bool{}
		for _, c := range w.closed {
			items = append(items, []any{c.reservationID, c.productID, c.locationID})
			if !seen[c.reservationID] {
				seen[c.reservationID] = true
				closes = append(closes, []any{c.reservationID, string(c.status), c.at})
			}
		}
		if err := execValues(tx, itemsClosedSQL, "rid, pid, lid", items); err != nil {
			return err
		}
		if err := execValues(tx, reservationsClosedSQL, "rid, status, at", closes); err != nil {
			return err
		}
	}
	if len(w.extended) > 0 {
		var exts, items [][]any
		for id, until := range w.extended {
			exts = append(exts, []any{id, until.UTC(), w.now})
			items = append(items, []any{id, until.UTC()})
		}
		if err := execValues(tx, reservationsExtendedSQL, "rid, exp, at", exts); err != nil {
			return err
		}
		if err := execValues(tx, itemsExtendedSQL, "rid, exp", items); err != nil {
			return err
		}
	}
	return nil
}

// written makes the reservations set loaded what w wrote to them, as the
// statements above do: a closed item is inactive, the first closed item of
// an ACTIVE reservation closes it, and an extension moves its expiry.
func (w reservationWrites) written(set *inventory.StockSet) {
	for _, c := range w.closed {
		r := set.Reservations[c.reservationID]
		if r == nil {
			continue
		}
		for i := range r.Items {
			if it := &r.Items[i]; it.ProductID == c.productID && it.LocationID == c.locationID {
				it.Active = false
			}
		}
		if r.Status == inventory.ReservationActive {
			r.Status, r.UpdatedAt = c.status, c.at
			r.Version++
		}
	}
	for id, until := range w.extended {
		if r := set.Reservations[id]; r != nil {
			r.ExpiresAt, r.UpdatedAt = until.UTC(), w.now
			r.Version++
		}
	}
}

// Reservation returns a reservation with its items.
func (s *Store) Reservation(ctx context.Context, id int64) (inventory.Reservation, error) {
	rs, err := s.loadReservations(s.db.WithContext(ctx), "SELECT "+reservationColumns+" FROM reservations WHERE id = ?", id)
	if err != nil {
		return inventory.Reservation{}, translate(err)
	}
	if len(rs) == 0 {
		return inventory.Reservation{}, inventory.Errorf(inventory.CodeNotFound, "reservation %d not found", id)
	}
	return rs[0], nil
}

// ReservationsByIDs returns the reservations of ids, with their items,
// ordered by ID.
func (s *Store) ReservationsByIDs(ctx context.Context, ids []int64) ([]inventory.Reservation, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	rs, err := s.loadReservations(s.db.WithContext(ctx), "SELECT "+reservationColumns+" FROM reservations WHERE id IN ? ORDER BY id", ids)
	return rs, translate(err)
}

// Reservations returns a page of reservations matching f at now.
func (s *Store) Reservations(ctx context.Context, f inventory.ReservationFilter, now time.Time, afterID int64, limit int) (inventory.ReservationPage, error) {
	where, args := []string{"id > ?"}, []any{afterID}
	switch f.Status {
	case "":
	case inventory.ReservationActive:
		where, args = append(where, "status = 'ACTIVE' AND expires_at > ?"), append(args, now.UTC())
	case inventory.ReservationExpired:
		where, args = append(where, "(status = 'EXPIRED' OR (status = 'ACTIVE' AND expires_at <= ?))"), append(args, now.UTC())
	default:
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	args = append(args, limit+1)
	rs, err := s.loadReservations(s.db.WithContext(ctx),
		"SELECT "+reservationColumns+" FROM reservations WHERE "+strings.Join(where, " AND ")+" ORDER BY id LIMIT ?", args...)
	if err != nil {
		return inventory.ReservationPage{}, translate(err)
	}
	page := inventory.ReservationPage{HasNext: len(rs) > limit}
	page.Reservations = rs[:min(len(rs), limit)]
	return page, nil
}

// ActiveReservations counts the reservations holding stock at now.
func (s *Store) ActiveReservations(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := s.db.WithContext(ctx).Raw("SELECT count(*) FROM reservations WHERE status = 'ACTIVE' AND expires_at > ?", now.UTC()).Scan(&n).Error
	return n, translate(err)
}

// loadReservations runs a query for reservation rows and loads their items.
func (s *Store) loadReservations(db *gorm.DB, query string, args ...any) ([]inventory.Reservation, error) {
	var rows []reservationRow
	if err := db.Raw(query, args...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	byID := make(map[int64]*inventory.Reservation, len(rows))
	ids := make([]int64, len(rows))
	for i, r := range rows {
		byID[r.ID], ids[i] = r.reservation(), r.ID
	}
	var items []itemRow
	if err := db.Raw("SELECT "+itemColumns+" FROM reservation_items WHERE reservation_id IN ? ORDER BY reservation_id, product_id, location_id", ids).Scan(&items).Error; err != nil {
		return nil, err
	}
	attachItems(byID, items)
	out := make([]inventory.Reservation, len(rows))
	for i, id := range ids {
		out[i] = *byID[id]
	}
	return out, nil
}

// DueLevels returns levels holding active items that expired at now.
func (s *Store) DueLevels(ctx context.Context, now time.Time, limit int) ([]inventory.LevelKey, error) {
	var rows []struct{ ProductID, LocationID int64 }
	err := s.db.WithContext(ctx).Raw(`SELECT DISTINCT product_id, location_id FROM reservation_items
		WHERE active AND expires_at <= ? ORDER BY product_id, location_id LIMIT ?`, now.UTC(), limit).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	out := make([]inventory.LevelKey, len(rows))
	for i, r := range rows {
		out[i] = inventory.LevelKey{ProductID: r.ProductID, LocationID: r.LocationID}
	}
	return out, nil
}

// ExpiredReserved returns, per level of the products, the quantity of
// active items that expired at now.
func (s *Store) ExpiredReserved(ctx context.Context, productIDs []int64, now time.Time) (map[inventory.LevelKey]int64, error) {
	out := map[inventory.LevelKey]int64{}
	if len(productIDs) == 0 {
		return out, nil
	}
	var rows []struct{ ProductID, LocationID, Quantity int64 }
	err := s.db.WithContext(ctx).Raw(`SELECT product_id, location_id, sum(quantity) AS quantity FROM reservation_items
		WHERE active AND expires_at <= ? AND product_id IN ? GROUP BY product_id, location_id`, now.UTC(), productIDs).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	for _, r := range rows {
		out[inventory.LevelKey{ProductID: r.ProductID, LocationID: r.LocationID}] = r.Quantity
	}
	return out, nil
}
