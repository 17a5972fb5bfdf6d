package app

import (
	"context"
	"errors"
	"log/slog"
	"slices"

	"github.com/shopstack/inventory/internal/feed"
	"github.com/shopstack/inventory/internal/inventory"
)

// Subscriptions follow the ledger through the event feed (internal/feed):
// committed rows in sequence order, whichever replica wrote them, and from
// any earlier sequence without gap or duplicate.

// newFeed returns the event feed of ledger.
func newFeed(ledger inventory.Ledger, cfg Config, log *slog.Logger) *feed.Feed[inventory.Movement] {
	fc := feed.Config[inventory.Movement]{
		Last: ledger.LastSeq,
		Read: func(ctx context.Context, after int64, limit int) ([]inventory.Movement, bool, error) {
			page, err := ledger.Movements(ctx, inventory.MovementQuery{After: after, HasAfter: true, Limit: limit})
			return page.Movements, page.HasNext, err
		},
		Seq:    func(m inventory.Movement) int64 { return m.Seq },
		Poll:   cfg.PollInterval,
		Fanout: cfg.Fanout,
		Logger: log,
	}
	if cfg.ReadModel != nil {
		fc.WakeOthers = cfg.ReadModel.Wake
	}
	return feed.New(fc)
}

// Subscriptions returns how many subscriptions this replica serves.
func (s *Service) Subscriptions() int { return s.feed.Count() }

// EndSubscriptions ends every subscription (their channels close) and
// refuses new ones. A server calls it when it starts shutting down, so
// that streaming responses end and their connections can drain rather
// than hold the shutdown to its timeout.
func (s *Service) EndSubscriptions() { s.feed.CloseAll() }

// Subscribe streams ledger events that match filter, in sequence order,
// until ctx is done; a bundle's events are its components' (BundlesOf). With AfterSeq it first replays what the ledger holds
// after that sequence, then continues live without gap or duplicate. The
// channel is closed when ctx is done, when the service stops, or when the
// subscriber falls too far behind (it may then resubscribe with AfterSeq set
// to the last sequence it saw).
func (s *Service) Subscribe(ctx context.Context, filter inventory.EventFilter) (<-chan inventory.Movement, error) {
	if len(filter.ProductIDs) > inventory.MaxSubscribedProducts {
		return nil, inventory.Invalid("productIds", "at most %d productIds", inventory.MaxSubscribedProducts)
	}
	if a := filter.AfterSeq; a != nil && *a < 0 {
		return nil, inventory.Invalid("afterSequence", "afterSequence must not be negative")
	}
	if len(filter.ReservationIDs) > inventory.MaxSubscribedProducts {
		return nil, inventory.Invalid("reservationIds", "at most %d reservationIds", inventory.MaxSubscribedProducts)
	}
	filter.ProductIDs = slices.Clone(filter.ProductIDs)
	filter.ReservationIDs = slices.Clone(filter.ReservationIDs)
	for _, id := range filter.ProductIDs {
		p, err := s.Product(ctx, id)
		if err != nil {
			return nil, err
		}
		// A bundle changes whenever a component does (BundlesOf names
		// the bundles a component's event is about).
		for _, c := range p.Components {
			if !slices.Contains(filter.ProductIDs, c.ProductID) {
				filter.ProductIDs = append(filter.ProductIDs, c.ProductID)
			}
		}
	}
	for _, id := range filter.ReservationIDs {
		if _, err := s.Reservation(ctx, id); err != nil {
			return nil, err
		}
	}
	replay := func(ctx context.Context, after, upTo int64, limit int) ([]inventory.Movement, bool, error) {
		page, err := s.ledger.Movements(ctx, inventory.MovementQuery{
			ProductIDs: filter.ProductIDs, AlertsOnly: filter.AlertsOnly,
			Reservations: filter.Reservations, ReservationIDs: filter.ReservationIDs,
			After: after, HasAfter: true, UpTo: upTo, Limit: limit,
		})
		return page.Movements, page.HasNext, err
	}
	ch, err := s.feed.Subscribe(ctx, filter.Match, filter.AfterSeq, replay)
	if errors.Is(err, feed.ErrStopped) {
		return nil, inventory.Errorf(inventory.CodeUnavailable, "event feed is not running")
	}
	return ch, err
}
