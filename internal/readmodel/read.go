package readmodel

import (
	"cmp"
	"context"
	"reflect"
	"slices"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/readlog"
)

// ProductStocks returns the products of ids that exist, ordered by ID:
// those it holds from memory, the others read from the database in one
// statement (and kept).
func (v *View) ProductStocks(ctx context.Context, ids []int64) ([]inventory.ProductStock, error) {
	out := make([]inventory.ProductStock, 0, len(ids))
	var missing []int64
	log := readlog.From(ctx)
	v.mu.RLock()
	for _, id := range ids {
		if e := v.products[id]; e != nil && e.complete {
			e.used.Store(true)
			out = append(out, clone(e.ps))
			log.Product(id, e.stamp)
		} else {
			missing = append(missing, id)
		}
	}
	v.mu.RUnlock()
	v.hits.Add(int64(len(out)))
	if len(missing) > 0 {
		v.misses.Add(int64(len(missing)))
		read, err := v.fill(log, missing, true, func() ([]inventory.ProductStock, error) { return v.src.ProductStocks(ctx, missing) })
		if err != nil {
			return nil, err
		}
		out = append(out, read...)
	}
	byID := func(a, b inventory.ProductStock) int { return cmp.Compare(a.Product.ID, b.Product.ID) }
	if !slices.IsSortedFunc(out, byID) {
		slices.SortFunc(out, byID)
	}
	return out, nil
}

// ProductStockBySKU returns the product with a (normalized) SKU.
func (v *View) ProductStockBySKU(ctx context.Context, sku string) (inventory.ProductStock, error) {
	log := readlog.From(ctx)
	v.mu.RLock()
	e := v.products[v.bySKU[sku]]
	hit := e != nil && e.complete && e.ps.Product.SKU == sku
	var ps inventory.ProductStock
	if hit {
		e.used.Store(true)
		ps = clone(e.ps)
		log.Product(ps.Product.ID, e.stamp)
	}
	v.mu.RUnlock()
	if hit {
		v.hits.Add(1)
		return ps, nil
	}
	v.misses.Add(1)
	read, err := v.fill(log, nil, true, func() ([]inventory.ProductStock, error) {
		ps, err := v.src.ProductStockBySKU(ctx, sku)
		return []inventory.ProductStock{ps}, err
	})
	if err != nil {
		return inventory.ProductStock{}, err
	}
	return read[0], nil
}

// fill reads products from the database and keeps them (adding those it
// does not hold if add is set); it returns, for each, the newest state the
// view knows, and records it in log. ids are the products read, nil if
// unknown yet (a read by SKU). While the read is in flight, a commit of
// one of its products leaves a floor the read must reach to be kept: it
// may have read the state before the commit.
func (v *View) fill(log *readlog.Log, ids []int64, add bool, read func() ([]inventory.ProductStock, error)) ([]inventory.ProductStock, error) {
	v.mu.Lock()
	v.register(ids, 1)
	v.mu.Unlock()
	stocks, err := read()
	v.mu.Lock()
	defer v.mu.Unlock()
	v.register(ids, -1)
	if err != nil {
		return nil, err
	}
	for i, ps := range stocks {
		stocks[i] = v.keep(ps, add)
		if e := v.products[ps.Product.ID]; e != nil && e.complete && e.ps.Product.LastSeq == stocks[i].Product.LastSeq &&
			e.ps.Product.Version == stocks[i].Product.Version {
			log.Product(ps.Product.ID, e.stamp)
		} else {
			log.Unusable() // not kept: the view cannot vouch for it later
		}
	}
	return stocks, nil
}

// register counts a read of ids (or of an unknown product, if ids is nil)
// in or out of flight. The caller holds the lock.
func (v *View) register(ids []int64, n int) {
	if ids == nil {
		ids = []int64{0} // 0: a product not known yet
	}
	for _, id := range ids {
		if v.fills[id] += n; v.fills[id] == 0 {
			delete(v.fills, id)
		}
	}
}

// reading reports whether a read of product id may be in flight. The
// caller holds the lock.
func (v *View) reading(id int64) bool { return v.fills[id] > 0 || v.fills[0] > 0 }

// keep takes ps, read from the database, where it is newer than what the
// view holds (adding it if the view holds nothing of it and add is set),
// and returns the newest state the view knows. The caller holds the lock.
func (v *View) keep(ps inventory.ProductStock, add bool) inventory.ProductStock {
	id := ps.Product.ID
	e := v.products[id]
	switch {
	case e == nil:
		if add {
			v.add(id, &entry{ps: clone(ps), complete: true})
		}
		return ps
	case !e.complete:
		if e.newer(ps.Product.LastSeq, ps.Product.Version) {
			v.update(id, e, func() { e.ps, e.complete = clone(ps), true })
		}
		return ps
	}
	merged := entry{ps: clone(e.ps)}
	merged.merge(ps)
	if !reflect.DeepEqual(merged.ps, e.ps) {
		v.update(id, e, func() { e.ps = merged.ps })
	}
	return clone(e.ps)
}

// update changes a complete entry with fn, gives it a new stamp, and keeps
// the SKU index right. The caller holds the lock.
func (v *View) update(id int64, e *entry, fn func()) {
	sku := e.ps.Product.SKU
	fn()
	v.touch(e)
	if e.complete && e.ps.Product.SKU == sku {
		return
	}
	if v.bySKU[sku] == id {
		delete(v.bySKU, sku)
	}
	if e.complete {
		v.bySKU[e.ps.Product.SKU] = id
	}
}

// pageKey names a cached page of product IDs (or a count, if count).
type pageKey struct {
	text  string
	after int64
	limit int
	count bool
}

// cachedPage is a page of IDs or a count, good while the view's catalog
// generation is gen: only a product's creation or edit changes which
// products match a filter without lowStock.
type cachedPage struct {
	gen   uint64
	page  inventory.IDPage
	count int
}

// ProductIDs returns a page of the IDs of the products that match f: from
// memory if the view read the page since the catalog last changed. Pages
// filtered by lowStock change with every sale, and are read anew.
func (v *View) ProductIDs(ctx context.Context, f inventory.ProductFilter, afterID int64, limit int) (inventory.IDPage, error) {
	if f.LowStock != nil {
		readlog.From(ctx).Unusable()
		return v.src.ProductIDs(ctx, f, afterID, limit)
	}
	c, err := v.cached(ctx, pageKey{text: f.Text, after: afterID, limit: limit}, func() (cachedPage, error) {
		page, err := v.src.ProductIDs(ctx, f, afterID, limit)
		return cachedPage{page: page}, err
	})
	return inventory.IDPage{IDs: slices.Clone(c.page.IDs), HasNext: c.page.HasNext}, err
}

// CountProducts counts the products that match f, from memory as
// ProductIDs does.
func (v *View) CountProducts(ctx context.Context, f inventory.ProductFilter) (int, error) {
	if f.LowStock != nil {
		readlog.From(ctx).Unusable()
		return v.src.CountProducts(ctx, f)
	}
	c, err := v.cached(ctx, pageKey{text: f.Text, count: true}, func() (cachedPage, error) {
		n, err := v.src.CountProducts(ctx, f)
		return cachedPage{count: n}, err
	})
	return c.count, err
}

// cached returns the page of key, reading and keeping it if the view has
// none of the current catalog generation, and records in ctx's log which
// generation it is of.
func (v *View) cached(ctx context.Context, key pageKey, read func() (cachedPage, error)) (cachedPage, error) {
	log := readlog.From(ctx)
	v.mu.RLock()
	c, ok := v.pages[key]
	gen := v.gen
	v.mu.RUnlock()
	if ok && c.gen == gen {
		log.Catalog(gen)
		return c, nil
	}
	c, err := read()
	if err != nil {
		return cachedPage{}, err
	}
	c.gen = gen
	v.mu.Lock()
	if v.gen == gen { // else the catalog changed during the read
		if len(v.pages) >= maxPages {
			clear(v.pages)
		}
		v.pages[key] = c
		log.Catalog(gen)
	} else {
		log.Unusable()
	}
	v.mu.Unlock()
	return c, nil
}
