package app

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/readlog"
)

// The read path. Product and level reads go to the read model if there is
// one (Config.ReadModel) and ctx does not ask for ReadStrong, else to the
// database; either way each method costs a number of statements that does
// not grow with the number of products it returns, and an expired
// reservation stops counting at once, not when the reaper gets to it.

// reader returns what answers ctx's product and level reads.
func (s *Service) reader(ctx context.Context) inventory.StockReader {
	if s.reads == nil || inventory.ConsistencyFrom(ctx) == inventory.ReadStrong {
		readlog.From(ctx).Unusable()
		return s.catalog
	}
	return s.reads
}

// Current reports whether what deps records is unchanged: an answer read
// from it may be served again.
func (s *Service) Current(deps readlog.Deps) bool {
	if s.reads == nil || !deps.Until.IsZero() && !s.now().Before(deps.Until) {
		return false
	}
	return s.reads.Current(deps)
}

// ProductStocks returns the products of ids that exist, with their levels,
// ordered by ID.
func (s *Service) ProductStocks(ctx context.Context, ids []int64) ([]inventory.ProductStock, error) {
	stocks, err := s.reader(ctx).ProductStocks(ctx, ids)
	if err != nil {
		return nil, err
	}
	if err := s.withoutExpired(ctx, stocks); err != nil {
		return nil, err
	}
	return stocks, s.withBundles(ctx, stocks)
}

// ProductStock returns the product with the given ID and its levels.
func (s *Service) ProductStock(ctx context.Context, id int64) (inventory.ProductStock, error) {
	var stocks []inventory.ProductStock
	var err error
	if id > 0 {
		stocks, err = s.ProductStocks(ctx, []int64{id})
	}
	if err != nil || len(stocks) == 0 {
		return inventory.ProductStock{}, cmp.Or(err, error(inventory.Errorf(inventory.CodeNotFound, "product %d not found", id)))
	}
	return stocks[0], nil
}

// Product returns the product with the given ID.
func (s *Service) Product(ctx context.Context, id int64) (inventory.Product, error) {
	ps, err := s.ProductStock(ctx, id)
	return ps.Product, err
}

// ProductStockBySKU returns the product with the given SKU
// (case-insensitive) and its levels.
func (s *Service) ProductStockBySKU(ctx context.Context, sku string) (inventory.ProductStock, error) {
	sku = inventory.NormalizeSKU(sku)
	if err := inventory.ValidateSKU(sku); err != nil {
		return inventory.ProductStock{}, err
	}
	ps, err := s.reader(ctx).ProductStockBySKU(ctx, sku)
	if err != nil {
		return inventory.ProductStock{}, err
	}
	stocks := []inventory.ProductStock{ps}
	if err := s.withoutExpired(ctx, stocks); err != nil {
		return inventory.ProductStock{}, err
	}
	err = s.withBundles(ctx, stocks)
	return stocks[0], err
}

// ProductBySKU returns the product with the given SKU (case-insensitive).
func (s *Service) ProductBySKU(ctx context.Context, sku string) (inventory.Product, error) {
	ps, err := s.ProductStockBySKU(ctx, sku)
	return ps.Product, err
}

// Products returns up to first products with IDs above afterID that match
// f, with their levels.
func (s *Service) Products(ctx context.Context, f inventory.ProductFilter, first int, afterID int64) (inventory.ProductPage, error) {
	if err := checkFirst(first); err != nil {
		return inventory.ProductPage{}, err
	}
	if err := inventory.ValidateText("filter.text", f.Text, inventory.MaxNameLength); err != nil {
		return inventory.ProductPage{}, err
	}
	ids, err := s.reader(ctx).ProductIDs(ctx, f, afterID, first)
	if err != nil {
		return inventory.ProductPage{}, err
	}
	stocks, err := s.ProductStocks(ctx, ids.IDs)
	if f.LowStock != nil {
		// The values shown decide: released expired units can take a
		// product off the low list.
		stocks = slices.DeleteFunc(stocks, func(ps inventory.ProductStock) bool { return ps.Product.LowStock() != *f.LowStock })
	}
	return inventory.ProductPage{Products: stocks, HasNext: ids.HasNext}, err
}

// CountProducts returns how many products match f.
func (s *Service) CountProducts(ctx context.Context, f inventory.ProductFilter) (int, error) {
	return s.reader(ctx).CountProducts(ctx, f)
}

// LowStockProducts returns up to limit products whose available stock is
// below their threshold, ordered by ID, with their levels.
func (s *Service) LowStockProducts(ctx context.Context, limit int) ([]inventory.ProductStock, error) {
	if limit < 1 || limit > 1000 {
		return nil, inventory.Invalid("first", "first must be between 1 and 1000")
	}
	low := true
	ids, err := s.reader(ctx).ProductIDs(ctx, inventory.ProductFilter{LowStock: &low}, 0, limit)
	if err != nil {
		return nil, err
	}
	stocks, err := s.ProductStocks(ctx, ids.IDs)
	return slices.DeleteFunc(stocks, func(ps inventory.ProductStock) bool { return !ps.Product.LowStock() }), err
}

// withoutExpired takes out of the stocks' reserved units the units still
// held by reservations that have expired but were not released yet. Only
// levels whose NextExpiry has passed can hold such units, so a read costs a
// statement more only between an expiry and its release.
func (s *Service) withoutExpired(ctx context.Context, stocks []inventory.ProductStock) error {
	now, log := s.now(), readlog.From(ctx)
	var due []int64
	for _, ps := range stocks {
		if slices.ContainsFunc(ps.Levels, func(l inventory.Level) bool { return mayHoldExpired(l, now) }) {
			due = append(due, ps.Product.ID)
		}
		for _, l := range ps.Levels {
			if l.Reserved > 0 && !l.NextExpiry.IsZero() {
				log.Until(l.NextExpiry) // its reserved units may stop counting then
			}
		}
	}
	if len(due) == 0 {
		return nil
	}
	log.Unusable()
	expired, err := s.resv.ExpiredReserved(ctx, due, now)
	if err != nil {
		return err
	}
	for i := range stocks {
		ps := &stocks[i]
		for j := range ps.Levels {
			q := expired[inventory.LevelKey{ProductID: ps.Product.ID, LocationID: ps.Levels[j].LocationID}]
			ps.Levels[j].Reserved -= q
			ps.Product.Reserved -= q
		}
	}
	return nil
}

// mayHoldExpired reports whether some of l's reserved units may belong to
// reservations expired at now: its NextExpiry (no later than its earliest
// active item's expiry) has passed, or is unknown.
func mayHoldExpired(l inventory.Level, now time.Time) bool {
	return l.Reserved > 0 && (l.NextExpiry.IsZero() || !now.Before(l.NextExpiry))
}

// Levels returns a product's stock per location.
func (s *Service) Levels(ctx context.Context, productID int64) ([]inventory.Level, error) {
	ps, err := s.ProductStock(ctx, productID)
	return ps.Levels, err
}

// Movements returns a page of the ledger.
func (s *Service) Movements(ctx context.Context, q inventory.MovementQuery) (inventory.MovementPage, error) {
	readlog.From(ctx).Unusable() // the ledger is read from the database
	if err := checkFirst(q.Limit); err != nil {
		return inventory.MovementPage{}, err
	}
	if q.ProductID > 0 {
		if _, err := s.Product(ctx, q.ProductID); err != nil {
			return inventory.MovementPage{}, err
		}
	}
	return s.ledger.Movements(ctx, q)
}

// MovementsByProducts returns, for each product of ids, the page of its
// ledger that q selects (q's ProductID and ProductIDs are ignored).
func (s *Service) MovementsByProducts(ctx context.Context, ids []int64, q inventory.MovementQuery) (map[int64]inventory.MovementPage, error) {
	readlog.From(ctx).Unusable()
	if err := checkFirst(q.Limit); err != nil {
		return nil, err
	}
	return s.ledger.MovementsByProducts(ctx, ids, q)
}

// MovementsBySeqs returns the ledger rows of seqs that exist, in sequence
// order, in one statement.
func (s *Service) MovementsBySeqs(ctx context.Context, seqs []int64) ([]inventory.Movement, error) {
	readlog.From(ctx).Unusable()
	if len(seqs) == 0 {
		return nil, nil
	}
	page, err := s.ledger.Movements(ctx, inventory.MovementQuery{Seqs: seqs, Limit: len(seqs)})
	return page.Movements, err
}

func checkFirst(first int) error {
	if first < 1 || first > inventory.MaxPageSize {
		return inventory.Invalid("first", "first must be between 1 and %d", inventory.MaxPageSize)
	}
	return nil
}

// ReservationsByIDs returns the reservations of ids that exist, with their
// status as of now, ordered by ID.
func (s *Service) ReservationsByIDs(ctx context.Context, ids []int64) ([]inventory.Reservation, error) {
	readlog.From(ctx).Unusable()
	rs, err := s.resv.ReservationsByIDs(ctx, ids)
	now := s.now()
	for i := range rs {
		rs[i].Status = rs[i].StatusAt(now)
	}
	return rs, err
}

// Location returns the location with the given ID.
func (s *Service) Location(ctx context.Context, id int64) (inventory.Location, error) {
	locs, err := s.LocationsByIDs(ctx, []int64{id})
	if err != nil {
		return inventory.Location{}, err
	}
	l, ok := locs[id]
	if !ok {
		return inventory.Location{}, inventory.Errorf(inventory.CodeNotFound, "location %d not found", id)
	}
	return l, nil
}

// LocationsByIDs returns the locations of ids that exist. Locations are
// never edited or deleted, so they are kept in memory: a miss reads them
// all (there are few), one reader at a time.
func (s *Service) LocationsByIDs(ctx context.Context, ids []int64) (map[int64]inventory.Location, error) {
	out, missing := s.cachedLocations(ids)
	if !missing {
		return out, nil
	}
	s.locLoad.Lock()
	defer s.locLoad.Unlock()
	if out, missing = s.cachedLocations(ids); !missing { // another reader loaded them
		return out, nil
	}
	all, err := s.catalog.Locations(ctx)
	if err != nil {
		return nil, err
	}
	s.locMu.Lock()
	for _, l := range all {
		s.locations[l.ID] = l
	}
	s.locMu.Unlock()
	out, _ = s.cachedLocations(ids)
	return out, nil
}

// cachedLocations returns the locations of ids in memory, and whether one
// that may exist is missing.
func (s *Service) cachedLocations(ids []int64) (map[int64]inventory.Location, bool) {
	out := make(map[int64]inventory.Location, len(ids))
	missing := false
	s.locMu.RLock()
	defer s.locMu.RUnlock()
	for _, id := range ids {
		if l, ok := s.locations[id]; ok {
			out[id] = l
		} else if id > 0 {
			missing = true
		}
	}
	return out, missing
}

// Locations returns all locations ordered by ID.
func (s *Service) Locations(ctx context.Context) ([]inventory.Location, error) {
	return s.catalog.Locations(ctx)
}
