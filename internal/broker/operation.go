package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

// operation is the command table: it returns the operation cmd is, the
// products it moves and the call, which fills out.
func (c *Consumer) operation(cmd Command, out *Outcome) (string, []int64, func(context.Context) error, error) {
	change := inventory.StockChange{ProductID: int64(cmd.ProductID), LocationID: int64(cmd.LocationID), Quantity: cmd.Quantity,
		Reason: cmd.Reason, Reference: cmd.Reference, IdempotencyKey: cmd.ID}
	product := []int64{change.ProductID}
	reservation := func(fn func(context.Context) (inventory.ReservationResult, error)) func(context.Context) error {
		return func(ctx context.Context) error {
			r, err := fn(ctx)
			if err == nil {
				out.Replayed = r.Replayed
				out.ReservationID = strconv.FormatInt(r.Reservation.ID, 10)
				out.ReservationStatus = string(r.Reservation.Status)
				if !r.Reservation.ExpiresAt.IsZero() {
					at := r.Reservation.ExpiresAt.UTC()
					out.ExpiresAt = &at
				}
			}
			return err
		}
	}
	switch cmd.Type {
	case CommandStockIn:
		return "stockIn", product, stock(c.Service.StockIn, change, out), nil
	case CommandStockOut:
		return "stockOut", product, stock(c.Service.StockOut, change, out), nil
	case CommandMoveStock:
		move := inventory.StockMove{ProductID: change.ProductID, LocationID: change.LocationID, Quantity: cmd.Quantity,
			From: cmd.From, To: cmd.To, ChangeFromQuantity: cmd.ChangeFromQuantity, Reason: cmd.Reason,
			Reference: cmd.Reference, IdempotencyKey: cmd.ID}
		return "moveStock", product, stock(c.Service.MoveStock, move, out), nil
	case CommandExpectStock:
		return "expectStock", product, stock(c.Service.ExpectStock, change, out), nil
	case CommandReserve:
		in := inventory.NewReservation{TTL: time.Duration(cmd.TTLSeconds) * time.Second, Reference: cmd.Reference, IdempotencyKey: cmd.ID}
		var products []int64
		for _, it := range cmd.Items {
			in.Items = append(in.Items, inventory.ReservationItemInput{ProductID: int64(it.ProductID), LocationID: int64(it.LocationID), Quantity: it.Quantity})
			products = append(products, int64(it.ProductID))
		}
		return "reserveStock", products, reservation(func(ctx context.Context) (inventory.ReservationResult, error) {
			return c.Service.ReserveStock(ctx, in)
		}), nil
	case CommandCommit, CommandRelease:
		id := int64(cmd.ReservationID)
		if id <= 0 {
			return "", nil, nil, &inventory.Error{Code: inventory.CodeBadInput, Field: "reservationId", Message: "required"}
		}
		if cmd.Type == CommandCommit {
			return "commitReservation", nil, reservation(func(ctx context.Context) (inventory.ReservationResult, error) {
				return c.Service.CommitReservation(ctx, id)
			}), nil
		}
		return "releaseReservation", nil, reservation(func(ctx context.Context) (inventory.ReservationResult, error) {
			return c.Service.ReleaseReservation(ctx, id)
		}), nil
	}
	return "", nil, nil, &inventory.Error{Code: inventory.CodeBadInput, Field: "type",
		Message: fmt.Sprintf("unknown command type %q (want stockIn, stockOut, moveStock, expectStock, reserve, commit or release)", cmd.Type)}
}

// stock is a stock command's call of fn with in; it fills out with the
// ledger row's sequence and the level after it.
func stock[In any](fn func(context.Context, In) (inventory.StockResult, error), in In, out *Outcome) func(context.Context) error {
	return func(ctx context.Context) error {
		r, err := fn(ctx, in)
		if err == nil {
			out.Replayed, out.Sequence = r.Replayed, r.Movement.Seq
			out.QuantityAfter, out.AvailableAfter = r.Movement.QuantityAfter, r.Movement.AvailableAfter
		}
		return err
	}
}
