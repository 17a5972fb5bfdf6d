package inventory

import (
	"context"
	"time"
)

// The persistence the Service needs, as small interfaces by use: what it
// writes (Writer), and what it reads of the catalog, the ledger, the
// reservations and the audit. One store (internal/gormstore) implements
// them all; a decorator implements the one it guards (the database
// breaker guards the Writer), so a method added to it that the decorator
// does not guard does not compile.
//
// Implementations translate their own errors: not-found and uniqueness
// violations become *Error values with CodeNotFound and CodeConflict,
// connectivity failures CodeUnavailable, and ErrVersionConflict /
// ErrDuplicateKey are returned as documented.

// Writer makes every change the Service makes to the database.
type Writer interface {
	// UpdateStocks runs one stock transaction over the levels of works.
	// It locks their products (in ID order) and loads a StockTx per work (in
	// works order; if the product or location does not exist, its Err says
	// so and it must be left alone; a missing level of an existing location
	// starts empty) with the Replays of the work's replay keys (and the
	// audit of a work that asks for it). For a level whose NextExpiry is
	// not after opts.Now it also loads the active items that have expired
	// (StockTx.Expired) and the earliest expiry of the others
	// (StockTx.NextActiveExpiry). It loads and locks the reservations of
	// opts.Reservations, allocates opts.NewReservations IDs, and calls
	// cb.Apply with the set.
	//
	// Then it writes what Apply left: for every level that appended
	// movements or changed its NextExpiry, the level (compare-and-set on its
	// version, and only if the level's fence is not newer than the work's,
	// which it records; the zero Fence marks a write made without a lease,
	// which neither checks nor moves the level's fence), the product totals
	// and the movements, with increasing sequences in works order; the
	// final refusals recorded; and the reservations the set records as
	// created, closed and extended. A failed compare-and-set is
	// ErrVersionConflict; a concurrently used idempotency key is
	// ErrDuplicateKey. cb.BeforeCommit (if set) runs after Apply, as late as
	// the store can before writing and committing; its error rolls
	// everything back. If Apply fails, nothing is written and its error is
	// returned. After the commit the movements carry their sequences, the
	// levels their new version and fence, and the products their LastSeq.
	UpdateStocks(ctx context.Context, works []LevelWork, opts StockOptions, cb StockCallbacks) error
	// CreateProduct inserts p and, if initial is not nil, the product's first
	// movement (which must be applied to tx state first) in one transaction;
	// a bundle (p.Bundle) with its components.
	// It fills p.ID and initial.Seq. A taken SKU is CodeConflict; a taken
	// idempotency key is ErrDuplicateKey.
	CreateProduct(ctx context.Context, p *Product, initial *StockTx, key IdempotencyRecord) error
	// UpdateProduct runs fn on the product with its row locked and saves the
	// result if fn reports a change.
	UpdateProduct(ctx context.Context, id int64, key IdempotencyRecord, fn func(p *Product) (changed bool, err error)) (Product, error)
	CreateLocation(ctx context.Context, l *Location) error
	// CreateTransfer inserts a new (draft) transfer with its items and
	// fills in its ID. A taken idempotency key is ErrDuplicateKey; an
	// unknown location or product is CodeNotFound.
	CreateTransfer(ctx context.Context, t *Transfer) error
	// LockEpoch returns the current lock epoch if it belongs to domain, or
	// starts a new epoch for domain. Replicas that start together agree on
	// one epoch.
	LockEpoch(ctx context.Context, domain string) (int64, error)
}

// Catalog reads products, their stock and locations. Its StockReader
// methods read the database itself: they are exact.
type Catalog interface {
	StockReader
	Product(ctx context.Context, id int64) (Product, error)
	// IdempotencyRecord looks up a key recorded by a product mutation.
	IdempotencyRecord(ctx context.Context, key string) (IdempotencyRecord, bool, error)
	// BundleComponents returns the components of the bundles among ids.
	BundleComponents(ctx context.Context, ids []int64) (map[int64][]BundleComponent, error)
	Locations(ctx context.Context) ([]Location, error)
}

// Ledger reads the stock ledger.
type Ledger interface {
	// Movements returns ledger rows as q selects them.
	Movements(ctx context.Context, q MovementQuery) (MovementPage, error)
	// MovementsByProducts returns, for each of productIDs, the page of its
	// ledger rows that q (whose ProductID and ProductIDs it ignores)
	// selects, in one statement whatever the number of products.
	MovementsByProducts(ctx context.Context, productIDs []int64, q MovementQuery) (map[int64]MovementPage, error)
	// LastSeq returns the ledger's watermark: every sequence up to it that
	// was ever taken is committed or never will be, so a reader that has
	// read the ledger up to it has missed nothing below it. Movements with
	// After (ascending) read only up to it.
	LastSeq(ctx context.Context) (int64, error)
}

// Reservations reads reservations.
type Reservations interface {
	// Reservation returns a reservation with its items.
	Reservation(ctx context.Context, id int64) (Reservation, error)
	// ReservationsByIDs returns the reservations of ids that exist, with
	// their items, ordered by ID.
	ReservationsByIDs(ctx context.Context, ids []int64) ([]Reservation, error)
	// Reservations returns up to limit reservations with IDs above afterID
	// that match f at now, ordered by ID.
	Reservations(ctx context.Context, f ReservationFilter, now time.Time, afterID int64, limit int) (ReservationPage, error)
	// ActiveReservations counts the reservations holding stock at now.
	ActiveReservations(ctx context.Context, now time.Time) (int64, error)
	// DueLevels returns up to limit levels holding active items that
	// expired at now.
	DueLevels(ctx context.Context, now time.Time, limit int) ([]LevelKey, error)
	// ExpiredReserved returns, per level of the products, the quantity of
	// active items that expired at now (levels without any are left out).
	ExpiredReserved(ctx context.Context, productIDs []int64, now time.Time) (map[LevelKey]int64, error)
}

// Transfers reads transfers.
type Transfers interface {
	// TransfersByIDs returns the transfers of ids that exist, with their
	// items, ordered by ID.
	TransfersByIDs(ctx context.Context, ids []int64) ([]Transfer, error)
	// TransferByKey returns the transfer created with an idempotency key.
	TransferByKey(ctx context.Context, key string) (Transfer, bool, error)
	// Transfers returns up to limit transfers with IDs above afterID that
	// match f, ordered by ID.
	Transfers(ctx context.Context, f TransferFilter, afterID int64, limit int) (TransferPage, error)
}

// Audit sets levels' stored values beside their history.
type Audit interface {
	// AuditLevels returns, for each level of productIDs at locationIDs
	// (empty: all), its stored values beside the sum of its ledger deltas
	// and of its active reservation items, read in one statement, ordered
	// by product and location.
	AuditLevels(ctx context.Context, productIDs, locationIDs []int64) ([]LevelAudit, error)
	// AuditTransfers returns, for each item of the transfers ids (empty:
	// all), its units in transit beside what its ledger rows say, read in
	// one statement, ordered by transfer and product.
	AuditTransfers(ctx context.Context, ids []int64) ([]TransferAudit, error)
}

// StockReader reads products with their levels. The Catalog reads the
// database; a ReadModel answers from memory what it can and reads the rest
// from the Catalog. Each method's cost in statements does not grow with the
// number of products it returns.
type StockReader interface {
	// ProductStocks returns the products of ids that exist, each with its
	// levels as of one snapshot, ordered by ID.
	ProductStocks(ctx context.Context, ids []int64) ([]ProductStock, error)
	// ProductStockBySKU returns the product with a (normalized) SKU and its
	// levels; an unknown SKU is CodeNotFound.
	ProductStockBySKU(ctx context.Context, sku string) (ProductStock, error)
	// ProductIDs returns up to limit IDs above afterID of the products that
	// match f.
	ProductIDs(ctx context.Context, f ProductFilter, afterID int64, limit int) (IDPage, error)
	// CountProducts counts the products that match f.
	CountProducts(ctx context.Context, f ProductFilter) (int, error)
}

// StockCallbacks are the points at which a stock transaction calls back;
// see Writer.UpdateStocks.
type StockCallbacks struct {
	Apply        func(set *StockSet) error
	BeforeCommit func() error
}

// StockOptions are what a stock transaction loads besides its levels; see
// Writer.UpdateStocks.
type StockOptions struct {
	// Now is the transaction's clock reading.
	Now time.Time
	// Reservations are loaded and locked, with their items.
	Reservations []int64
	// NewReservations is how many reservation IDs to allocate.
	NewReservations int
	// Transfers are loaded and locked, with their items.
	Transfers []int64
	// SkipLocked, on a store with row locks, does not wait for a product
	// row that another transaction holds: the StockTx of its levels get
	// ErrLevelBusy as their Err and are left alone.
	SkipLocked bool
}

// LevelWork is one level's part of a stock transaction.
type LevelWork struct {
	Key LevelKey
	// Fence is the lease the level is written under.
	Fence Fence
	// ReplayKeys are idempotency keys whose existing movements the
	// transaction loads into the level's StockTx.Replays.
	ReplayKeys []string
	// Audit has the transaction load the level's audit (StockTx.Audit).
	Audit bool
}

// IdempotencyRecord remembers a product mutation made with an idempotency
// key, so a retry returns the original result.
type IdempotencyRecord struct {
	Key         string
	Operation   string
	RequestHash string
	ProductID   int64
}
