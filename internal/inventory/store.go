package inventory

import "context"

// Store is the persistence the Service needs. Implementations translate
// their own errors: not-found and uniqueness violations become *Error values
// with CodeNotFound and CodeConflict, connectivity failures CodeUnavailable,
// and ErrVersionConflict / ErrDuplicateKey are returned as documented.
type Store interface {
	// CreateProduct inserts p and, if initial is not nil, the product's first
	// movement (which must be applied to tx state first) in one transaction.
	// It fills p.ID and initial.Seq. A taken SKU is CodeConflict; a taken
	// idempotency key is ErrDuplicateKey.
	CreateProduct(ctx context.Context, p *Product, initial *StockTx, key IdempotencyRecord) error
	// UpdateProduct runs fn on the product with its row locked and saves the
	// result if fn reports a change.
	UpdateProduct(ctx context.Context, id int64, key IdempotencyRecord, fn func(p *Product) (changed bool, err error)) (Product, error)
	// IdempotencyRecord looks up a key recorded by a product mutation.
	IdempotencyRecord(ctx context.Context, key string) (IdempotencyRecord, bool, error)

	Product(ctx context.Context, id int64) (Product, error)
	ProductBySKU(ctx context.Context, sku string) (Product, error)
	Products(ctx context.Context, f ProductFilter, afterID int64, limit int) (ProductPage, error)
	CountProducts(ctx context.Context, f ProductFilter) (int, error)

	CreateLocation(ctx context.Context, l *Location) error
	Location(ctx context.Context, id int64) (Location, error)
	Locations(ctx context.Context) ([]Location, error)

	// Levels returns the product's stock levels ordered by location ID.
	Levels(ctx context.Context, productID int64) ([]Level, error)

	// UpdateStocks runs one stock transaction over the levels of works, each
	// of a different product. It locks their products (in ID order), loads
	// a StockTx per work (in works order; if the product or location does
	// not exist, its Err says so and it must be left alone; a missing level
	// of an existing location starts empty), with the Replays of the work's
	// replay keys, and calls apply. Then, for every StockTx that appended
	// movements, it writes the level (compare-and-set on its version, and
	// only if the level's fence is not newer than the work's, which it
	// records; the zero Fence marks a write made without a lease, which
	// neither checks nor moves the level's fence), the product totals and
	// the movements, with consecutive sequences in works order. A failed
	// compare-and-set is ErrVersionConflict; a concurrently used idempotency
	// key is ErrDuplicateKey. beforeCommit (if not nil) runs after apply, as
	// late as the store can before writing and committing; its error rolls
	// everything back. If apply fails, nothing is written and its error is
	// returned.
	UpdateStocks(ctx context.Context, works []LevelWork, apply func(txs []*StockTx) error, beforeCommit func() error) error

	// Movements returns ledger rows as q selects them.
	Movements(ctx context.Context, q MovementQuery) (MovementPage, error)
	// LastSeq returns the highest committed ledger sequence.
	LastSeq(ctx context.Context) (int64, error)
	// MaxLeaseToken returns the highest fencing token recorded on any level,
	// whatever its epoch.
	MaxLeaseToken(ctx context.Context) (int64, error)
	// LockEpoch returns the current lock epoch if it belongs to domain, or
	// starts a new epoch for domain. Replicas that start together agree on
	// one epoch.
	LockEpoch(ctx context.Context, domain string) (int64, error)

	// Ping checks that the database answers.
	Ping(ctx context.Context) error
}

// LevelWork is one level's part of a stock transaction.
type LevelWork struct {
	Key LevelKey
	// Fence is the lease the level is written under.
	Fence Fence
	// ReplayKeys are idempotency keys whose existing movements the
	// transaction loads into the level's StockTx.Replays.
	ReplayKeys []string
}

// IdempotencyRecord remembers a product mutation made with an idempotency
// key, so a retry returns the original result.
type IdempotencyRecord struct {
	Key         string
	Operation   string
	RequestHash string
	ProductID   int64
}
