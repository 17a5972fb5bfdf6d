package readmodel

// clock chooses which product to evict when the view is full: the CLOCK
// algorithm, an approximation of least-recently-used whose reads only set
// a flag (under the view's read lock), never reorder a list.
type clock struct {
	slots []int64 // product IDs; a slot is reused by the entry that evicts its product
	hand  int
}

// victim advances the hand past recently used entries, clearing their
// flags, and returns the slot of the first entry not used since the hand
// last passed it. The caller holds the view's lock; entries is not empty.
func (c *clock) victim(entries map[int64]*entry) int {
	for {
		slot := c.hand
		c.hand = (c.hand + 1) % len(c.slots)
		e := entries[c.slots[slot]]
		if e == nil || !e.used.Swap(false) {
			return slot
		}
	}
}

// add places a new entry for product id, evicting another if the view
// holds capacity products already. The caller holds the view's lock.
func (v *View) add(id int64, e *entry) {
	if len(v.clock.slots) < v.cap {
		e.slot = len(v.clock.slots)
		v.clock.slots = append(v.clock.slots, id)
	} else {
		e.slot = v.clock.victim(v.products)
		old := v.clock.slots[e.slot]
		if o := v.products[old]; o != nil && o.complete && v.bySKU[o.ps.Product.SKU] == old {
			delete(v.bySKU, o.ps.Product.SKU)
		}
		delete(v.products, old)
		v.clock.slots[e.slot] = id
	}
	v.products[id] = e
	v.touch(e)
	if e.complete {
		v.bySKU[e.ps.Product.SKU] = id
	}
}
