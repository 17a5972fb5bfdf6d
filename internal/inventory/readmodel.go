package inventory

import (
	"context"
	"maps"
	"sync"
	"time"
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
	Current(deps ReadDeps) bool
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

// A ReadLog records what a read was answered from, so that an answer
// rendered from it can be served again while all of it is unchanged: the
// products the read model answered (each at a stamp it gives every state it
// holds), whether it used the read model's pages of IDs (valid until the
// catalog changes), and when the answer changes by itself (a reservation
// it counts expires). A read the read model cannot vouch for (one from the
// database, or one whose reservations may have expired) makes the log
// unusable. Its methods are safe for concurrent use.
type ReadLog struct {
	mu       sync.Mutex
	products map[int64]uint64
	catalog  bool
	gen      uint64
	until    time.Time
	unusable bool
}

// NewReadLog returns an empty log.
func NewReadLog() *ReadLog { return &ReadLog{products: map[int64]uint64{}} }

type readLogKey struct{}

// WithReadLog returns a context whose reads are recorded in log.
func WithReadLog(ctx context.Context, log *ReadLog) context.Context {
	return context.WithValue(ctx, readLogKey{}, log)
}

// ReadLogFrom returns the log of ctx's reads, or nil.
func ReadLogFrom(ctx context.Context) *ReadLog {
	log, _ := ctx.Value(readLogKey{}).(*ReadLog)
	return log
}

// Product records that the read used product id as the read model held it
// at stamp.
func (l *ReadLog) Product(id int64, stamp uint64) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.products[id]; ok && old != stamp {
		l.unusable = true // two states of one product in one answer
	}
	l.products[id] = stamp
}

// Catalog records that the read used the read model's pages of IDs, as of
// its catalog generation gen.
func (l *ReadLog) Catalog(gen uint64) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.catalog && l.gen != gen {
		l.unusable = true
	}
	l.catalog, l.gen = true, gen
}

// Until records that the answer changes by itself at t.
func (l *ReadLog) Until(t time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.until.IsZero() || t.Before(l.until) {
		l.until = t
	}
}

// Unusable records a read nobody can vouch for.
func (l *ReadLog) Unusable() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unusable = true
}

// Usable reports whether an answer read as l records can be reused while
// what it records is unchanged.
func (l *ReadLog) Usable() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.unusable
}

// ReadDeps are what a usable ReadLog recorded.
type ReadDeps struct {
	Products map[int64]uint64
	// Catalog is set if the read used pages of IDs, as of generation Gen.
	Catalog bool
	Gen     uint64
	// Until, if not zero, is when the answer changes by itself.
	Until time.Time
}

// Deps returns what l recorded.
func (l *ReadLog) Deps() ReadDeps {
	l.mu.Lock()
	defer l.mu.Unlock()
	return ReadDeps{Products: maps.Clone(l.products), Catalog: l.catalog, Gen: l.gen, Until: l.until}
}
