package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/lock"
)

// Config holds what a Service is built from.
type Config struct {
	Store  Store
	Locker lock.Locker
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// TraceID returns the trace id of ctx for the ledger; nil means the
	// OpenTelemetry trace id of ctx's span, if any.
	TraceID func(ctx context.Context) string
	// LockTimeout bounds the wait for a stock lock, and a combined stock
	// transaction; zero means 10s.
	LockTimeout time.Duration
	// PollInterval is how often the event feed checks the ledger for changes
	// it was not told about (other replicas); zero means 1s.
	PollInterval time.Duration
	// Strategy is how stock mutations are applied; empty means
	// StrategyCombine, the only one for production.
	Strategy Strategy
	// MaxBatch bounds the requests one combined transaction applies; zero
	// means 256. At most 1000: every request is a ledger row of one INSERT.
	MaxBatch int
	// MaxWaiting bounds the stock requests waiting in this replica, all
	// levels together; beyond it they fail with a retryable UNAVAILABLE.
	// Zero means 10000.
	MaxWaiting int
	// MaxReservationTTL bounds how long a reservation holds stock in one
	// go (at creation and at each extension); zero means 24h.
	MaxReservationTTL time.Duration
	// Elector elects the replica that releases expired reservations; nil
	// means a lock.LockElector on Locker.
	Elector lock.Elector
	// ReapInterval is how often the elected replica looks for expired
	// reservations; zero means 1s.
	ReapInterval time.Duration
	// Fanout wakes other replicas' event feeds when this one commits, and
	// this one's when they do; nil for a single replica.
	Fanout Fanout
	// TracerProvider makes the service's spans: one per mutation, one per
	// combined batch and per stock transaction; nil makes none.
	TracerProvider trace.TracerProvider
	// Observer is told of committed stock transactions; nil tells no one.
	Observer Observer
}

// MaxBatchLimit is the largest Config.MaxBatch.
const MaxBatchLimit = 1000

// Service holds the inventory use cases. Its methods validate input, apply
// the business rules and return *Error values for everything a client can
// cause or retry.
type Service struct {
	store       Store
	locker      lock.Locker
	log         *slog.Logger
	now         func() time.Time
	traceID     func(context.Context) string
	lockTimeout time.Duration
	feed        *feed
	strategy    Strategy
	combiner    *combiner
	tracer      trace.Tracer
	obs         Observer

	maxReservationTTL time.Duration
	reaper            *reaper
	// epoch is the lock epoch of the locker's fencing domain, set by Start.
	epoch int64
	// afterLock, if set, runs between acquiring a stock lock and the
	// transaction (tests use it to stage a lapsed lease).
	afterLock func(ctx context.Context, key LevelKey, lease lock.Lease)

	locMu     sync.RWMutex
	locations map[int64]Location // locations are immutable, so caching them is safe
}

// NewService returns a Service. Call Start before serving subscriptions and
// Close when done.
func NewService(cfg Config) *Service {
	s := &Service{
		store:       cfg.Store,
		locker:      cfg.Locker,
		log:         cfg.Logger,
		now:         cfg.Now,
		traceID:     cfg.TraceID,
		lockTimeout: cfg.LockTimeout,
		tracer:      newTracer(cfg.TracerProvider),
		obs:         cfg.Observer,
		locations:   make(map[int64]Location),
	}
	if s.obs == nil {
		s.obs = noObserver{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	// Databases keep microseconds; what the service returns must equal what
	// a later read returns.
	clock := s.now
	s.now = func() time.Time { return clock().UTC().Truncate(time.Microsecond) }
	if s.traceID == nil {
		s.traceID = spanTraceID
	}
	if s.lockTimeout <= 0 {
		s.lockTimeout = 10 * time.Second
	}
	poll := cfg.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	s.feed = newFeed(cfg.Store, s.log, poll, cfg.Fanout)
	s.strategy = cfg.Strategy
	if !s.strategy.Valid() {
		s.strategy = StrategyCombine
	}
	maxBatch, maxWaiting := cfg.MaxBatch, cfg.MaxWaiting
	if maxBatch <= 0 {
		maxBatch = 256
	}
	if maxWaiting <= 0 {
		maxWaiting = 10_000
	}
	s.combiner = newCombiner(s, min(maxBatch, MaxBatchLimit), maxWaiting)
	s.maxReservationTTL = cfg.MaxReservationTTL
	if s.maxReservationTTL <= 0 {
		s.maxReservationTTL = DefaultMaxReservationTTL
	}
	s.reaper = &reaper{s: s, elector: cfg.Elector, interval: cfg.ReapInterval}
	if s.reaper.elector == nil {
		s.reaper.elector = lock.LockElector{Locker: cfg.Locker}
	}
	if s.reaper.interval <= 0 {
		s.reaper.interval = time.Second
	}
	return s
}

// Start joins (or begins) the lock epoch of the locker's fencing domain and
// starts the event feed from the current end of the ledger.
func (s *Service) Start(ctx context.Context) error {
	epoch, err := s.store.LockEpoch(ctx, s.locker.Domain())
	if err != nil {
		return fmt.Errorf("lock epoch: %w", err)
	}
	s.epoch = epoch
	if err := s.feed.start(ctx); err != nil {
		return err
	}
	s.reaper.start(ctx)
	return nil
}

// LockEpoch returns the lock epoch the service fences its writes with.
func (s *Service) LockEpoch() int64 { return s.epoch }

// Close waits for the stock requests in progress, then stops the event feed
// and ends all subscriptions.
func (s *Service) Close() {
	s.reaper.stop()
	s.combiner.wait()
	s.feed.stop()
}

// ProductResult is what product mutations return.
type ProductResult struct {
	Product Product
	// Movement is the initial-stock movement of a created product, if any.
	Movement *Movement
	Replayed bool
}

const (
	opCreateProduct = "createProduct"
	opUpdateProduct = "updateProduct"
)

// CreateProduct creates a product, with its initial stock if any.
func (s *Service) CreateProduct(ctx context.Context, np NewProduct) (_ ProductResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CreateProduct")
	defer func() { endSpan(span, err) }()
	if err := np.normalize(); err != nil {
		return ProductResult{}, err
	}
	loc := np.InitialLocationID
	if loc == 0 {
		loc = DefaultLocationID
	}
	hash := requestHash(opCreateProduct, np.SKU, np.Name, np.Price.String(), itoa(np.Threshold), itoa(np.InitialStock), itoa(loc))
	rec := IdempotencyRecord{Key: np.IdempotencyKey, Operation: opCreateProduct, RequestHash: hash}
	if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
		return res, err
	}

	now := s.now()
	p := Product{SKU: np.SKU, Name: np.Name, Price: np.Price, Threshold: np.Threshold, Version: 1, CreatedAt: now, UpdatedAt: now}
	var tx *StockTx
	if np.InitialStock > 0 {
		if _, err := s.Location(ctx, loc); err != nil {
			return ProductResult{}, err
		}
		tx = &StockTx{Product: &p, Level: Level{LocationID: loc}}
		m := s.newMovement(ctx, MovementIn, np.InitialStock, "initial stock", "", np.IdempotencyKey, hash)
		if err := tx.Apply(&m); err != nil {
			return ProductResult{}, err
		}
	}
	err = s.store.CreateProduct(ctx, &p, tx, rec)
	if errors.Is(err, ErrDuplicateKey) {
		// A concurrent request with the same key won; answer as its retry.
		if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
			return res, err
		}
	}
	if err != nil {
		return ProductResult{}, err
	}
	res := ProductResult{Product: p}
	if tx != nil {
		res.Movement = &tx.Movements()[0]
		s.committed(1, []*StockTx{tx})
	}
	return res, nil
}

// UpdateProduct changes a product's attributes.
func (s *Service) UpdateProduct(ctx context.Context, u ProductUpdate) (_ ProductResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.UpdateProduct", attrProduct.Int64(u.ID))
	defer func() { endSpan(span, err) }()
	if err := u.normalize(); err != nil {
		return ProductResult{}, err
	}
	var price *string
	if u.Price != nil {
		ps := u.Price.String()
		price = &ps
	}
	hash := requestHash(opUpdateProduct, itoa(u.ID), optString(u.SKU), optString(u.Name), optString(price),
		optItoa(u.Threshold), optItoa(u.ExpectedVersion))
	rec := IdempotencyRecord{Key: u.IdempotencyKey, Operation: opUpdateProduct, RequestHash: hash, ProductID: u.ID}
	if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
		return res, err
	}
	now := s.now()
	p, err := s.store.UpdateProduct(ctx, u.ID, rec, func(p *Product) (bool, error) {
		if u.ExpectedVersion != nil && *u.ExpectedVersion != p.Version {
			return false, Errorf(CodeConflict, "product is at version %d, not the expected %d", p.Version, *u.ExpectedVersion)
		}
		if !u.apply(p) {
			return false, nil
		}
		p.Version++
		p.UpdatedAt = now
		return true, nil
	})
	if errors.Is(err, ErrDuplicateKey) {
		if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
			return res, err
		}
	}
	if err != nil {
		return ProductResult{}, err
	}
	return ProductResult{Product: p}, nil
}

// replayProduct answers a product mutation whose idempotency key was already
// used: with the current product if the request is the same, CONFLICT if not.
func (s *Service) replayProduct(ctx context.Context, rec IdempotencyRecord) (ProductResult, bool, error) {
	if rec.Key == "" {
		return ProductResult{}, false, nil
	}
	old, ok, err := s.store.IdempotencyRecord(ctx, rec.Key)
	if err != nil || !ok {
		return ProductResult{}, false, err
	}
	if old.Operation != rec.Operation || old.RequestHash != rec.RequestHash {
		return ProductResult{}, true, errKeyReused()
	}
	p, err := s.store.Product(ctx, old.ProductID)
	if err != nil {
		return ProductResult{}, true, err
	}
	res := ProductResult{Product: p, Replayed: true}
	if rec.Operation == opCreateProduct {
		page, err := s.store.Movements(ctx, MovementQuery{ProductID: p.ID, Limit: 1})
		if err != nil {
			return ProductResult{}, true, err
		}
		if len(page.Movements) > 0 && page.Movements[0].IdempotencyKey == rec.Key {
			res.Movement = &page.Movements[0]
		}
	}
	return res, true, nil
}

func errKeyReused() *Error {
	return Errorf(CodeConflict, "idempotencyKey was already used for a different request")
}

// Product returns the product with the given ID.
func (s *Service) Product(ctx context.Context, id int64) (Product, error) {
	if id <= 0 {
		return Product{}, Errorf(CodeNotFound, "product %d not found", id)
	}
	p, err := s.store.Product(ctx, id)
	if err != nil {
		return Product{}, err
	}
	return p, s.withoutExpired(ctx, []*Product{&p})
}

// ProductBySKU returns the product with the given SKU (case-insensitive).
func (s *Service) ProductBySKU(ctx context.Context, sku string) (Product, error) {
	sku = NormalizeSKU(sku)
	if err := validateSKU(sku); err != nil {
		return Product{}, err
	}
	p, err := s.store.ProductBySKU(ctx, sku)
	if err != nil {
		return Product{}, err
	}
	return p, s.withoutExpired(ctx, []*Product{&p})
}

// Products returns up to first products with IDs above afterID that match f.
func (s *Service) Products(ctx context.Context, f ProductFilter, first int, afterID int64) (ProductPage, error) {
	if err := checkFirst(first); err != nil {
		return ProductPage{}, err
	}
	if err := validateText("filter.text", f.Text, MaxNameLength); err != nil {
		return ProductPage{}, err
	}
	page, err := s.store.Products(ctx, f, afterID, first)
	if err != nil {
		return ProductPage{}, err
	}
	err = s.withoutExpired(ctx, pointers(page.Products))
	if f.LowStock != nil && *f.LowStock {
		// Released expired units can take a product off the list.
		page.Products = slices.DeleteFunc(page.Products, func(p Product) bool { return !p.LowStock() })
	}
	return page, err
}

// CountProducts returns how many products match f.
func (s *Service) CountProducts(ctx context.Context, f ProductFilter) (int, error) {
	return s.store.CountProducts(ctx, f)
}

// LowStockProducts returns up to limit products whose available stock is
// below their threshold, ordered by ID.
func (s *Service) LowStockProducts(ctx context.Context, limit int) ([]Product, error) {
	if limit < 1 || limit > 1000 {
		return nil, invalid("first", "first must be between 1 and 1000")
	}
	low := true
	page, err := s.store.Products(ctx, ProductFilter{LowStock: &low}, 0, limit)
	if err != nil {
		return nil, err
	}
	err = s.withoutExpired(ctx, pointers(page.Products))
	return slices.DeleteFunc(page.Products, func(p Product) bool { return !p.LowStock() }), err
}

// Levels returns a product's stock per location.
func (s *Service) Levels(ctx context.Context, productID int64) ([]Level, error) {
	levels, err := s.store.Levels(ctx, productID)
	if err != nil || !slices.ContainsFunc(levels, func(l Level) bool { return l.Reserved > 0 }) {
		return levels, err
	}
	expired, err := s.store.ExpiredReserved(ctx, []int64{productID}, s.now())
	for i := range levels {
		levels[i].Reserved -= expired[LevelKey{ProductID: productID, LocationID: levels[i].LocationID}]
	}
	return levels, err
}

// withoutExpired takes out of the products' reserved the units still held
// by reservations that have expired but were not released yet: an expired
// reservation stops counting at once, not when the reaper gets to it.
func (s *Service) withoutExpired(ctx context.Context, ps []*Product) error {
	var ids []int64
	for _, p := range ps {
		if p.Reserved > 0 {
			ids = append(ids, p.ID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	expired, err := s.store.ExpiredReserved(ctx, ids, s.now())
	if err != nil {
		return err
	}
	byProduct := map[int64]int64{}
	for k, q := range expired {
		byProduct[k.ProductID] += q
	}
	for _, p := range ps {
		p.Reserved -= byProduct[p.ID]
	}
	return nil
}

func pointers(ps []Product) []*Product {
	out := make([]*Product, len(ps))
	for i := range ps {
		out[i] = &ps[i]
	}
	return out
}

// Movements returns a page of the ledger.
func (s *Service) Movements(ctx context.Context, q MovementQuery) (MovementPage, error) {
	if err := checkFirst(q.Limit); err != nil {
		return MovementPage{}, err
	}
	if q.ProductID > 0 {
		if _, err := s.store.Product(ctx, q.ProductID); err != nil {
			return MovementPage{}, err
		}
	}
	return s.store.Movements(ctx, q)
}

func checkFirst(first int) error {
	if first < 1 || first > MaxPageSize {
		return invalid("first", "first must be between 1 and %d", MaxPageSize)
	}
	return nil
}

// CreateLocation adds a location.
func (s *Service) CreateLocation(ctx context.Context, nl NewLocation) (_ Location, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CreateLocation")
	defer func() { endSpan(span, err) }()
	if err := nl.normalize(); err != nil {
		return Location{}, err
	}
	l := Location{Code: nl.Code, Name: nl.Name, CreatedAt: s.now()}
	if err := s.store.CreateLocation(ctx, &l); err != nil {
		return Location{}, err
	}
	return l, nil
}

// Location returns the location with the given ID.
func (s *Service) Location(ctx context.Context, id int64) (Location, error) {
	s.locMu.RLock()
	l, ok := s.locations[id]
	s.locMu.RUnlock()
	if ok {
		return l, nil
	}
	if id <= 0 {
		return Location{}, Errorf(CodeNotFound, "location %d not found", id)
	}
	l, err := s.store.Location(ctx, id)
	if err != nil {
		return Location{}, err
	}
	s.locMu.Lock()
	s.locations[id] = l
	s.locMu.Unlock()
	return l, nil
}

// Locations returns all locations ordered by ID.
func (s *Service) Locations(ctx context.Context) ([]Location, error) {
	return s.store.Locations(ctx)
}
