package gormstore

import (
	"context"

	"gorm.io/gorm"

	"github.com/shopstack/inventory/internal/inventory"
)

const locationColumns = "id, code, name, created_at"

// CreateLocation inserts l and fills its ID.
func (s *Store) CreateLocation(ctx context.Context, l *inventory.Location) error {
	return s.write(ctx, func(tx *gorm.DB) error {
		return tx.Raw("INSERT INTO locations (code, name, created_at) VALUES (?, ?, ?) RETURNING id",
			l.Code, l.Name, l.CreatedAt).Scan(&l.ID).Error
	})
}

// Location returns a location by ID.
func (s *Store) Location(ctx context.Context, id int64) (inventory.Location, error) {
	var rows []locationRow
	if err := s.db.WithContext(ctx).Raw("SELECT "+locationColumns+" FROM locations WHERE id = ?", id).Scan(&rows).Error; err != nil {
		return inventory.Location{}, translate(err)
	}
	if len(rows) == 0 {
		return inventory.Location{}, inventory.Errorf(inventory.CodeNotFound, "location %d not found", id)
	}
	return rows[0].location(), nil
}

// Locations returns all locations ordered by ID.
func (s *Store) Locations(ctx context.Context) ([]inventory.Location, error) {
	var rows []locationRow
	if err := s.db.WithContext(ctx).Raw("SELECT " + locationColumns + " FROM locations ORDER BY id").Scan(&rows).Error; err != nil {
		return nil, translate(err)
	}
	out := make([]inventory.Location, len(rows))
	for i, r := range rows {
		out[i] = r.location()
	}
	return out, nil
}
