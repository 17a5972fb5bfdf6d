package gormstore

import (
	"context"
	"strings"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

// productStockSQL reads products with their levels in one statement, so in
// one snapshot: the levels add up to the totals, as of the product's
// last_seq. The caller adds the WHERE clause on p.
var productStockSQL = "SELECT p." + strings.ReplaceAll(productColumns, ", ", ", p.") + `,
		l.location_id AS l_location_id, l.stock AS l_stock, l.reserved AS l_reserved, l.version AS l_version,
		l.lease_epoch AS l_lease_epoch, l.lease_token AS l_lease_token, l.updated_at AS l_updated_at, l.next_expiry AS l_next_expiry,
		l.damaged AS l_damaged, l.quality_control AS l_quality_control, l.safety_stock AS l_safety_stock, l.incoming AS l_incoming
	FROM products p LEFT JOIN stock_levels l ON l.product_id = p.id`

// productStockRow is a row of productStockSQL: a product and one of its
// levels, if it has any.
type productStockRow struct {
	P           productRow `gorm:"embedded"`
	LLocationID *int64     `gorm:"column:l_location_id"`
	LStock      int64      `gorm:"column:l_stock"`
	LReserved   int64      `gorm:"column:l_reserved"`
	LVersion    int64      `gorm:"column:l_version"`
	LLeaseEpoch int64      `gorm:"column:l_lease_epoch"`
	LLeaseToken int64      `gorm:"column:l_lease_token"`
	LUpdatedAt  *time.Time `gorm:"column:l_updated_at"`
	LNextExpiry *time.Time `gorm:"column:l_next_expiry"`
	LDamaged    int64      `gorm:"column:l_damaged"`
	LQC         int64      `gorm:"column:l_quality_control"`
	LSafety     int64      `gorm:"column:l_safety_stock"`
	LIncoming   int64      `gorm:"column:l_incoming"`
}

func (r productStockRow) level() (inventory.Level, bool) {
	if r.LLocationID == nil {
		return inventory.Level{}, false
	}
	l := levelRow{ProductID: r.P.ID, LocationID: *r.LLocationID, Stock: r.LStock, Reserved: r.LReserved, Version: r.LVersion,
		LeaseEpoch: r.LLeaseEpoch, LeaseToken: r.LLeaseToken,
		StateCols: StateCols{Damaged: r.LDamaged, QualityControl: r.LQC, SafetyStock: r.LSafety, Incoming: r.LIncoming}}
	if r.LUpdatedAt != nil {
		l.UpdatedAt = *r.LUpdatedAt
	}
	if r.LNextExpiry != nil {
		l.NextExpiry.Time, l.NextExpiry.Valid = *r.LNextExpiry, true
	}
	return l.level(), true
}

// productStocks groups rows ordered by product into ProductStocks.
func productStocks(rows []productStockRow) []inventory.ProductStock {
	var out []inventory.ProductStock
	for _, r := range rows {
		if n := len(out); n == 0 || out[n-1].Product.ID != r.P.ID {
			out = append(out, inventory.ProductStock{Product: r.P.product()})
		}
		if l, ok := r.level(); ok {
			last := &out[len(out)-1]
			last.Levels = append(last.Levels, l)
		}
	}
	return out
}

// ProductStocks returns the products of ids with their levels, ordered by
// ID.
func (s *Store) ProductStocks(ctx context.Context, ids []int64) ([]inventory.ProductStock, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []productStockRow
	if err := s.db.WithContext(ctx).Raw(productStockSQL+" WHERE p.id IN ? ORDER BY p.id, l.location_id", ids).Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	return productStocks(rows), nil
}

// ProductStockBySKU returns the product with a (normalized) SKU and its
// levels.
func (s *Store) ProductStockBySKU(ctx context.Context, sku string) (inventory.ProductStock, error) {
	var rows []productStockRow
	if err := s.db.WithContext(ctx).Raw(productStockSQL+" WHERE p.sku = ? ORDER BY l.location_id", sku).Scan(&rows).Error; err != nil {
		return inventory.ProductStock{}, translate(err)
	}
	if len(rows) == 0 {
		return inventory.ProductStock{}, inventory.Errorf(inventory.CodeNotFound, "product with SKU %q not found", sku)
	}
	return productStocks(rows)[0], nil
}
