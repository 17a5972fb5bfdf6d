package readmodel

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/shopstack/inventory/internal/inventory"
)

// entry is what the view knows of one product: its stock and levels
// (complete), or only how new a state must be to be taken (a floor, left
// when the view learnt of a change it could not apply).
type entry struct {
	ps       inventory.ProductStock
	complete bool
	// seq and version are the floor of an incomplete entry; a complete
	// one's are ps.Product's LastSeq and Version.
	seq, version int64
	slot         int         // its place on the clock
	used         atomic.Bool // read since the clock's hand last passed
	// stamp is new with every state the entry takes: an answer rendered
	// from the entry is current while the stamp is the one it read.
	stamp uint64
}

func (e *entry) at() (seq, version int64) {
	if e.complete {
		return e.ps.Product.LastSeq, e.ps.Product.Version
	}
	return e.seq, e.version
}

// newer reports whether a state as of seq and version is at least as new
// as what e knows, in both stock and attributes.
func (e *entry) newer(seq, version int64) bool {
	s, ver := e.at()
	return seq >= s && version >= ver
}

// drop makes e a floor at its own state or a later one.
func (e *entry) drop(seq, version int64) {
	s, ver := e.at()
	e.ps, e.complete = inventory.ProductStock{}, false
	e.seq, e.version = max(s, seq), max(ver, version)
}

// merge takes what is newer in ps, read from the database at once: its
// stock if its ledger sequence is later (its levels one by one if it is
// the same: a level changes without a movement when only its next expiry
// moves), its attributes if their version is later.
func (e *entry) merge(ps inventory.ProductStock) {
	cur := &e.ps
	switch {
	case ps.Product.LastSeq > cur.Product.LastSeq:
		setStock(&cur.Product, ps.Product)
		cur.Levels = slices.Clone(ps.Levels)
	case ps.Product.LastSeq == cur.Product.LastSeq:
		for _, l := range ps.Levels {
			putLevel(cur, l)
		}
	}
	if ps.Product.Version > cur.Product.Version {
		setAttributes(&cur.Product, ps.Product)
	}
}

// setStock copies the stock of from into p.
func setStock(p *inventory.Product, from inventory.Product) {
	p.Stock, p.Reserved, p.States, p.LowStockAlerted, p.LastSeq = from.Stock, from.Reserved, from.States, from.LowStockAlerted, from.LastSeq
	p.Backordered = from.Backordered
}

// setAttributes copies the attributes of from into p.
func setAttributes(p *inventory.Product, from inventory.Product) {
	p.SKU, p.Name, p.Price, p.Threshold, p.BackorderLimit, p.Untracked = from.SKU, from.Name, from.Price, from.Threshold, from.BackorderLimit, from.Untracked
	p.Version, p.Revision, p.CreatedAt, p.UpdatedAt = from.Version, from.Revision, from.CreatedAt, from.UpdatedAt
}

// putLevel puts l among ps's levels, in location order, unless ps holds a
// later version of it.
func putLevel(ps *inventory.ProductStock, l inventory.Level) {
	i, found := slices.BinarySearchFunc(ps.Levels, l.LocationID, func(x inventory.Level, id int64) int {
		return cmp.Compare(x.LocationID, id)
	})
	switch {
	case !found:
		ps.Levels = slices.Insert(ps.Levels, i, l)
	case ps.Levels[i].Version <= l.Version:
		ps.Levels[i] = l
	}
}

// clone returns a copy of ps that shares nothing with it.
func clone(ps inventory.ProductStock) inventory.ProductStock {
	ps.Levels = slices.Clone(ps.Levels)
	return ps
}
