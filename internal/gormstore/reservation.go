package gormstore

import (
	"context"
	"database/sql"
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

const itemColumns = "reservation_id, product_id, location_id, quantity, active, bundle_id"

type itemRow struct {
	ReservationID int64
	ProductID     int64
	LocationID    int64
	Quantity      int64
	Active        bool
	BundleID      int64
}

func (r *itemRow) fields() []any {
	return []any{&r.ReservationID, &r.ProductID, &r.LocationID, &r.Quantity, &r.Active, &r.BundleID}
}

func (r itemRow) item() inventory.ReservationItem {
	return inventory.ReservationItem{ProductID: r.ProductID, LocationID: r.LocationID, Quantity: r.Quantity, BundleID: r.BundleID, Active: r.Active}
}

// attachItems gives each reservation its items, in level order.
func attachItems(rs map[int64]*inventory.Reservation, items []itemRow) {
	for _, it := range items {
		if r := rs[it.ReservationID]; r != nil {
			r.Items = append(r.Items, it.item())
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
	return loadDocuments(db, query, args,
		"SELECT "+itemColumns+" FROM reservation_items WHERE reservation_id IN ? ORDER BY reservation_id, product_id, location_id, bundle_id",
		func(r reservationRow) (int64, *inventory.Reservation) { return r.ID, r.reservation() }, attachItems)
}

// loadDocuments runs a query for the rows of documents (reservations,
// transfers), then itemsQuery (whose argument is their IDs) for their
// items, which attach gives them; the documents keep the query's order.
func loadDocuments[R, I, D any](db *gorm.DB, query string, args []any, itemsQuery string,
	doc func(R) (int64, *D), attach func(map[int64]*D, []I)) ([]D, error) {
	var rows []R
	if err := db.Raw(query, args...).Scan(&rows).Error; err != nil {
		return nil, err
	}
	if len(rows) == 0 {
		return nil, nil
	}
	byID := make(map[int64]*D, len(rows))
	ids := make([]int64, len(rows))
	for i, r := range rows {
		id, d := doc(r)
		byID[id], ids[i] = d, id
	}
	var items []I
	if err := db.Raw(itemsQuery, ids).Scan(&items).Error; err != nil {
		return nil, err
	}
	attach(byID, items)
	out := make([]D, len(rows))
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
