package gormstore

import (
	"database/sql"
	"time"

	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

// Row types mirror the tables; the domain types carry no storage tags.

const productColumns = "id, sku, name, price_micros, threshold, stock, reserved, low_stock_alerted, version, last_seq, revision, created_at, updated_at, " +
	stateColumns + ", backorder_limit, backordered, tracked, bundle"

// stateColumns are the columns of a level's or a product's states.
const stateColumns = "damaged, quality_control, safety_stock, incoming"

// StateCols are the states of a level or product row (exported, so that
// GORM scans the rows that embed it).
type StateCols struct {
	Damaged, QualityControl, SafetyStock, Incoming int64
}

func (c StateCols) states() inventory.States {
	return inventory.States{Damaged: c.Damaged, QualityControl: c.QualityControl, SafetyStock: c.SafetyStock, Incoming: c.Incoming}
}

func (c *StateCols) fields() []any {
	return []any{&c.Damaged, &c.QualityControl, &c.SafetyStock, &c.Incoming}
}

type productRow struct {
	ID              int64
	SKU             string `gorm:"column:sku"`
	Name            string
	PriceMicros     int64
	Threshold       int64
	Stock           int64
	Reserved        int64
	LowStockAlerted bool
	Version         int64
	LastSeq         int64
	Revision        int64
	CreatedAt       time.Time
	UpdatedAt       time.Time
	StateCols       `gorm:"embedded"`
	BackorderLimit  int64
	Backordered     int64
	Tracked         bool
	Bundle          bool
}

func (r productRow) product() inventory.Product {
	return inventory.Product{
		ID: r.ID, SKU: r.SKU, Name: r.Name, Price: inventory.Price(r.PriceMicros), Threshold: r.Threshold,
		Stock: r.Stock, Reserved: r.Reserved, States: r.states(), BackorderLimit: r.BackorderLimit, Backordered: r.Backordered, Untracked: !r.Tracked, Bundle: r.Bundle, LowStockAlerted: r.LowStockAlerted, Version: r.Version, LastSeq: r.LastSeq, Revision: r.Revision,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

const levelColumns = "product_id, location_id, stock, reserved, version, lease_epoch, lease_token, updated_at, next_expiry, " +
	stateColumns

type levelRow struct {
	ProductID  int64
	LocationID int64
	Stock      int64
	Reserved   int64
	Version    int64
	LeaseEpoch int64
	LeaseToken int64
	UpdatedAt  time.Time
	NextExpiry sql.NullTime
	StateCols
}

func (r levelRow) level() inventory.Level {
	l := inventory.Level{
		ProductID: r.ProductID, LocationID: r.LocationID, Stock: r.Stock, Reserved: r.Reserved, States: r.states(),
		Version: r.Version, Fence: inventory.Fence{Epoch: r.LeaseEpoch, Token: r.LeaseToken}, UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.NextExpiry.Valid {
		l.NextExpiry = r.NextExpiry.Time.UTC()
	}
	return l
}

const movementColumns = "seq, product_id, location_id, type, delta, quantity_after, available_after, low_stock_alert, " +
	"reason, reference, actor, idempotency_key, request_hash, lease_epoch, lease_token, trace_id, created_at, " +
	"reserved_delta, reservation_id, damaged_delta, quality_control_delta, safety_stock_delta, incoming_delta, from_state, to_state, transfer_id, bundle_id"

type movementRow struct {
	Seq            int64
	ProductID      int64
	LocationID     int64
	Type           string
	Delta          int64
	QuantityAfter  int64
	AvailableAfter int64
	LowStockAlert  bool
	Reason         string
	Reference      string
	Actor          string
	IdempotencyKey sql.NullString
	RequestHash    sql.NullString
	LeaseEpoch     int64
	LeaseToken     int64
	TraceID        string
	CreatedAt      time.Time
	ReservedDelta  int64
	ReservationID  sql.NullInt64
	// The changes of the states (NULL: none) and the states named.
	DamagedDelta, QualityControlDelta, SafetyStockDelta, IncomingDelta sql.NullInt64
	FromState, ToState                                                 sql.NullString
	TransferID                                                         sql.NullInt64
	BundleID                                                           sql.NullInt64
}

// scanMovements reads ledger rows selected as movementColumns. It scans
// each row into its fields directly: GORM's Scan finds them by reflection,
// row by row, and the event feed and the event publisher read every row.
func scanMovements(db *gorm.DB, query string, args ...any) ([]movementRow, error) {
	rows, err := db.Raw(query, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []movementRow
	for rows.Next() {
		var r movementRow
		if err := rows.Scan(r.fields()...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (r movementRow) movement() inventory.Movement {
	return inventory.Movement{
		ReservedDelta: r.ReservedDelta, ReservationID: r.ReservationID.Int64,
		StatesDelta: inventory.States{Damaged: r.DamagedDelta.Int64, QualityControl: r.QualityControlDelta.Int64,
			SafetyStock: r.SafetyStockDelta.Int64, Incoming: r.IncomingDelta.Int64},
		FromState: inventory.StockState(r.FromState.String), ToState: inventory.StockState(r.ToState.String), TransferID: r.TransferID.Int64, BundleID: r.BundleID.Int64,
		Seq: r.Seq, ProductID: r.ProductID, LocationID: r.LocationID, Type: inventory.MovementType(r.Type),
		Delta: r.Delta, QuantityAfter: r.QuantityAfter, AvailableAfter: r.AvailableAfter, LowStockAlert: r.LowStockAlert,
		Reason: r.Reason, Reference: r.Reference, Actor: r.Actor, IdempotencyKey: r.IdempotencyKey.String,
		RequestHash: r.RequestHash.String, Fence: inventory.Fence{Epoch: r.LeaseEpoch, Token: r.LeaseToken}, TraceID: r.TraceID, CreatedAt: r.CreatedAt.UTC(),
	}
}

type locationRow struct {
	ID        int64
	Code      string
	Name      string
	CreatedAt time.Time
}

func (r locationRow) location() inventory.Location {
	return inventory.Location{ID: r.ID, Code: r.Code, Name: r.Name, CreatedAt: r.CreatedAt.UTC()}
}

// The fields methods return pointers to a row's fields in the order of its
// columns constant, for scanning without GORM (the PostgreSQL hot path).

func (r *productRow) fields() []any {
	return []any{&r.ID, &r.SKU, &r.Name, &r.PriceMicros, &r.Threshold, &r.Stock, &r.Reserved, &r.LowStockAlerted,
		&r.Version, &r.LastSeq, &r.Revision, &r.CreatedAt, &r.UpdatedAt, &r.Damaged, &r.QualityControl, &r.SafetyStock, &r.Incoming,
		&r.BackorderLimit, &r.Backordered, &r.Tracked, &r.Bundle}
}

func (r *levelRow) fields() []any {
	return append([]any{&r.ProductID, &r.LocationID, &r.Stock, &r.Reserved, &r.Version, &r.LeaseEpoch, &r.LeaseToken, &r.UpdatedAt, &r.NextExpiry},
		r.StateCols.fields()...)
}

func (r *movementRow) fields() []any {
	return []any{&r.Seq, &r.ProductID, &r.LocationID, &r.Type, &r.Delta, &r.QuantityAfter, &r.AvailableAfter, &r.LowStockAlert,
		&r.Reason, &r.Reference, &r.Actor, &r.IdempotencyKey, &r.RequestHash, &r.LeaseEpoch, &r.LeaseToken, &r.TraceID, &r.CreatedAt,
		&r.ReservedDelta, &r.ReservationID, &r.DamagedDelta, &r.QualityControlDelta, &r.SafetyStockDelta, &r.IncomingDelta,
		&r.FromState, &r.ToState, &r.TransferID, &r.BundleID}
}

type rejectionRow struct {
	IdempotencyKey, RequestHash, Code, Message, Field string
}

func (r *rejectionRow) fields() []any {
	return []any{&r.IdempotencyKey, &r.RequestHash, &r.Code, &r.Message, &r.Field}
}

func (r rejectionRow) rejection() inventory.Rejection {
	return inventory.Rejection{Key: r.IdempotencyKey, RequestHash: r.RequestHash, Code: inventory.Code(r.Code), Message: r.Message,
		Field: r.Field}
}
