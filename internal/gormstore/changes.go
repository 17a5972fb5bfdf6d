package gormstore

import (
	"context"

	"github.com/shopstack/inventory/internal/inventory"
)

// Both logs are numbered from a one-row counter whose row lock is held to
// the commit, so a reader that sees a position sees every position below
// it: reading "after the last position seen" never skips a change.

// LedgerChanges returns, in order, the sequence and product of up to limit
// ledger rows after seq.
func (s *Store) LedgerChanges(ctx context.Context, after int64, limit int) ([]inventory.Change, error) {
	var out []inventory.Change
	err := s.db.WithContext(ctx).Raw("SELECT seq AS pos, product_id FROM stock_movements WHERE seq > ? ORDER BY seq LIMIT ?",
		after, limit).Scan(&out).Error
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
