package gormstore

import (
	"context"

	"github.com/shopstack/inventory/internal/inventory"
)

// Reading "after the last position seen" never skips a change. The catalog
// is numbered from a one-row counter whose row lock is held to the commit
// (only product mutations take it), so a reader that sees a revision sees
// every revision below it. The ledger is read up to its watermark
// (LastSeq), below which every sequence taken has committed or never will.

// LedgerChanges returns, in order, the sequence and product of up to limit
// ledger rows after seq, up to the watermark (LastSeq).
func (s *Store) LedgerChanges(ctx context.Context, after int64, limit int) ([]inventory.Change, error) {
	upTo, err := s.LastSeq(ctx)
	if err != nil {
		return nil, err
	}
	var out []inventory.Change
	err = s.db.WithContext(ctx).Raw("SELECT seq AS pos, product_id FROM stock_movements WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
		after, upTo, limit).Scan(&out).Error
	return out, translate(err)
}

// CatalogChanges returns, in order, the revision and ID of up to limit
// products created or edited after revision after (a product edited twice
// appears once, at its latest revision).
func (s *Store) CatalogChanges(ctx context.Context, after int64, limit int) ([]inventory.Change, error) {
	var out []inventory.Change
	err := s.db.WithContext(ctx).Raw("SELECT revision AS pos, id AS product_id FROM products WHERE revision > ? ORDER BY revision LIMIT ?",
		after, limit).Scan(&out).Error
	return out, translate(err)
}

// LastRevision returns the highest committed catalog revision.
func (s *Store) LastRevision(ctx context.Context) (int64, error) {
	var last int64
	err := s.db.WithContext(ctx).Raw("SELECT last FROM catalog_sequence WHERE id = 1").Scan(&last).Error
	return last, translate(err)
}
