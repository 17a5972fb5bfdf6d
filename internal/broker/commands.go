package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/retry"
)

// Commands in: a broker delivers stock commands (CommandSchemaV1), the
// Consumer runs each through the service as any transport does (the
// principal's role, flow control, a span continuing the trace context in
// the message's headers), and answers with an outcome (OutcomeSchemaV1).
//
// The command's ID is its idempotency key, so a command delivered twice
// (redelivered after a crash, or retried after a transient failure that
// had in fact committed) changes stock once; the second run answers the
// first's outcome with replayed set. What to do with a delivery is the
// Consumer's decision (a Disposition); carrying it out is the adapter's:
// publish the outcome (and the dead letter) durably, then acknowledge.
const (
	CommandSchemaV1 = "inventory.command.v1"
	OutcomeSchemaV1 = "inventory.outcome.v1"
)

// Command types.
const (
	CommandStockIn     = "stockIn"
	CommandStockOut    = "stockOut"
	CommandMoveStock   = "moveStock"
	CommandExpectStock = "expectStock"
	CommandReserve     = "reserve"
	CommandCommit      = "commit"
	CommandRelease     = "release"

	CommandCreateTransfer  = "createTransfer"
	CommandShipTransfer    = "shipTransfer"
	CommandReceiveTransfer = "receiveTransfer"
	CommandCancelTransfer  = "cancelTransfer"
)

// Command is CommandSchemaV1. IDs are strings, as in the events; numbers
// are accepted too.
type Command struct {
	Schema string `json:"schema,omitempty"`
	// ID identifies the command (1-128 characters) and is its idempotency
	// key: send a retry with the same ID.
	ID   string `json:"id"`
	Type string `json:"type"`
	// stockIn, stockOut, moveStock and expectStock.
	ProductID  ID     `json:"productId,omitempty"`
	LocationID ID     `json:"locationId,omitempty"`
	Quantity   int64  `json:"quantity,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Reference  string `json:"reference,omitempty"`
	// moveStock: the states (AVAILABLE, DAMAGED, QUALITY_CONTROL,
	// SAFETY_STOCK, INCOMING) the units leave and enter, and, if set, the
	// quantity From must still hold (else CONFLICT).
	From               inventory.StockState `json:"from,omitempty"`
	To                 inventory.StockState `json:"to,omitempty"`
	ChangeFromQuantity *int64               `json:"changeFromQuantity,omitempty"`
	// reserve, createTransfer and receiveTransfer.
	Items      []CommandItem `json:"items,omitempty"`
	TTLSeconds int64         `json:"ttlSeconds,omitempty"`
	// commit and release.
	ReservationID ID `json:"reservationId,omitempty"`
	// createTransfer (with items and reference).
	OriginLocationID      ID `json:"originLocationId,omitempty"`
	DestinationLocationID ID `json:"destinationLocationId,omitempty"`
	// shipTransfer, receiveTransfer and cancelTransfer.
	TransferID ID `json:"transferId,omitempty"`
	// ReplyTo names where the outcome goes, in the adapter's terms (a
	// subject under PREFIX.outcome, a queue); empty: the default.
	ReplyTo string `json:"replyTo,omitempty"`
}

// CommandItem is one item of a reserve, createTransfer or
// receiveTransfer command.
type CommandItem struct {
	ProductID ID `json:"productId"`
	// LocationID is a reserve item's; a transfer's items have its
	// locations.
	LocationID ID    `json:"locationId,omitempty"`
	Quantity   int64 `json:"quantity"`
	// State is where a receiveTransfer item's units go on hand (empty:
	// AVAILABLE).
	State inventory.StockState `json:"state,omitempty"`
}

// ID is a numeric ID written as a JSON string or number.
type ID int64

// UnmarshalJSON accepts "42" and 42.
func (id *ID) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' {
		var err error
		if err = json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		// A type error: the decoder names the field.
		return &json.UnmarshalTypeError{Value: "ID " + string(b), Type: reflect.TypeFor[ID]()}
	}
	*id = ID(n)
	return nil
}

// MarshalJSON writes the ID as a string.
func (id ID) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(id), 10) + `"`), nil
}

// Outcome is OutcomeSchemaV1: what a command did.
type Outcome struct {
	Schema    string `json:"schema"`
	CommandID string `json:"commandId"`
	Type      string `json:"type"`
	// OK is true when the command was applied (or had been: Replayed).
	OK       bool `json:"ok"`
	Replayed bool `json:"replayed,omitempty"`
	// Code and Message say why not (the API's error codes); Field names
	// the input at fault for BAD_USER_INPUT.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Field   string `json:"field,omitempty"`
	// DeadLettered is true when the command failed on every attempt and
	// went to the dead letters; Code is its last failure.
	DeadLettered bool `json:"deadLettered,omitempty"`
	Attempts     int  `json:"attempts"`
	// Sequence and the levels after the change, for stockIn, stockOut,
	// moveStock and expectStock; as in the events, the levels are
	// negative for a product sold beyond its shelf.
	Sequence       int64 `json:"sequence,omitempty"`
	QuantityAfter  int64 `json:"quantityAfter,omitempty"`
	AvailableAfter int64 `json:"availableAfter,omitempty"`
	// Transfer, for createTransfer, shipTransfer, receiveTransfer and
	// cancelTransfer.
	TransferID     string `json:"transferId,omitempty"`
	TransferStatus string `json:"transferStatus,omitempty"`
	// Reservation, for reserve, commit and release.
	ReservationID     string     `json:"reservationId,omitempty"`
	ReservationStatus string     `json:"reservationStatus,omitempty"`
	ExpiresAt         *time.Time `json:"expiresAt,omitempty"`
	TraceID           string     `json:"traceId,omitempty"`
}

// Delivery is one command message as an adapter hands it over.
type Delivery struct {
	Data []byte
	// Header is the message's headers (trace context among them).
	Header map[string]string
	// Attempt counts deliveries of this message, 1 for the first.
	Attempt int
}

// Disposition is what the adapter must do with a delivery, in this order:
// publish Dead (if set) to the dead letters, publish Outcome (if set) to
// ReplyTo (the adapter's default when empty), and acknowledge; or, with
// Retry, deliver the command again after Delay. An adapter acknowledges
// only after what it published is durable, and redelivers when it cannot
// publish.
type Disposition struct {
	CommandID string
	Outcome   []byte
	ReplyTo   string
	// Dead, if not nil, is the dead letter: the command as received, with
	// the reason it could not be applied.
	Dead  *DeadLetter
	Retry bool
	Delay time.Duration
}

// DeadLetter is a command given up on.
type DeadLetter struct {
	Data     []byte
	Reason   string
	Attempts int
}

// CommandSource is a broker's side of the consumer.
type CommandSource interface {
	// Consume hands commands to handle, at most inFlight at once, and
	// carries out each Disposition, until ctx ends (nil) or the broker
	// fails (an error; the caller consumes again).
	Consume(ctx context.Context, inFlight int, handle func(context.Context, Delivery) Disposition) error
}

// Service is what commands run on (*app.Service).
type Service interface {
	StockIn(context.Context, inventory.StockChange) (inventory.StockResult, error)
	StockOut(context.Context, inventory.StockChange) (inventory.StockResult, error)
	MoveStock(context.Context, inventory.StockMove) (inventory.StockResult, error)
	ExpectStock(context.Context, inventory.StockChange) (inventory.StockResult, error)
	ReserveStock(context.Context, inventory.NewReservation) (inventory.ReservationResult, error)
	CommitReservation(context.Context, int64) (inventory.ReservationResult, error)
	ReleaseReservation(context.Context, int64) (inventory.ReservationResult, error)
	CreateTransfer(context.Context, inventory.NewTransfer) (inventory.TransferResult, error)
	ShipTransfer(ctx context.Context, id int64, key string) (inventory.TransferResult, error)
	ReceiveTransfer(context.Context, inventory.TransferReceipt) (inventory.TransferResult, error)
	CancelTransfer(ctx context.Context, id int64, key string) (inventory.TransferResult, error)
}

// DefaultRetry is the seed's schedule: a transient failure is retried after
// 1 s, 2 s, 4 s, 8 s, then the command goes to the dead letters.
var DefaultRetry = []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}

// Consumer runs commands. Service and Principal are required.
type Consumer struct {
	Service Service
	// Gate authorizes each command by Principal's role, as the GraphQL
	// field it runs, then admits it by flow control; nil authorizes as any
	// Gate does, and admits everything authorized.
	Gate *inventory.Gate
	// Principal is whom commands act as (the actor on their ledger rows);
	// whoever may publish to the command subject or queue acts as it.
	Principal inventory.Principal
	// Authenticate, if set, authenticates a command that carries an
	// Authorization header ("Bearer <token>", the header's name in any
	// case): it acts as the token's principal instead (its role, its
	// subject as the actor), and a refused token is its outcome
	// (UNAUTHENTICATED, not retried).
	Authenticate func(ctx context.Context, header string) (context.Context, error)
	// Retry is the delay before each retry of a transient failure; a
	// command fails len(Retry)+1 times before it is dead-lettered.
	Retry []time.Duration
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// InFlight bounds the commands run at once (default 64).
	InFlight int
	Log      *slog.Logger
	// Counts, if set, is called once per delivery handled with its result:
	// a code (OK, a permanent error code), "RETRY" or "DEAD".
	Counts func(commandType, result string)

	once sync.Once
}

func (c *Consumer) defaults() {
	c.once.Do(func() {
		if c.Retry == nil {
			c.Retry = DefaultRetry
		}
		if c.Timeout <= 0 {
			c.Timeout = 10 * time.Second
		}
		if c.InFlight <= 0 {
			c.InFlight = 64
		}
		if c.Log == nil {
			c.Log = slog.New(slog.DiscardHandler)
		}
	})
}

// Run consumes from src until ctx ends, consuming again (with backoff)
// whenever the broker fails.
func (c *Consumer) Run(ctx context.Context, src CommandSource) {
	c.defaults()
	bo := retry.Doubling(100*time.Millisecond, 5*time.Second)
	_ = retry.Forever(ctx, bo, func() error {
		start := time.Now()
		err := src.Consume(ctx, c.InFlight, c.Handle)
		if time.Since(start) > time.Minute {
			// It consumed for a while: this failure is a new one, not
			// the next of a series.
			bo.Reset()
		}
		if err == nil && ctx.Err() == nil {
			err = errors.New("consume returned while the consumer runs")
		}
		return err
	}, func(err error, wait time.Duration) {
		c.Log.Warn("command consumer: broker failed; consuming again", "err", err, "retryIn", wait.String())
	})
}

// authorization is the Authorization header of a delivery's headers.
func authorization(h map[string]string) string {
	for k, v := range h {
		if strings.EqualFold(k, "Authorization") {
			return v
		}
	}
	return ""
}

var tracer = otel.Tracer("github.com/shopstack/inventory/internal/broker")

// Handle runs one delivery and says what to do with it.
func (c *Consumer) Handle(ctx context.Context, d Delivery) Disposition {
	c.defaults()
	ctx = otel.GetTextMapPropagator().Extract(ctx, propagation.MapCarrier(d.Header))
	// The ID and where to answer first: with them a malformed command is
	// answered; without, only the dead letters can hold it.
	var head struct {
		ID      string `json:"id"`
		ReplyTo string `json:"replyTo"`
	}
	if err := json.Unmarshal(d.Data, &head); err != nil || head.ID == "" {
		reason := "BAD_USER_INPUT: not a command with an id"
		if err != nil {
			reason += ": " + inventory.JSONError(err).Message
		}
		c.count("unknown", "DEAD")
		return Disposition{Dead: &DeadLetter{Data: d.Data, Reason: reason, Attempts: d.Attempt}}
	}
	var cmd Command
	decodeErr := decodeCommand(d.Data, &cmd)
	cmd.ID, cmd.ReplyTo = head.ID, head.ReplyTo
	ctx, span := tracer.Start(ctx, "inventory.command "+cmd.Type, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("inventory.command.id", cmd.ID), attribute.Int("inventory.command.attempt", d.Attempt)))
	defer span.End()
	disp := Disposition{CommandID: cmd.ID, ReplyTo: cmd.ReplyTo}
	out := Outcome{Schema: OutcomeSchemaV1, CommandID: cmd.ID, Type: cmd.Type, Attempts: d.Attempt,
		TraceID: span.SpanContext().TraceID().String()}
	if !span.SpanContext().IsValid() {
		out.TraceID = ""
	}
	limit := len(c.Retry) + 1
	var err error
	if d.Attempt > limit+1 {
		// Delivered again and again without an outcome: the process
		// handling it died each time. Do not run it again.
		err = inventory.Errorf(inventory.CodeInternal, "delivered %d times without an outcome", d.Attempt)
	} else {
		actx, cancel := context.WithTimeout(ctx, c.Timeout)
		actx = inventory.WithTransport(inventory.WithPrincipal(actx, c.Principal), "broker")
		if h := authorization(d.Header); h != "" && c.Authenticate != nil {
			actx, err = c.Authenticate(actx, h)
		}
		if err == nil {
			err = c.run(actx, decodeErr, cmd, &out)
		}
		cancel()
	}
	if err == nil {
		out.OK = true
		disp.Outcome = c.marshal(out)
		c.count(cmd.Type, "OK")
		return disp
	}
	span.SetStatus(codes.Error, string(inventory.ErrorCode(err)))
	out.Code, out.Message = string(inventory.ErrorCode(err)), inventory.ErrorMessage(err)
	if de, ok := errors.AsType[*inventory.Error](err); ok {
		out.Field = de.Field
	}
	if !transient(err) {
		disp.Outcome = c.marshal(out)
		c.count(cmd.Type, out.Code)
		return disp
	}
	if d.Attempt < limit {
		delay := c.Retry[d.Attempt-1]
		if de, ok := errors.AsType[*inventory.Error](err); ok && de.RetryAfter > delay {
			delay = de.RetryAfter
		}
		c.Log.InfoContext(ctx, "command failed; will retry", "command", cmd.ID, "attempt", d.Attempt, "retryIn", delay.String(), "err", err)
		c.count(cmd.Type, "RETRY")
		return Disposition{CommandID: cmd.ID, Retry: true, Delay: delay}
	}
	c.Log.WarnContext(ctx, "command failed on every attempt; dead-lettered", "command", cmd.ID, "attempts", d.Attempt, "err", err)
	out.DeadLettered = true
	disp.Outcome = c.marshal(out)
	disp.Dead = &DeadLetter{Data: d.Data, Reason: out.Code + ": " + out.Message, Attempts: d.Attempt}
	c.count(cmd.Type, "DEAD")
	return disp
}

// decodeCommand decodes data into cmd as json.Unmarshal does, except that
// an item of items that does not decode is named by its index, as GraphQL
// names it (items[1].quantity, where encoding/json says items.quantity):
// a command that does not decode has its items read once more, one at a
// time, through inventory.JSONItems.
func decodeCommand(data []byte, cmd *Command) error {
	err := json.Unmarshal(data, cmd)
	if err == nil {
		return nil
	}
	var list struct {
		Items json.RawMessage `json:"items"`
	}
	if json.Unmarshal(data, &list) == nil {
		if _, itemErr := inventory.JSONItems[CommandItem]("items", list.Items, json.Unmarshal); itemErr != nil {
			return itemErr
		}
	}
	return err
}

// transient reports whether a failure may pass: the service unavailable,
// flow control refusing, a lease lost, an attempt out of time, or an
// internal error (which the retries and dead letters bound).
func transient(err error) bool {
	if de, ok := errors.AsType[*inventory.Error](err); ok {
		return de.Retryable() || de.Code == inventory.CodeInternal
	}
	return true
}

func (c *Consumer) count(typ, result string) {
	if c.Counts != nil {
		c.Counts(typ, result)
	}
}

func (c *Consumer) marshal(o Outcome) []byte {
	b, _ := json.Marshal(o) // strings, numbers, a time
	return b
}

// run checks cmd and runs it as its operation.
func (c *Consumer) run(ctx context.Context, decodeErr error, cmd Command, out *Outcome) error {
	if decodeErr != nil {
		e := inventory.JSONError(decodeErr)
		e.Message = "not a command: " + e.Message
		return e
	}
	if cmd.Schema != "" && cmd.Schema != CommandSchemaV1 {
		return &inventory.Error{Code: inventory.CodeBadInput, Field: "schema", Message: fmt.Sprintf("unknown schema %q (want %s)", cmd.Schema, CommandSchemaV1)}
	}
	if len(cmd.ID) > inventory.MaxKeyLength {
		return &inventory.Error{Code: inventory.CodeBadInput, Field: "id", Message: fmt.Sprintf("at most %d characters", inventory.MaxKeyLength)}
	}
	op, products, call, err := c.operation(cmd, out)
	if err != nil {
		return err
	}
	done, err := c.Gate.Admit(ctx, op, products)
	if err != nil {
		return err
	}
	err = call(ctx)
	done(err)
	return err
}
