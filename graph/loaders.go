package graph

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vikstrous/dataloadgen"

	"github.com/shopstack/inventory/internal/app"
	"github.com/shopstack/inventory/internal/inventory"
)

// Nested fields load through dataloaders (github.com/vikstrous/dataloadgen,
// as gqlgen's documentation recommends): the fields of all the parents in
// one response that need, say, a product's movements wait a moment and are
// answered by one call to the service, so a query costs a number of
// statements that does not grow with its page size. Root fields prime the
// loaders with what they read, so nested fields under them load nothing
// again. Locations need no loader: the service keeps them all in memory.

// DefaultLoaderWait is how long a loader collects keys before it loads
// them: long enough for the resolvers of one list, started together, to
// join one batch.
const DefaultLoaderWait = time.Millisecond

// Batch capacities: a batch this large loads at once. SQLite joins at most
// 500 subqueries in one statement, and the movements load joins one per
// product.
const (
	maxBatch          = 1000
	maxMovementsBatch = 100
)

// loaders are one root field's dataloaders (or, for a subscription, one
// event's). What they cache is as new as the field: a later mutation of a
// document is never answered with what an earlier one loaded, and what a
// field reads is recorded in its own read log (see Answers).
type loaders struct {
	stocks       *dataloadgen.Loader[int64, inventory.ProductStock]
	movements    *dataloadgen.Loader[movementsKey, inventory.MovementPage]
	reservations *dataloadgen.Loader[int64, inventory.Reservation]
	transfers    *dataloadgen.Loader[int64, inventory.Transfer]
	// locations and movementsBySeq load the objects node and nodes ask
	// for by ID.
	locations      *dataloadgen.Loader[int64, inventory.Location]
	movementsBySeq *dataloadgen.Loader[int64, inventory.Movement]
	// skus loads the products federation's _entities asks for by SKU.
	skus *dataloadgen.Loader[string, inventory.ProductStock]
}

// movementsKey is one product's page of movements as a field asks for it.
type movementsKey struct {
	productID int64
	page      movementPage
}

// movementPage is a movements field's arguments: the same for every
// parent of the field in a query, so all of them load in one statement.
type movementPage struct {
	limit      int
	after      int64
	hasAfter   bool
	descending bool
}

func (p movementPage) query() inventory.MovementQuery {
	return inventory.MovementQuery{Limit: p.limit, After: p.after, HasAfter: p.hasAfter, Descending: p.descending}
}

func newLoaders(svc *app.Service, wait time.Duration) *loaders {
	opts := []dataloadgen.Option{dataloadgen.WithWait(wait), dataloadgen.WithBatchCapacity(maxBatch)}
	return &loaders{
		stocks: dataloadgen.NewLoader(func(ctx context.Context, ids []int64) ([]inventory.ProductStock, []error) {
			stocks, err := svc.ProductStocks(ctx, ids)
			return byKey(ids, stocks, err, func(ps inventory.ProductStock) int64 { return ps.Product.ID }, "product")
		}, opts...),
		movements: dataloadgen.NewLoader(func(ctx context.Context, keys []movementsKey) ([]inventory.MovementPage, []error) {
			return loadMovements(ctx, svc, keys)
		}, dataloadgen.WithWait(wait), dataloadgen.WithBatchCapacity(maxMovementsBatch)),
		reservations: dataloadgen.NewLoader(func(ctx context.Context, ids []int64) ([]inventory.Reservation, []error) {
			rs, err := svc.ReservationsByIDs(ctx, ids)
			return byKey(ids, rs, err, func(r inventory.Reservation) int64 { return r.ID }, "reservation")
		}, opts...),
		transfers: dataloadgen.NewLoader(func(ctx context.Context, ids []int64) ([]inventory.Transfer, []error) {
			ts, err := svc.TransfersByIDs(ctx, ids)
			return byKey(ids, ts, err, func(t inventory.Transfer) int64 { return t.ID }, "transfer")
		}, opts...),
		locations: dataloadgen.NewLoader(func(ctx context.Context, ids []int64) ([]inventory.Location, []error) {
			locs, err := svc.LocationsByIDs(ctx, ids)
			return byKey(ids, slices.Collect(maps.Values(locs)), err, func(l inventory.Location) int64 { return l.ID }, "location")
		}, opts...),
		movementsBySeq: dataloadgen.NewLoader(func(ctx context.Context, seqs []int64) ([]inventory.Movement, []error) {
			ms, err := svc.MovementsBySeqs(ctx, seqs)
			return byKey(seqs, ms, err, func(m inventory.Movement) int64 { return m.Seq }, "stock movement")
		}, opts...),
		skus: dataloadgen.NewLoader(func(ctx context.Context, skus []string) ([]inventory.ProductStock, []error) {
			return loadBySKU(ctx, svc, skus)
		}, dataloadgen.WithWait(wait), dataloadgen.WithBatchCapacity(maxBatch)),
	}
}

// byKey orders values by keys for a loader: a key without a value is
// NOT_FOUND, and an error of the whole load is every key's.
func byKey[V any](keys []int64, values []V, err error, key func(V) int64, what string) ([]V, []error) {
	if err != nil {
		return nil, []error{err}
	}
	found := make(map[int64]V, len(values))
	for _, v := range values {
		found[key(v)] = v
	}
	out, errs := make([]V, len(keys)), make([]error, len(keys))
	for i, k := range keys {
		v, ok := found[k]
		if !ok {
			errs[i] = inventory.Errorf(inventory.CodeNotFound, "%s %d not found", what, k)
		}
		out[i] = v
	}
	return out, errs
}

// loadBySKU loads the products of skus (normalized): each from the read
// model, which indexes SKUs in memory (a STRONG read, or a miss, reads the
// database once per SKU).
func loadBySKU(ctx context.Context, svc *app.Service, skus []string) ([]inventory.ProductStock, []error) {
	out, errs := make([]inventory.ProductStock, len(skus)), make([]error, len(skus))
	for i, sku := range skus {
		out[i], errs[i] = svc.ProductStockBySKU(ctx, sku)
	}
	return out, errs
}

// loadMovements loads the pages of keys: one call per distinct page
// (normally one), each for all its products.
func loadMovements(ctx context.Context, svc *app.Service, keys []movementsKey) ([]inventory.MovementPage, []error) {
	ids := map[movementPage][]int64{}
	for _, k := range keys {
		ids[k.page] = append(ids[k.page], k.productID)
	}
	out, errs := make([]inventory.MovementPage, len(keys)), make([]error, len(keys))
	for page, productIDs := range ids {
		pages, err := svc.MovementsByProducts(ctx, productIDs, page.query())
		for i, k := range keys {
			if k.page == page {
				out[i], errs[i] = pages[k.productID], err
			}
		}
	}
	return out, errs
}

// prime caches stocks a root field read, for the fields under it.
func (l *loaders) prime(stocks ...inventory.ProductStock) {
	for _, ps := range stocks {
		l.stocks.Prime(ps.Product.ID, ps)
	}
}

type loadersKey struct{}

// load returns ctx's loaders: those the loading extension put there, or
// new ones for a resolver run without it.
func (r *Resolver) load(ctx context.Context) *loaders {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l
	}
	return newLoaders(r.Service, r.loaderWait)
}

// loading is the extension that gives each root field (and each
// subscription event) its loaders, and makes a field that asks for
// consistency STRONG read the database.
type loading struct {
	svc  *app.Service
	wait time.Duration
}

var (
	_ graphql.HandlerExtension     = loading{}
	_ graphql.ResponseInterceptor  = loading{}
	_ graphql.RootFieldInterceptor = loading{}
)

func (loading) ExtensionName() string                   { return "Loaders" }
func (loading) Validate(graphql.ExecutableSchema) error { return nil }

// InterceptResponse gives each response loaders of its own: each event of
// a subscription reads anew (root fields get their own, below).
func (l loading) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	return next(context.WithValue(ctx, loadersKey{}, newLoaders(l.svc, l.wait)))
}

// InterceptRootField gives each root field loaders of its own, and makes
// one with consistency STRONG read the database, its nested fields
// included.
func (l loading) InterceptRootField(ctx context.Context, next graphql.RootResolver) graphql.Marshaler {
	oc, rc := graphql.GetOperationContext(ctx), graphql.GetRootFieldContext(ctx)
	if rc != nil && oc != nil && strongRead(oc, rc) {
		ctx = inventory.WithConsistency(ctx, inventory.ReadStrong)
	}
	return next(context.WithValue(ctx, loadersKey{}, newLoaders(l.svc, l.wait)))
}
