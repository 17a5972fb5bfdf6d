// Package readmodel is a per-replica read model of products and their
// stock levels: it answers the service's product reads from memory, and
// reads what it does not hold from the database, keeping it.
//
// It follows the database in sequence order and never goes backwards:
//
//   - Each product it holds is as of a ledger sequence (Product.LastSeq, the
//     product's latest movement, read with it in one statement) and an
//     attribute version. A state is taken only if it is newer.
//   - This replica's commits are applied before they are acknowledged, so a
//     client reads its own writes here: a transaction's state is applied
//     onto the state it changed (its ReadSeq); a product held at another
//     state missed a change, and is dropped to be read again.
//   - Other replicas' commits are found in the ledger (LedgerChanges after
//     the sequence the view is at) and their edits of products in the
//     catalog (CatalogChanges after the revision it is at), whenever the
//     service wakes it (a pub/sub nudge, or the ledger poll's tick); the
//     products it holds that changed are read again, in one statement.
//
// It is a cache, never a judge: stock writes read the database under the
// lock and never consult it. Memory is bounded: it holds at most Capacity
// products, evicting the least recently used (approximately, by the CLOCK
// algorithm) to make room.
package readmodel

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/readlog"
)

// Source is what the view reads: the database.
type Source interface {
	inventory.StockReader
	// LastSeq returns the highest committed ledger sequence.
	LastSeq(ctx context.Context) (int64, error)
	// LastRevision returns the highest committed catalog revision.
	LastRevision(ctx context.Context) (int64, error)
	// LedgerChanges returns, in order, up to limit ledger rows' sequences
	// after seq and their products.
	LedgerChanges(ctx context.Context, after int64, limit int) ([]inventory.Change, error)
	// CatalogChanges returns, in order, up to limit products created or
	// edited after a catalog revision, at their latest revisions.
	CatalogChanges(ctx context.Context, after int64, limit int) ([]inventory.Change, error)
}

// Defaults.
const (
	// DefaultCapacity is how many products a view holds unless told.
	DefaultCapacity = 100_000
	// pageSize bounds the changes read in one statement.
	pageSize = 1024
	// maxPages bounds the cached pages of product IDs and counts.
	maxPages = 4096
)

// Config is what a View is built from.
type Config struct {
	Source Source
	// Capacity bounds the products held; zero means DefaultCapacity.
	Capacity int
	// Logger receives the view's warnings; nil discards them.
	Logger *slog.Logger
}

// View is a read model. Its methods are safe for concurrent use.
type View struct {
	src Source
	log *slog.Logger
	cap int

	hits, misses atomic.Int64

	mu       sync.RWMutex
	products map[int64]*entry
	bySKU    map[string]int64
	clock    clock
	// fills counts the database reads in flight per product: a commit of a
	// product being read leaves a floor the read must reach to be kept.
	fills map[int64]int
	// ledger and catalog are where the view is in the ledger and in the
	// catalog's edits; gen counts the catalog changes it has seen: a cached
	// page of IDs is good while gen is what it was when the page was read.
	ledger, catalog cursor
	gen             uint64
	pages           map[pageKey]cachedPage
	// stamps gives entries their stamps.
	stamps uint64

	wake   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

var _ inventory.ReadModel = (*View)(nil)

// New returns a View. Call Start before the service uses it.
func New(cfg Config) *View {
	v := &View{src: cfg.Source, log: cfg.Logger, cap: cfg.Capacity,
		products: map[int64]*entry{}, bySKU: map[string]int64{}, fills: map[int64]int{}, pages: map[pageKey]cachedPage{},
		wake: make(chan struct{}, 1)}
	if v.cap <= 0 {
		v.cap = DefaultCapacity
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	return v
}

// Start reads where the ledger and the catalog are, and starts following
// them until Close.
func (v *View) Start(ctx context.Context) error {
	seq, err := v.src.LastSeq(ctx)
	if err != nil {
		return err
	}
	rev, err := v.src.LastRevision(ctx)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.ledger.start(seq)
	v.catalog.start(rev)
	v.mu.Unlock()
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.cancel, v.done = cancel, make(chan struct{})
	go v.run(ctx)
	return nil
}

// Close stops following the database.
func (v *View) Close() {
	if v.cancel != nil {
		v.cancel()
		<-v.done
	}
}

// touch gives e a new stamp: it changed. The caller holds the lock.
func (v *View) touch(e *entry) {
	v.stamps++
	e.stamp = v.stamps
}

// Current reports whether the products and pages deps records are still
// what the view holds.
func (v *View) Current(deps readlog.Deps) bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if deps.Catalog && deps.Gen != v.gen {
		return false
	}
	for id, stamp := range deps.Products {
		e := v.products[id]
		if e == nil || !e.complete || e.stamp != stamp {
			return false
		}
		e.used.Store(true)
	}
	return true
}

// Stats describes the view now.
func (v *View) Stats() inventory.ReadModelStats {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return inventory.ReadModelStats{Hits: v.hits.Load(), Misses: v.misses.Load(), Products: len(v.products), Capacity: v.cap,
		Seq: v.ledger.at, LedgerSeq: v.ledger.end}
}
