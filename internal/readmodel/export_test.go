package readmodel

import "github.com/shopstack/inventory/internal/inventory"

// Poison makes the view hold ps for its product, whatever it held: a view
// gone wrong.
func (v *View) Poison(ps inventory.ProductStock) {
	v.mu.Lock()
	defer v.mu.Unlock()
	id := ps.Product.ID
	if e := v.products[id]; e != nil {
		v.update(id, e, func() { e.ps, e.complete = clone(ps), true })
		return
	}
	v.add(id, &entry{ps: clone(ps), complete: true})
}
