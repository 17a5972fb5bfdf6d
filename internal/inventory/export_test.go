package inventory

import (
	"context"

	"github.com/shopstack/inventory/internal/lock"
)

// SetAfterLock installs a hook that runs between acquiring a stock lock and
// its transaction.
func SetAfterLock(s *Service, fn func(ctx context.Context, key LevelKey, lease lock.Lease)) {
	s.afterLock = fn
}
