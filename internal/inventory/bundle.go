package inventory

import (
	"cmp"
	"fmt"
	"slices"
)

// A bundle (a kit) is a product made of other products, with no stock of
// its own: its available units at a location are as many as its
// components' available units there make (BundleStock), and selling or
// reserving it takes its components' units, all or nothing, in one
// transaction, each ledger row naming the bundle. Its composition is fixed
// when it is created, and a product is a bundle from its creation or
// never, so what a service learns of a bundle stays true.

// MaxBundleComponents bounds a bundle's components.
const MaxBundleComponents = 20

// BundleComponent is one product of a bundle and how many units of it one
// bundle takes.
type BundleComponent struct {
	ProductID int64
	Quantity  int64
}

// NewBundle is the input of Service.CreateBundle.
type NewBundle struct {
	SKU        string
	Name       string
	Price      Price
	Threshold  int64
	Components []BundleComponent
	// IdempotencyKey makes a retry return the bundle the first request
	// made.
	IdempotencyKey string
}

// OpCreateBundle is the operation name recorded with createBundle's keys.
const OpCreateBundle = "createBundle"

// Normalize checks nb, sorts its components by product, and sums the
// quantities of a product named twice.
func (nb *NewBundle) Normalize() error {
	np := NewProduct{SKU: nb.SKU, Name: nb.Name, Price: nb.Price, Threshold: nb.Threshold, IdempotencyKey: nb.IdempotencyKey}
	if err := np.Normalize(); err != nil {
		return err
	}
	nb.SKU, nb.Name = np.SKU, np.Name
	if len(nb.Components) == 0 || len(nb.Components) > MaxBundleComponents {
		return Invalid("components", "a bundle has 1 to %d components", MaxBundleComponents)
	}
	nb.Components = slices.Clone(nb.Components)
	for i, c := range nb.Components {
		if c.ProductID <= 0 {
			return Errorf(CodeNotFound, "product %d not found", c.ProductID)
		}
		if c.Quantity < 1 || c.Quantity > MaxQuantity {
			return Invalid(ItemField("components", i, "quantity"), "a component's quantity must be between 1 and %d", MaxQuantity)
		}
	}
	slices.SortFunc(nb.Components, func(a, b BundleComponent) int { return cmp.Compare(a.ProductID, b.ProductID) })
	nb.Components = SumLines(nb.Components, func(c BundleComponent) int64 { return c.ProductID },
		func(c *BundleComponent) *int64 { return &c.Quantity })
	for _, c := range nb.Components {
		if c.Quantity > MaxQuantity {
			return Invalid("components", "a component's quantity must be between 1 and %d", MaxQuantity)
		}
	}
	return nil
}

// CheckComponents refuses components that are bundles: a bundle cannot
// contain a bundle (nor, so, itself). comps are the components' products.
func (nb NewBundle) CheckComponents(comps []Product) error {
	for _, p := range comps {
		if p.Bundle {
			return Invalid("components", "product %s is a bundle; a bundle cannot contain a bundle", p.SKU)
		}
	}
	return nil
}

// Fingerprint of a (normalized) new bundle.
func (nb NewBundle) Fingerprint() string {
	fields := []string{nb.SKU, nb.Name, nb.Price.String(), itoa(nb.Threshold)}
	for _, c := range nb.Components {
		fields = append(fields, itoa(c.ProductID), itoa(c.Quantity))
	}
	return requestHash(OpCreateBundle, fields...)
}

// Product is the bundle nb makes, before it is stored.
func (nb NewBundle) Product() Product {
	return Product{SKU: nb.SKU, Name: nb.Name, Price: nb.Price, Threshold: nb.Threshold, Bundle: true,
		Components: nb.Components, Version: 1}
}

// BundleError is the cause of a request refused because a product it
// names as having stock of its own is a bundle. A service that did not
// know the product is a bundle learns its components from it.
type BundleError struct{ ProductID int64 }

func (e *BundleError) Error() string { return fmt.Sprintf("product %d is a bundle", e.ProductID) }

// bundleStockError is the client's error for a change of a bundle's own
// stock.
func bundleStockError(p *Product) *Error {
	return &Error{Code: CodeBadInput, Field: "productId",
		Message: fmt.Sprintf("product %s is a bundle: it has no stock of its own; sell or reserve it, or change its components' stock", p.SKU),
		Err:     &BundleError{ProductID: p.ID}}
}

// BundleLines are the component lines of n units of a bundle at a
// location: one per component, each naming the bundle. No line may ask
// more than MaxQuantity units (BAD_USER_INPUT).
func BundleLines(bundleID int64, comps []BundleComponent, locationID, n int64) ([]ReservationItem, error) {
	out := make([]ReservationItem, len(comps))
	most := int64(1)
	for i, c := range comps {
		most = max(most, c.Quantity)
		out[i] = ReservationItem{ProductID: c.ProductID, LocationID: locationID, Quantity: c.Quantity * n, BundleID: bundleID, Active: true}
	}
	if n > MaxQuantity/most {
		return nil, Invalid("quantity", "quantity must be at most %d bundles", MaxQuantity/most)
	}
	return out, nil
}

// BundleStock makes a bundle's stock from its components' (parts, by
// product ID): at each location where every component has a level, the
// bundle's level holds as many bundles as the components' available units
// make, the minimum over them of floor(available / quantity), as its
// on-hand and available units (below zero where a component is
// backordered). Untracked components limit nothing, unless all are. The
// level's version and time follow its components', so they change
// whenever a component's level does, and the product's totals are its
// levels' sums.
func BundleStock(b Product, parts map[int64]ProductStock) ProductStock {
	ps := ProductStock{Product: b}
	ps.Product.Stock, ps.Product.Reserved, ps.Product.States, ps.Product.Backordered = 0, 0, States{}, 0
	allUntracked := !slices.ContainsFunc(b.Components, func(c BundleComponent) bool { return !parts[c.ProductID].Product.Untracked })
	ps.Product.Untracked = allUntracked
	byLoc := map[int64]*Level{}
	var locs []int64
	for i, c := range b.Components {
		part, ok := parts[c.ProductID]
		if !ok {
			return ps
		}
		ps.Product.LastSeq = max(ps.Product.LastSeq, part.Product.LastSeq)
		seen := map[int64]bool{}
		for _, l := range part.Levels {
			seen[l.LocationID] = true
			bl := byLoc[l.LocationID]
			if bl == nil {
				if i > 0 {
					continue // a component before had no level here
				}
				bl = &Level{ProductID: b.ID, LocationID: l.LocationID, Stock: MaxStock}
				byLoc[l.LocationID] = bl
				locs = append(locs, l.LocationID)
			}
			bl.Version += l.Version
			if l.UpdatedAt.After(bl.UpdatedAt) {
				bl.UpdatedAt = l.UpdatedAt
			}
			bl.Fence = Fence{}
			if part.Product.Untracked && !allUntracked {
				continue
			}
			bl.Stock = min(bl.Stock, floorDiv(l.Available(), c.Quantity))
		}
		for loc := range byLoc {
			if !seen[loc] {
				delete(byLoc, loc)
			}
		}
	}
	slices.Sort(locs)
	for _, loc := range locs {
		if l := byLoc[loc]; l != nil {
			ps.Levels = append(ps.Levels, *l)
			ps.Product.Stock += l.Stock
			ps.Product.Backordered += l.Backordered()
		}
	}
	return ps
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
