package readmodel

import (
	"reflect"

	"github.com/shopstack/inventory/internal/inventory"
)

// Committed applies a transaction this replica committed, before it is
// acknowledged.
func (v *View) Committed(txs []*inventory.StockTx) {
	var first, last int64
	var order []int64
	levels := map[int64][]*inventory.StockTx{} // by product: its levels' transactions
	for _, tx := range txs {
		id := tx.Product.ID
		if levels[id] == nil {
			order = append(order, id)
		}
		levels[id] = append(levels[id], tx)
		for _, m := range tx.Movements() {
			if first == 0 || m.Seq < first {
				first = m.Seq
			}
			last = max(last, m.Seq)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range order {
		v.apply(levels[id])
	}
	if last > 0 {
		v.ledger.committed(first, last)
	}
}

// apply applies the state after a transaction of one product's levels:
// txs share the product, and changed it as of their ReadSeq. The caller
// holds the lock.
func (v *View) apply(txs []*inventory.StockTx) {
	p, readSeq := *txs[0].Product, txs[0].ReadSeq
	e := v.products[p.ID]
	switch {
	case e == nil:
		if v.reading(p.ID) {
			v.add(p.ID, &entry{seq: p.LastSeq, version: p.Version})
		}
	case !e.complete:
		e.drop(p.LastSeq, p.Version)
		v.touch(e)
	case e.ps.Product.LastSeq == readSeq:
		next := clone(e.ps)
		setStock(&next.Product, p)
		for _, tx := range txs {
			putLevel(&next, tx.Level)
		}
		if p.Version > next.Product.Version {
			setAttributes(&next.Product, p)
		}
		if !reflect.DeepEqual(next, e.ps) { // a transaction that refused everything changed nothing
			v.update(p.ID, e, func() { e.ps = next })
		}
	case e.ps.Product.LastSeq < p.LastSeq:
		// The view missed a change of the product (another replica's, not
		// read yet): what it holds is no base for this one. The next read
		// takes the product from the database.
		v.update(p.ID, e, func() { e.drop(p.LastSeq, p.Version) })
	case p.Version > e.ps.Product.Version:
		// The view holds newer stock already, from the database.
		v.update(p.ID, e, func() { setAttributes(&e.ps.Product, p) })
	}
}

// ProductSaved applies a product this replica created or edited: its
// attributes, if they are newer. Which products match a filter may have
// changed, so the cached pages of IDs are dropped.
func (v *View) ProductSaved(p inventory.Product) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen++
	v.catalog.committed(p.Revision, p.Revision)
	e := v.products[p.ID]
	switch {
	case e == nil:
		if v.reading(p.ID) {
			v.add(p.ID, &entry{version: p.Version})
		}
	case !e.complete:
		e.drop(0, p.Version)
		v.touch(e)
	case p.Version > e.ps.Product.Version:
		v.update(p.ID, e, func() { setAttributes(&e.ps.Product, p) })
	}
}
