// Package readlog records what a read was answered from, so that an answer
// rendered from it (the GraphQL answer cache) can be served again while all
// of it is unchanged. The read model writes to the log of a request's
// context; the answer cache reads it.
package readlog

import (
	"context"
	"maps"
	"sync"
	"time"
)

// A Log records what a read was answered from, so that an answer
// rendered from it can be served again while all of it is unchanged: the
// products the read model answered (each at a stamp it gives every state it
// holds), whether it used the read model's pages of IDs (valid until the
// catalog changes), and when the answer changes by itself (a reservation
// it counts expires). A read the read model cannot vouch for (one from the
// database, or one whose reservations may have expired) makes the log
// unusable. Its methods are safe for concurrent use.
type Log struct {
	mu       sync.Mutex
	products map[int64]uint64
	catalog  bool
	gen      uint64
	until    time.Time
	unusable bool
}

// New returns an empty log.
func New() *Log { return &Log{products: map[int64]uint64{}} }

type key struct{}

// With returns a context whose reads are recorded in log.
func With(ctx context.Context, log *Log) context.Context {
	return context.WithValue(ctx, key{}, log)
}

// From returns the log of ctx's reads, or nil.
func From(ctx context.Context) *Log {
	log, _ := ctx.Value(key{}).(*Log)
	return log
}

// Product records that the read used product id as the read model held it
// at stamp.
func (l *Log) Product(id int64, stamp uint64) {
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
func (l *Log) Catalog(gen uint64) {
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
func (l *Log) Until(t time.Time) {
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
func (l *Log) Unusable() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unusable = true
}

// Usable reports whether an answer read as l records can be reused while
// what it records is unchanged.
func (l *Log) Usable() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.unusable
}

// Deps are what a usable Log recorded.
type Deps struct {
	Products map[int64]uint64
	// Catalog is set if the read used pages of IDs, as of generation Gen.
	Catalog bool
	Gen     uint64
	// Until, if not zero, is when the answer changes by itself.
	Until time.Time
}

// Deps returns what l recorded.
func (l *Log) Deps() Deps {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Deps{Products: maps.Clone(l.products), Catalog: l.catalog, Gen: l.gen, Until: l.until}
}
