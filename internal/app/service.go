// Package app holds the inventory's use cases (Service): stock in, out and
// adjust, reservations and the reaper that expires them, bulk adjustments,
// drift repair, reads and subscriptions. Each validates its input through
// the domain (package inventory), builds an inventory.StockOp, and runs it
// through the write pipeline, whose stock side (leases, the transaction,
// its retries, lost leases) is pipeline.go. See docs/WRITE_PATH.md.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/feed"
	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/lock"
)

// Config holds what a Service is built from.
type Config struct {
	// The store, by use (see Writer); one value may be all of them.
	Writer       inventory.Writer
	Catalog      inventory.Catalog
	Ledger       inventory.Ledger
	Reservations inventory.Reservations
	Transfers    inventory.Transfers
	Audit        inventory.Audit
	Locker       lock.Locker
	// Advancer moves Locker's token counters past a token the database
	// refused a lease against; nil when Locker's tokens never go back
	// (see lock.Advancer). Usually Locker's backend itself, set apart
	// because decorators of Locker do not pass it on.
	Advancer lock.Advancer
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
	// LeaseIdle is how long a level's lease is kept after its last
	// request, for its next ones; zero means 5s. Another replica that
	// waits for the level gets it at once when this one is done with it,
	// and after MaxHold (20ms) while this one keeps it busy; should the
	// lock backend's signal be lost, after at most LeaseIdle, or MaxKeep
	// (10s) (see pipeline.Config).
	LeaseIdle time.Duration
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
	Fanout feed.Fanout
	// TracerProvider makes the service's spans: one per mutation, one per
	// combined batch and per stock transaction; nil makes none.
	TracerProvider trace.TracerProvider
	// Observer is told of committed stock transactions; nil tells no one.
	Observer inventory.Observer
	// ReadModel answers product and level reads that do not ask for
	// ReadStrong; nil sends every read to the Catalog. The service keeps it
	// current.
	ReadModel inventory.ReadModel
}

// Service holds the inventory use cases. Its methods validate input, apply
// the business rules and return *Error values for everything a client can
// cause or retry.
type Service struct {
	writer      inventory.Writer
	catalog     inventory.Catalog
	ledger      inventory.Ledger
	resv        inventory.Reservations
	transfers   inventory.Transfers
	audit       inventory.Audit
	locker      lock.Locker
	stale       staleTokens
	log         *slog.Logger
	now         func() time.Time
	traceID     func(context.Context) string
	lockTimeout time.Duration
	feed        *feed.Feed[inventory.Movement]
	strategy    Strategy
	pipe        *stockPipeline
	resLevels   idCache[[]inventory.LevelKey]
	untracked   untrackedSet                         // products whose requests need no lease
	bundles     idCache[[]inventory.BundleComponent] // the components of the bundles this replica knows
	tracer      trace.Tracer
	obs         inventory.Observer
	reads       inventory.ReadModel // nil: none

	maxReservationTTL time.Duration
	reaper            *reaper
	// epoch is the lock epoch of the locker's fencing domain, set by Start.
	epoch int64

	locMu     sync.RWMutex
	locations map[int64]inventory.Location // locations are immutable, so caching them is safe
	locLoad   sync.Mutex                   // one reader of all locations at a time
}

// New returns a Service. Call Start before serving subscriptions and
// Close when done.
func New(cfg Config) *Service {
	s := &Service{
		writer:      cfg.Writer,
		catalog:     cfg.Catalog,
		ledger:      cfg.Ledger,
		resv:        cfg.Reservations,
		transfers:   cfg.Transfers,
		audit:       cfg.Audit,
		locker:      cfg.Locker,
		stale:       staleTokens{adv: cfg.Advancer},
		log:         cfg.Logger,
		now:         cfg.Now,
		traceID:     cfg.TraceID,
		lockTimeout: cfg.LockTimeout,
		tracer:      newTracer(cfg.TracerProvider),
		obs:         cfg.Observer,
		reads:       cfg.ReadModel,
		locations:   make(map[int64]inventory.Location),
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
	s.feed = newFeed(cfg.Ledger, cfg, s.log)
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
	s.resLevels.max, s.bundles.max = maxCachedReservations, maxCachedBundles
	s.pipe = newPipeline(s, min(maxBatch, inventory.MaxBatchLimit), maxWaiting, cfg.LeaseIdle)
	s.maxReservationTTL = cfg.MaxReservationTTL
	if s.maxReservationTTL <= 0 {
		s.maxReservationTTL = inventory.DefaultMaxReservationTTL
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
	epoch, err := s.writer.LockEpoch(ctx, s.locker.Domain())
	if err != nil {
		return fmt.Errorf("lock epoch: %w", err)
	}
	s.epoch = epoch
	if err := s.feed.Start(ctx); err != nil {
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
	s.pipe.Wait()
	s.feed.Stop()
}

// CreateProduct creates a product, with its initial stock if any.
func (s *Service) CreateProduct(ctx context.Context, np inventory.NewProduct) (_ inventory.ProductResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CreateProduct")
	defer func() { endSpan(span, err) }()
	if err := np.Normalize(); err != nil {
		return inventory.ProductResult{}, err
	}
	loc := np.InitialLocationID
	if loc == 0 {
		loc = inventory.DefaultLocationID
	}
	hash := np.Fingerprint(loc)
	rec := inventory.IdempotencyRecord{Key: np.IdempotencyKey, Operation: inventory.OpCreateProduct, RequestHash: hash}
	if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
		return res, err
	}

	now := s.now()
	p := inventory.Product{SKU: np.SKU, Name: np.Name, Price: np.Price, Threshold: np.Threshold, BackorderLimit: np.BackorderLimit,
		Untracked: np.Untracked, Version: 1, CreatedAt: now, UpdatedAt: now}
	var tx *inventory.StockTx
	if np.InitialStock > 0 {
		if _, err := s.Location(ctx, loc); err != nil {
			return inventory.ProductResult{}, err
		}
		tx = &inventory.StockTx{Product: &p, Level: inventory.Level{LocationID: loc}}
		m := s.newMovement(ctx, inventory.MovementIn, np.InitialStock, "initial stock", "", np.IdempotencyKey, hash)
		if err := tx.Apply(&m); err != nil {
			return inventory.ProductResult{}, err
		}
	}
	err = s.writer.CreateProduct(ctx, &p, tx, rec)
	if errors.Is(err, inventory.ErrDuplicateKey) {
		// A concurrent request with the same key won; answer as its retry.
		if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
			return res, err
		}
	}
	if err != nil {
		return inventory.ProductResult{}, err
	}
	res := inventory.ProductResult{Product: p}
	if tx != nil {
		res.Movement = &tx.Movements()[0]
		s.committed(1, []*inventory.StockTx{tx})
	}
	s.productSaved(p)
	return res, nil
}

// UpdateProduct changes a product's attributes.
func (s *Service) UpdateProduct(ctx context.Context, u inventory.ProductUpdate) (_ inventory.ProductResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.UpdateProduct", attrProduct.Int64(u.ID))
	defer func() { endSpan(span, err) }()
	if err := u.Normalize(); err != nil {
		return inventory.ProductResult{}, err
	}
	hash := u.Fingerprint()
	rec := inventory.IdempotencyRecord{Key: u.IdempotencyKey, Operation: inventory.OpUpdateProduct, RequestHash: hash, ProductID: u.ID}
	if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
		return res, err
	}
	now := s.now()
	p, err := s.writer.UpdateProduct(ctx, u.ID, rec, func(p *inventory.Product) (bool, error) {
		if u.ExpectedVersion != nil && *u.ExpectedVersion != p.Version {
			return false, inventory.Errorf(inventory.CodeConflict, "product is at version %d, not the expected %d", p.Version, *u.ExpectedVersion)
		}
		if changed, err := u.ApplyTo(p); !changed || err != nil {
			return false, err
		}
		p.Version++
		p.UpdatedAt = now
		return true, nil
	})
	if errors.Is(err, inventory.ErrDuplicateKey) {
		if res, ok, err := s.replayProduct(ctx, rec); ok || err != nil {
			return res, err
		}
	}
	if err != nil {
		return inventory.ProductResult{}, err
	}
	s.productSaved(p)
	p, err = s.bundleView(ctx, p)
	return inventory.ProductResult{Product: p}, err
}

// productSaved tells the read model of a product this replica created or
// edited.
func (s *Service) productSaved(p inventory.Product) {
	s.untracked.saw(&p)
	if s.reads != nil {
		s.reads.ProductSaved(p)
	}
}

// replayProduct answers a product mutation whose idempotency key was already
// used: with the current product if the request is the same, CONFLICT if not.
func (s *Service) replayProduct(ctx context.Context, rec inventory.IdempotencyRecord) (inventory.ProductResult, bool, error) {
	if rec.Key == "" {
		return inventory.ProductResult{}, false, nil
	}
	old, ok, err := s.catalog.IdempotencyRecord(ctx, rec.Key)
	if err != nil || !ok {
		return inventory.ProductResult{}, false, err
	}
	if old.Operation != rec.Operation || old.RequestHash != rec.RequestHash {
		return inventory.ProductResult{}, true, inventory.KeyReused()
	}
	p, err := s.catalog.Product(ctx, old.ProductID)
	if err == nil {
		p, err = s.bundleView(ctx, p)
	}
	if err != nil {
		return inventory.ProductResult{}, true, err
	}
	res := inventory.ProductResult{Product: p, Replayed: true}
	if rec.Operation == inventory.OpCreateProduct {
		page, err := s.ledger.Movements(ctx, inventory.MovementQuery{ProductID: p.ID, Limit: 1})
		if err != nil {
			return inventory.ProductResult{}, true, err
		}
		if len(page.Movements) > 0 && page.Movements[0].IdempotencyKey == rec.Key {
			res.Movement = &page.Movements[0]
		}
	}
	return res, true, nil
}

// CreateLocation adds a location.
func (s *Service) CreateLocation(ctx context.Context, nl inventory.NewLocation) (_ inventory.Location, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CreateLocation")
	defer func() { endSpan(span, err) }()
	if err := nl.Normalize(); err != nil {
		return inventory.Location{}, err
	}
	l := inventory.Location{Code: nl.Code, Name: nl.Name, CreatedAt: s.now()}
	if err := s.writer.CreateLocation(ctx, &l); err != nil {
		return inventory.Location{}, err
	}
	return l, nil
}
