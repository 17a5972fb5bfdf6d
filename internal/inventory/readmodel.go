package inventory

import (
	"context"

	"github.com/shopstack/inventory/internal/readlog"
)

// ReadModel is a per-replica cache of products and their levels that
// answers reads from memory (Config.ReadModel). It is a cache of the
// database, never a source of truth: stock writes read the database under
// the lock and never consult it, so a wrong read model can make a read
// stale, never a write wrong.
//
// Its StockReader methods answer what it holds and read the rest from the
// database. The service keeps it current: it is told of every change this
// replica commits before the change is acknowledged (so a client reads its
// own writes on this replica), and woken whenever other replicas may have
// committed, after which it reads the ledger and the catalog's edits.
type ReadModel interface {
	StockReader
	// Committed is told of a stock transaction this replica committed:
	// each StockTx holds its level and its product as they are after it
	// (ReadSeq says which state it changed). It must not block.
	Committed(txs []*StockTx)
	// ProductSaved is told of a product this replica created or edited.
	// It must not block.
	ProductSaved(p Product)
	// Wake says that the ledger or the catalog may have advanced on
	// another replica (a nudge, or the poll's tick). It must not block.
	Wake()
	// Stats describes the read model now.
	Stats() ReadModelStats
	// Current reports whether the products and pages deps records are
	// still what the read model holds.
	Current(deps readlog.Deps) bool
}

// ReadModelStats describe a ReadModel, for metrics.
type ReadModelStats struct {
	// Hits and Misses count products asked for since start: answered from
	// memory, or read from the database.
	Hits, Misses int64
	// Products is how many products it holds, and Capacity its bound.
	Products, Capacity int
	// Seq is the ledger sequence it is at: every change up to it is in it.
	// LedgerSeq is the highest sequence it knows committed.
	Seq, LedgerSeq int64
}

// Change is a position in a change log, and the product changed there: a
// ledger row's sequence, or a product edit's catalog revision.
type Change struct {
	Pos       int64
	ProductID int64
}

// Consistency says where a read is answered.
type Consistency int

const (
	// ReadCached reads from the replica's read model: a client's own
	// writes on this replica at once, other replicas' about one pub/sub
	// hop later (the ledger poll interval at worst).
	ReadCached Consistency = iota
	// ReadStrong reads the database: every change committed before the
	// read began.
	ReadStrong
)

type consistencyKey struct{}

// WithConsistency returns a context whose reads have consistency c.
func WithConsistency(ctx context.Context, c Consistency) context.Context {
	return context.WithValue(ctx, consistencyKey{}, c)
}

// ConsistencyFrom returns the consistency of ctx's reads (ReadCached if
// none was set).
func ConsistencyFrom(ctx context.Context) Consistency {
	c, _ := ctx.Value(consistencyKey{}).(Consistency)
	return c
}
