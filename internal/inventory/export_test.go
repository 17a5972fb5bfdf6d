package inventory

import (
	"context"

	"github.com/shopstack/inventory/internal/lock"
)

// SetAfterLock installs a hook that runs before every transaction of the
// pipeline, with each of its levels' lease (taken for the batch or reused).
func SetAfterLock(s *Service, fn func(ctx context.Context, key LevelKey, lease lock.Lease)) {
	s.afterLock = fn
}

// Waiting returns how many stock requests are queued or in a batch.
func Waiting(s *Service) int64 { return s.pipe.Waiting() }
