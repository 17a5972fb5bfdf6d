package gormstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/inventory"
)

// Transfers: created here, outside the stock transaction (a draft holds no
// stock); shipped, received and cancelled by the one writer
// (stockwrite.go), which writes what the domain recorded in the StockSet.

const transferColumns = "id, status, origin_id, destination_id, reference, actor, idempotency_key, request_hash, version, created_at, updated_at"

type transferRow struct {
	ID             int64
	Status         string
	OriginID       int64
	DestinationID  int64
	Reference      string
	Actor          string
	IdempotencyKey sql.NullString
	RequestHash    sql.NullString
	Version        int64
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

func (r *transferRow) fields() []any {
	return []any{&r.ID, &r.Status, &r.OriginID, &r.DestinationID, &r.Reference, &r.Actor, &r.IdempotencyKey, &r.RequestHash,
		&r.Version, &r.CreatedAt, &r.UpdatedAt}
}

func (r transferRow) transfer() *inventory.Transfer {
	return &inventory.Transfer{
		ID: r.ID, Status: inventory.TransferStatus(r.Status), OriginID: r.OriginID, DestinationID: r.DestinationID,
		Reference: r.Reference, Actor: r.Actor, IdempotencyKey: r.IdempotencyKey.String, RequestHash: r.RequestHash.String,
		Version: r.Version, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

const transferItemColumns = "transfer_id, product_id, quantity, shipped, received, returned"

type transferItemRow struct {
	TransferID, ProductID, Quantity, Shipped, Received, Returned int64
}

func (r *transferItemRow) fields() []any {
	return []any{&r.TransferID, &r.ProductID, &r.Quantity, &r.Shipped, &r.Received, &r.Returned}
}

// attachTransferItems gives each transfer its items, in product order.
func attachTransferItems(ts map[int64]*inventory.Transfer, items []transferItemRow) {
	for _, it := range items {
		if t := ts[it.TransferID]; t != nil {
			t.Items = append(t.Items, inventory.TransferItem{ProductID: it.ProductID, Quantity: it.Quantity,
				Shipped: it.Shipped, Received: it.Received, Returned: it.Returned})
		}
	}
}

// Statements of the transfers a stock transaction changed (stockwrite.go's
// writes): the rows are locked by the transaction, which read them.
const (
	transfersChangedSQL = `UPDATE transfers AS t SET status = v.status, version = v.version, updated_at = v.at FROM %s
		WHERE t.id = v.tid`
	transferItemsChangedSQL = `UPDATE transfer_items AS i SET shipped = v.shipped, received = v.received, returned = v.returned FROM %s
		WHERE i.transfer_id = v.tid AND i.product_id = v.pid`
)

type transferRows struct {
	tid, version dialect.Col[int64]
	status       dialect.Col[string]
	at           dialect.Col[time.Time]
}

func (r *transferRows) init() {
	r.tid, r.version = bigint("tid"), bigint("version")
	r.status, r.at = dialect.NewCol[string]("status", "text"), dialect.NewCol[time.Time]("at", "timestamptz")
}

func (r *transferRows) columns() []dialect.Column {
	return []dialect.Column{&r.tid, &r.version, &r.status, &r.at}
}

func (r *transferRows) add(t *inventory.Transfer) {
	r.tid.Add(t.ID)
	r.version.Add(t.Version)
	r.status.Add(string(t.Status))
	r.at.Add(t.UpdatedAt.UTC())
}

type transferItemRows struct {
	tid, pid, shipped, received, returned dialect.Col[int64]
}

func (r *transferItemRows) init() {
	r.tid, r.pid = bigint("tid"), bigint("pid")
	r.shipped, r.received, r.returned = bigint("shipped"), bigint("received"), bigint("returned")
}

func (r *transferItemRows) columns() []dialect.Column {
	return []dialect.Column{&r.tid, &r.pid, &r.shipped, &r.received, &r.returned}
}

func (r *transferItemRows) add(id int64, it inventory.TransferItem) {
	r.tid.Add(id)
	r.pid.Add(it.ProductID)
	r.shipped.Add(it.Shipped)
	r.received.Add(it.Received)
	r.returned.Add(it.Returned)
}

// CreateTransfer inserts a draft transfer and its items, and fills in its
// ID. A taken idempotency key is ErrDuplicateKey; an unknown location or
// product is CodeNotFound.
func (s *Store) CreateTransfer(ctx context.Context, t *inventory.Transfer) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		key, hash := keyAndHash(t.IdempotencyKey, t.RequestHash)
		err := tx.Raw(`INSERT INTO transfers (status, origin_id, destination_id, reference, actor, idempotency_key, request_hash,
				version, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			string(t.Status), t.OriginID, t.DestinationID, t.Reference, t.Actor, key, hash, t.Version, t.CreatedAt.UTC(), t.UpdatedAt.UTC()).
			Scan(&t.ID).Error
		if err != nil {
			return err
		}
		rows := make([]map[string]any, len(t.Items))
		for i, it := range t.Items {
			rows[i] = map[string]any{"transfer_id": t.ID, "product_id": it.ProductID, "quantity": it.Quantity}
		}
		return tx.Table("transfer_items").Create(rows).Error
	})
	if foreignKeyViolation(err) {
		return inventory.Errorf(inventory.CodeNotFound, "a location or product of the transfer does not exist")
	}
	return translate(err)
}

// TransfersByIDs returns the transfers of ids that exist, with their
// items, ordered by ID.
func (s *Store) TransfersByIDs(ctx context.Context, ids []int64) ([]inventory.Transfer, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	ts, err := loadTransfers(s.db.WithContext(ctx), "SELECT "+transferColumns+" FROM transfers WHERE id IN ? ORDER BY id", ids)
	return ts, translate(err)
}

// TransferByKey returns the transfer created with idempotency key key.
func (s *Store) TransferByKey(ctx context.Context, key string) (inventory.Transfer, bool, error) {
	ts, err := loadTransfers(s.db.WithContext(ctx), "SELECT "+transferColumns+" FROM transfers WHERE idempotency_key = ?", key)
	if err != nil || len(ts) == 0 {
		return inventory.Transfer{}, false, translate(err)
	}
	return ts[0], true, nil
}

// Transfers returns up to limit transfers with IDs above afterID that
// match f, ordered by ID.
func (s *Store) Transfers(ctx context.Context, f inventory.TransferFilter, afterID int64, limit int) (inventory.TransferPage, error) {
	where, args := []string{"id > ?"}, []any{afterID}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, string(f.Status))
	}
	ts, err := loadTransfers(s.db.WithContext(ctx),
		"SELECT "+transferColumns+" FROM transfers WHERE "+strings.Join(where, " AND ")+" ORDER BY id LIMIT ?", append(args, limit+1)...)
	if err != nil {
		return inventory.TransferPage{}, translate(err)
	}
	return inventory.TransferPage{Transfers: ts[:min(len(ts), limit)], HasNext: len(ts) > limit}, nil
}

// loadTransfers runs a query for transfer rows and loads their items.
func loadTransfers(db *gorm.DB, query string, args ...any) ([]inventory.Transfer, error) {
	return loadDocuments(db, query, args,
		"SELECT "+transferItemColumns+" FROM transfer_items WHERE transfer_id IN ? ORDER BY transfer_id, product_id",
		func(r transferRow) (int64, *inventory.Transfer) { return r.ID, r.transfer() }, attachTransferItems)
}

// AuditTransfers returns, for each item of the transfers in transit or
// done, its units in transit beside what its ledger rows say, in one
// statement: the sum of their incoming changes (units in transit are
// counted incoming at the destination), and the sum of their on-hand and
// incoming changes together, which conservation keeps at zero.
func (s *Store) AuditTransfers(ctx context.Context, ids []int64) ([]inventory.TransferAudit, error) {
	query := `SELECT i.transfer_id, i.product_id, i.shipped - i.received - i.returned,
			COALESCE((SELECT SUM(m.incoming_delta) FROM stock_movements m WHERE m.transfer_id = i.transfer_id AND m.product_id = i.product_id), 0),
			COALESCE((SELECT SUM(m.delta + COALESCE(m.incoming_delta, 0)) FROM stock_movements m
				WHERE m.transfer_id = i.transfer_id AND m.product_id = i.product_id), 0)
		FROM transfer_items i`
	var args []any
	if len(ids) > 0 {
		query, args = query+" WHERE i.transfer_id IN ?", []any{ids}
	}
	rows, err := s.db.WithContext(ctx).Raw(query+" ORDER BY i.transfer_id, i.product_id", args...).Rows()
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	var out []inventory.TransferAudit
	for rows.Next() {
		var a inventory.TransferAudit
		if err := rows.Scan(&a.TransferID, &a.ProductID, &a.InTransit, &a.LedgerInTransit, &a.LedgerImbalance); err != nil {
			return nil, translate(err)
		}
		out = append(out, a)
	}
	return out, translate(rows.Err())
}
