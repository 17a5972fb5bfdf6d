package gormstore

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// lockEpochLock is the PostgreSQL advisory lock key that serializes replicas
// deciding the lock epoch at start-up.
const lockEpochLock = 7460222

// LockEpoch returns the latest lock epoch if its domain is domain, or starts
// the next epoch for domain. See inventory.Store.
func (s *Store) LockEpoch(ctx context.Context, domain string) (int64, error) {
	var epoch int64
	err := s.write(ctx, func(tx *gorm.DB) error {
		if s.driver == Postgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", lockEpochLock).Error; err != nil {
				return err
			}
		}
		var rows []struct {
			Epoch  int64
			Domain string
		}
		if err := tx.Raw("SELECT epoch, domain FROM lock_epochs ORDER BY epoch DESC LIMIT 1").Scan(&rows).Error; err != nil {
			return err
		}
		if len(rows) == 1 && rows[0].Domain == domain {
			epoch = rows[0].Epoch
			return nil
		}
		epoch = 1
		if len(rows) == 1 {
			epoch = rows[0].Epoch + 1
		}
		return tx.Exec("INSERT INTO lock_epochs (epoch, domain, started_at) VALUES (?, ?, ?)", epoch, domain, time.Now().UTC()).Error
	})
	return epoch, err
}
