package gormstore

import (
	"context"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/gormstore/dialect"
	"github.com/shopstack/inventory/internal/inventory"
)

// CreateProduct inserts p, its idempotency key, and its initial stock if
// any, through the one writer of stock (stockwrite.go): in two round trips
// on PostgreSQL, the product first, for its ID.
func (s *Store) CreateProduct(ctx context.Context, p *inventory.Product, initial *inventory.StockTx, key inventory.IdempotencyRecord) error {
	var committed func()
	err := s.inTx(ctx, func(r dialect.Runner) error {
		err := r.Run([]dialect.Stmt{
			{SQL: s.writes.nextRevision},
			{SQL: s.writes.insertProduct, Args: []any{p.SKU, p.Name, int64(p.Price), p.Threshold, p.Stock, p.Reserved, p.LowStockAlerted,
				p.Version, p.CreatedAt.UTC(), p.UpdatedAt.UTC(), p.BackorderLimit, !p.Untracked, p.Bundle}, Dest: []any{&p.ID, &p.Revision}, Row: func() error { return nil }},
		})
		if err != nil {
			return err
		}
		var stmts []dialect.Stmt
		if p.Bundle {
			stmts = append(stmts, bundleComponentsStmt(s.d, p.ID, p.Components))
		}
		if key.Key != "" {
			stmts = append(stmts, dialect.Stmt{SQL: s.writes.insertKey, Args: []any{key.Key, key.Operation, key.RequestHash, p.ID, p.CreatedAt.UTC()}})
		}
		if initial != nil {
			initial.Product.ID, initial.Level.ProductID = p.ID, p.ID
			// A new product's first level is written without a lease:
			// nobody else can know the product yet.
			var ws []dialect.Stmt
			ws, committed = writeStocks(s.writes, []stockItem{{st: initial, now: p.CreatedAt}}, nil, p.CreatedAt)
			stmts = append(stmts, ws...)
		}
		return r.Commit(stmts)
	})
	if err == nil && committed != nil {
		committed()
	}
	return err
}

// bundleComponentsStmt inserts bundle id's components.
func bundleComponentsStmt(d dialect.Dialect, id int64, comps []inventory.BundleComponent) dialect.Stmt {
	values := make([]string, len(comps))
	args := make([]any, 0, 3*len(comps))
	for i, c := range comps {
		values[i] = "(?, ?, ?)"
		args = append(args, id, c.ProductID, c.Quantity)
	}
	return dialect.Stmt{SQL: d.Text("INSERT INTO bundle_components (bundle_id, component_id, quantity) VALUES " + strings.Join(values, ", ")), Args: args}
}

// BundleComponents returns the components of the bundles among ids, by
// bundle, in product order.
func (s *Store) BundleComponents(ctx context.Context, ids []int64) (map[int64][]inventory.BundleComponent, error) {
	out := map[int64][]inventory.BundleComponent{}
	if len(ids) == 0 {
		return out, nil
	}
	var rows []struct{ BundleID, ComponentID, Quantity int64 }
	err := s.db.WithContext(ctx).Raw(`SELECT bundle_id, component_id, quantity FROM bundle_components
		WHERE bundle_id IN ? ORDER BY bundle_id, component_id`, ids).Scan(&rows).Error
	if err != nil {
		return nil, translate(err)
	}
	for _, r := range rows {
		out[r.BundleID] = append(out[r.BundleID], inventory.BundleComponent{ProductID: r.ComponentID, Quantity: r.Quantity})
	}
	return out, nil
}

// Product writes outside the stock transaction, for both databases.
const (
	// nextRevisionSQL takes the next catalog revision. The counter's row
	// stays locked until the transaction ends, so revisions become visible
	// in order (see migration 0008).
	nextRevisionSQL  = "UPDATE catalog_sequence SET last = last + 1 WHERE id = 1 RETURNING last"
	insertProductSQL = `INSERT INTO products (sku, name, price_micros, threshold, stock, reserved, low_stock_alerted, version,
			created_at, updated_at, backorder_limit, tracked, bundle, revision)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT last FROM catalog_sequence WHERE id = 1)) RETURNING id, revision`
	insertKeySQL = "INSERT INTO idempotency_keys (key, operation, request_hash, product_id, created_at) VALUES (?, ?, ?, ?, ?)"
)

// nextRevision takes the next catalog revision (nextRevisionSQL).
func nextRevision(tx *gorm.DB) (int64, error) {
	var rev int64
	err := tx.Raw(nextRevisionSQL).Scan(&rev).Error
	return rev, err
}

func insertIdempotencyKey(tx *gorm.DB, rec inventory.IdempotencyRecord, at any) error {
	return tx.Exec(insertKeySQL, rec.Key, rec.Operation, rec.RequestHash, rec.ProductID, at).Error
}

// UpdateProduct runs fn on the locked product row and saves its changes.
func (s *Store) UpdateProduct(ctx context.Context, id int64, key inventory.IdempotencyRecord, fn func(*inventory.Product) (bool, error)) (inventory.Product, error) {
	var p inventory.Product
	err := s.write(ctx, func(tx *gorm.DB) error {
		var err error
		if p, err = s.lockProduct(tx, id); err != nil {
			return err
		}
		changed, err := fn(&p)
		if err != nil {
			return err
		}
		if key.Key != "" {
			if err := insertIdempotencyKey(tx, key, time.Now().UTC()); err != nil {
				return err
			}
		}
		if !changed {
			return nil
		}
		if p.Revision, err = nextRevision(tx); err != nil {
			return err
		}
		return tx.Exec(`UPDATE products SET sku = ?, name = ?, price_micros = ?, threshold = ?, backorder_limit = ?, tracked = ?, version = ?,
				updated_at = ?, revision = ? WHERE id = ?`,
			p.SKU, p.Name, int64(p.Price), p.Threshold, p.BackorderLimit, !p.Untracked, p.Version, p.UpdatedAt, p.Revision, p.ID).Error
	})
	return p, err
}

// IdempotencyRecord returns the record of a product mutation's key.
func (s *Store) IdempotencyRecord(ctx context.Context, key string) (inventory.IdempotencyRecord, bool, error) {
	var rows []inventory.IdempotencyRecord
	err := s.db.WithContext(ctx).Raw(
		"SELECT key, operation, request_hash, product_id FROM idempotency_keys WHERE key = ?", key).Scan(&rows).Error
	if err != nil || len(rows) == 0 {
		return inventory.IdempotencyRecord{}, false, translate(err)
	}
	return rows[0], true, nil
}

// lockProduct reads a product and, on PostgreSQL, locks its row until the
// transaction ends.
func (s *Store) lockProduct(tx *gorm.DB, id int64) (inventory.Product, error) {
	var rows []productRow
	if err := tx.Raw("SELECT "+productColumns+" FROM products WHERE id = ?"+s.d.ForUpdate(), id).Scan(&rows).Error; err != nil {
		return inventory.Product{}, err
	}
	if len(rows) == 0 {
		return inventory.Product{}, inventory.Errorf(inventory.CodeNotFound, "product %d not found", id)
	}
	return rows[0].product(), nil
}

// Product returns a product by ID.
func (s *Store) Product(ctx context.Context, id int64) (inventory.Product, error) {
	var rows []productRow
	if err := s.db.WithContext(ctx).Raw("SELECT "+productColumns+" FROM products WHERE id = ?", id).Scan(&rows).Error; err != nil {
		return inventory.Product{}, translate(err)
	}
	if len(rows) == 0 {
		return inventory.Product{}, inventory.Errorf(inventory.CodeNotFound, "product %d not found", id)
	}
	return rows[0].product(), nil
}

// ProductIDs returns a page of the IDs of the products that match f.
func (s *Store) ProductIDs(ctx context.Context, f inventory.ProductFilter, afterID int64, limit int) (inventory.IDPage, error) {
	where, args := productWhere(f)
	where = append(where, "id > ?")
	args = append(args, afterID, limit+1)
	var ids []int64
	err := s.db.WithContext(ctx).Raw("SELECT id FROM products WHERE "+strings.Join(where, " AND ")+" ORDER BY id LIMIT ?", args...).Scan(&ids).Error
	if err != nil {
		return inventory.IDPage{}, translate(err)
	}
	return inventory.IDPage{IDs: ids[:min(len(ids), limit)], HasNext: len(ids) > limit}, nil
}

// CountProducts counts the products that match f.
func (s *Store) CountProducts(ctx context.Context, f inventory.ProductFilter) (int, error) {
	where, args := productWhere(f)
	var n int
	err := s.db.WithContext(ctx).Raw("SELECT count(*) FROM products WHERE "+strings.Join(where, " AND "), args...).Scan(&n).Error
	return n, translate(err)
}

func productWhere(f inventory.ProductFilter) ([]string, []any) {
	where, args := []string{"1 = 1"}, []any{}
	if f.Text != "" {
		pattern := "%" + escapeLike(strings.ToLower(f.Text)) + "%"
		where = append(where, `(lower(sku) LIKE ? ESCAPE '\' OR lower(name) LIKE ? ESCAPE '\')`)
		args = append(args, pattern, pattern)
	}
	if f.LowStock != nil {
		if *f.LowStock {
			where = append(where, "tracked AND NOT bundle AND "+availableSQL+" < threshold")
		} else {
			where = append(where, "NOT (tracked AND NOT bundle AND "+availableSQL+" < threshold)")
		}
	}
	return where, args
}

// availableSQL is a product row's available stock, as
// inventory.Product.Available defines it, for filters that run in SQL
// (with Product.LowStock's: an untracked product is never low).
const availableSQL = "(stock - reserved - damaged - quality_control - safety_stock)"

// escapeLike escapes the LIKE wildcards in s, with backslash as the escape.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
