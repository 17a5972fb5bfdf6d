package app

import (
	"context"
	"errors"
	"slices"

	"github.com/shopstack/inventory/internal/inventory"
)

// Bundles (inventory/bundle.go): a bundle's stock is read from its
// components', and selling or reserving it takes theirs. A bundle's
// composition never changes and a product is a bundle from its creation
// or never, so the service remembers what it learns of bundles for good.
// A request for a bundle this replica does not know yet reaches the
// bundle's own level, where the transaction refuses it (a bundle has no
// stock of its own, inventory.BundleError); the service then learns the
// bundle's components and runs the request again on them.

// maxCachedBundles bounds the bundles whose components a service
// remembers; a bundle it forgot it learns again (learnedBundle).
const maxCachedBundles = 1 << 16

// bundleComponents returns the components of the bundles among ids (not
// bundles are left out), reading the ones this replica does not know yet.
func (s *Service) bundleComponents(ctx context.Context, ids []int64) (map[int64][]inventory.BundleComponent, error) {
	out := map[int64][]inventory.BundleComponent{}
	var unknown []int64
	for _, id := range ids {
		if comps, ok := s.bundles.get(id); ok {
			out[id] = comps
		} else {
			unknown = append(unknown, id)
		}
	}
	if len(unknown) == 0 {
		return out, nil
	}
	read, err := s.catalog.BundleComponents(ctx, unknown)
	if err != nil {
		return nil, err
	}
	for id, comps := range read {
		s.bundles.put(id, comps)
		out[id] = comps
	}
	return out, nil
}

// learnedBundle reports whether err refused a request for naming a
// bundle as a product with stock of its own, once the bundle's components
// are known (learned now, or by a concurrent request that met the same
// refusal): the request may then run again on them, once.
func (s *Service) learnedBundle(ctx context.Context, err error) (bool, error) {
	be, ok := errors.AsType[*inventory.BundleError](err)
	if !ok {
		return false, nil
	}
	comps, lerr := s.bundleComponents(ctx, []int64{be.ProductID})
	if lerr != nil {
		return false, lerr
	}
	return len(comps) > 0, nil
}

// CreateBundle creates a bundle of existing products, none of them a
// bundle.
func (s *Service) CreateBundle(ctx context.Context, nb inventory.NewBundle) (_ inventory.ProductResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CreateBundle")
	defer func() { endSpan(span, err) }()
	if err := nb.Normalize(); err != nil {
		return inventory.ProductResult{}, err
	}
	hash := nb.Fingerprint()
	rec := inventory.IdempotencyRecord{Key: nb.IdempotencyKey, Operation: inventory.OpCreateBundle, RequestHash: hash}
	if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
		return res, err
	}
	ids := make([]int64, len(nb.Components))
	for i, c := range nb.Components {
		ids[i] = c.ProductID
	}
	// Products are never deleted and never become bundles, so what this
	// read finds holds when the bundle is written.
	comps, err := s.catalog.ProductStocks(ctx, ids)
	if err != nil {
		return inventory.ProductResult{}, err
	}
	if len(comps) != len(ids) {
		for _, id := range ids {
			if !slices.ContainsFunc(comps, func(ps inventory.ProductStock) bool { return ps.Product.ID == id }) {
				e := inventory.Errorf(inventory.CodeNotFound, "product %d not found", id)
				e.Field = "components"
				return inventory.ProductResult{}, e
			}
		}
	}
	products := make([]inventory.Product, len(comps))
	for i, ps := range comps {
		products[i] = ps.Product
	}
	if err := nb.CheckComponents(products); err != nil {
		return inventory.ProductResult{}, err
	}
	p := nb.Product()
	p.CreatedAt = s.now()
	p.UpdatedAt = p.CreatedAt
	err = s.writer.CreateProduct(ctx, &p, nil, rec)
	if errors.Is(err, inventory.ErrDuplicateKey) {
		if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
			return res, err
		}
	}
	if err != nil {
		return inventory.ProductResult{}, err
	}
	s.bundles.put(p.ID, p.Components)
	s.productSaved(p)
	p, err = s.bundleView(ctx, p)
	return inventory.ProductResult{Product: p}, err
}

// withBundles makes the stock of the bundles among stocks from their
// components', read as ctx's other reads are.
func (s *Service) withBundles(ctx context.Context, stocks []inventory.ProductStock) error {
	var ids []int64
	for _, ps := range stocks {
		if ps.Product.Bundle {
			ids = append(ids, ps.Product.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	comps, err := s.bundleComponents(ctx, ids)
	if err != nil {
		return err
	}
	var partIDs []int64
	for _, cs := range comps {
		for _, c := range cs {
			partIDs = append(partIDs, c.ProductID)
		}
	}
	slices.Sort(partIDs)
	parts, err := s.ProductStocks(ctx, slices.Compact(partIDs)) // components are never bundles
	if err != nil {
		return err
	}
	byID := make(map[int64]inventory.ProductStock, len(parts))
	for _, ps := range parts {
		byID[ps.Product.ID] = ps
	}
	for i := range stocks {
		if b := stocks[i].Product; b.Bundle {
			b.Components = comps[b.ID]
			stocks[i] = inventory.BundleStock(b, byID)
		}
	}
	return nil
}

// bundleView returns p with its stock made from its components' if it is
// a bundle.
func (s *Service) bundleView(ctx context.Context, p inventory.Product) (inventory.Product, error) {
	if !p.Bundle {
		return p, nil
	}
	stocks := []inventory.ProductStock{{Product: p}}
	err := s.withBundles(ctx, stocks)
	return stocks[0].Product, err
}

// sellBundle takes in.Quantity bundles' units of their components at
// key's location, all or nothing, with a ledger row per component that
// names the bundle (the first carries the request's key).
func (s *Service) sellBundle(ctx context.Context, in inventory.StockChange, key inventory.LevelKey, hash string,
	comps []inventory.BundleComponent) (inventory.StockResult, error) {
	ctx, span := s.startSpan(ctx, "inventory.StockOut", attrProduct.Int64(key.ProductID), attrLocation.Int64(key.LocationID))
	var r inventory.Outcome
	defer func() { endSpan(span, r.Err) }()
	lines, err := inventory.BundleLines(key.ProductID, comps, key.LocationID, in.Quantity)
	if err != nil {
		r.Err = err
		return inventory.StockResult{}, err
	}
	keys := make([]inventory.LevelKey, len(lines))
	for i, l := range lines {
		keys[i] = l.Key()
	}
	r = s.runLevels(ctx, inventory.StockOp{Type: inventory.MovementOut, Key: keys[0], IdempotencyKey: in.IdempotencyKey, Hash: hash,
		Levels: &inventory.LevelsOp{Keys: keys, Apply: func(lt inventory.LevelsTx) (bool, error) {
			for i, l := range lines {
				tx := lt.Levels[i]
				m := s.newMovement(ctx, inventory.MovementOut, -l.Quantity, in.Reason, in.Reference, "", "")
				if i == 0 {
					m.IdempotencyKey, m.RequestHash = in.IdempotencyKey, hash
				}
				m.BundleID, m.Fence = key.ProductID, lt.Fences[i]
				if err := tx.Apply(&m); err != nil {
					return false, componentShort(err, tx, l.Quantity)
				}
			}
			return false, nil
		}}})
	if r.Err != nil {
		return inventory.StockResult{}, r.Err
	}
	ps, err := s.ProductStock(ctx, key.ProductID)
	if err != nil {
		return inventory.StockResult{}, err
	}
	res := inventory.StockResult{Product: ps.Product, Movement: r.Result.Movement, Replayed: r.Result.Replayed}
	res.Level = inventory.Level{ProductID: key.ProductID, LocationID: key.LocationID}
	if i := slices.IndexFunc(ps.Levels, func(l inventory.Level) bool { return l.LocationID == key.LocationID }); i >= 0 {
		res.Level = ps.Levels[i]
	}
	return res, nil
}

// componentShort says which component is short when err refused a
// component's demand for want of stock.
func componentShort(err error, tx *inventory.StockTx, demand int64) error {
	if inventory.ErrorCode(err) != inventory.CodeInsufficientStock {
		return err
	}
	return inventory.Errorf(inventory.CodeInsufficientStock, "insufficient stock of %s at location %d: %d available, %d requested",
		tx.Product.SKU, tx.Level.LocationID, tx.Sellable(), demand)
}

// BundlesOf returns the bundles among ids that productID is a component
// of, as far as this replica knows them (Subscribe learns the bundles it
// is asked to follow).
func (s *Service) BundlesOf(ids []int64, productID int64) []int64 {
	var out []int64
	for _, id := range ids {
		if comps, ok := s.bundles.get(id); ok && slices.ContainsFunc(comps, func(c inventory.BundleComponent) bool { return c.ProductID == productID }) {
			out = append(out, id)
		}
	}
	return out
}
