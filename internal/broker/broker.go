// Package broker connects the service to a message broker both ways.
// Events out: every committed change (and every low-stock alert) as an
// event, in sequence order, exactly once after deduplication — the
// broker's where it can (JetStream), the consumer's by sequence where it
// cannot (RabbitMQ). Commands in: see Consumer.
//
// The ledger is the outbox. A Relay, run by one elected replica, asks the
// broker for the last sequence it holds, reads the ledger after it (up to
// the watermark, so nothing below is still uncommitted) and publishes in
// order, each event carrying its sequence as its message ID. Nothing is
// written to the database for it: whatever was committed and not yet
// published is found again in the ledger after a crash, a broker outage or
// a leader change. An adapter never stores a gap; natsbroker also refuses
// a message whose predecessor is not the stream's last, so order and
// uniqueness hold in the broker itself, while rabbitbroker keeps order per
// publisher and leaves repeats to consumers.
package broker

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

// SchemaV1 names the events' JSON schema. Fields are only ever added.
const SchemaV1 = "inventory.stock.v1"

// Event is one ledger row as published: its JSON (SchemaV1) and where it
// goes.
type Event struct {
	Seq int64
	// ProductID orders events per product for consumers that partition.
	ProductID int64
	// Alert says the change took the product below its threshold.
	Alert bool
	Data  []byte
}

// eventJSON is SchemaV1. Its quantityAfter and availableAfter are
// negative after a sale beyond the shelf of a product with a backorder
// limit. A component's row of a bundle's sale or reservation names the
// bundle (bundleId).
type eventJSON struct {
	Schema         string    `json:"schema"`
	Sequence       int64     `json:"sequence"`
	Type           string    `json:"type"`
	ProductID      string    `json:"productId"`
	LocationID     string    `json:"locationId"`
	Delta          int64     `json:"delta"`
	ReservedDelta  int64     `json:"reservedDelta"`
	StatesDelta    states    `json:"statesDelta"`
	FromState      string    `json:"fromState,omitempty"`
	ToState        string    `json:"toState,omitempty"`
	ReservationID  string    `json:"reservationId,omitempty"`
	TransferID     string    `json:"transferId,omitempty"`
	BundleID       string    `json:"bundleId,omitempty"`
	QuantityAfter  int64     `json:"quantityAfter"`
	AvailableAfter int64     `json:"availableAfter"`
	LowStockAlert  bool      `json:"lowStockAlert"`
	Reason         string    `json:"reason,omitempty"`
	Reference      string    `json:"reference,omitempty"`
	Actor          string    `json:"actor"`
	IdempotencyKey string    `json:"idempotencyKey,omitempty"`
	TraceID        string    `json:"traceId,omitempty"`
	CreatedAt      time.Time `json:"createdAt"`
}

// states is a row's changes of the level's states, present on every event
// as delta and reservedDelta are, so a consumer can sum them without
// checking for them.
type states struct {
	Damaged        int64 `json:"damaged"`
	QualityControl int64 `json:"qualityControl"`
	SafetyStock    int64 `json:"safetyStock"`
	Incoming       int64 `json:"incoming"`
}

// NewEvent returns the event of a ledger row.
func NewEvent(m inventory.Movement) Event {
	e := eventJSON{
		Schema: SchemaV1, Sequence: m.Seq, Type: string(m.Type), ProductID: strconv.FormatInt(m.ProductID, 10),
		LocationID: strconv.FormatInt(m.LocationID, 10), Delta: m.Delta, ReservedDelta: m.ReservedDelta,
		StatesDelta: states{Damaged: m.StatesDelta.Damaged, QualityControl: m.StatesDelta.QualityControl,
			SafetyStock: m.StatesDelta.SafetyStock, Incoming: m.StatesDelta.Incoming},
		FromState: string(m.FromState), ToState: string(m.ToState),
		QuantityAfter: m.QuantityAfter, AvailableAfter: m.AvailableAfter, LowStockAlert: m.LowStockAlert,
		Reason: m.Reason, Reference: m.Reference, Actor: m.Actor, IdempotencyKey: m.IdempotencyKey,
		TraceID: m.TraceID, CreatedAt: m.CreatedAt.UTC(),
	}
	if m.ReservationID != 0 {
		e.ReservationID = strconv.FormatInt(m.ReservationID, 10)
	}
	if m.TransferID != 0 {
		e.TransferID = strconv.FormatInt(m.TransferID, 10)
	}
	if m.BundleID != 0 {
		e.BundleID = strconv.FormatInt(m.BundleID, 10)
	}
	b, _ := json.Marshal(e) // strings, numbers and a time only
	return Event{Seq: m.Seq, ProductID: m.ProductID, Alert: m.LowStockAlert, Data: b}
}

// Publisher is a broker's side of the relay.
type Publisher interface {
	// Last returns the sequence of the last event the broker holds, or 0.
	Last(ctx context.Context) (int64, error)
	// Publish stores events, which follow Last in sequence order, and
	// returns when the broker has confirmed them all. after is the sequence
	// the first must follow (the Last the publisher read, or its previous
	// batch's last); a broker that can refuses an event whose predecessor
	// is not its last. An error may leave some of events stored.
	Publish(ctx context.Context, after int64, events []Event) error
}

// Ledger is where the relay reads committed changes: ascending Movements
// with After, which read only up to the watermark.
type Ledger interface {
	Movements(ctx context.Context, q inventory.MovementQuery) (inventory.MovementPage, error)
}
