package broker

import (
	"cmp"
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
		if err := required("reservationId", cmd.ReservationID); err != nil {
			return "", nil, nil, err
		}
		if cmd.Type == CommandCommit {
			return "commitReservation", nil, reservation(func(ctx context.Context) (inventory.ReservationResult, error) {
				return c.Service.CommitReservation(ctx, id)
			}), nil
		}
		return "releaseReservation", nil, reservation(func(ctx context.Context) (inventory.ReservationResult, error) {
			return c.Service.ReleaseReservation(ctx, id)
		}), nil
	case CommandCreateTransfer, CommandShipTransfer, CommandReceiveTransfer, CommandCancelTransfer:
		products, call, err := c.transferOperation(cmd, out)
		return cmd.Type, products, call, err
	}
	return "", nil, nil, &inventory.Error{Code: inventory.CodeBadInput, Field: "type",
		Message: fmt.Sprintf("unknown command type %q (want stockIn, stockOut, moveStock, expectStock, reserve, commit, release, "+
			"createTransfer, shipTransfer, receiveTransfer or cancelTransfer)", cmd.Type)}
}

// transferOperation is the command table's part for transfer commands,
// which run as the GraphQL fields of their names: the products a command
// names (admitted as GraphQL admits its input's items) and the call, which
// fills out with the transfer. The command's ID is the idempotency key of
// the transfer's creation or transition.
func (c *Consumer) transferOperation(cmd Command, out *Outcome) ([]int64, func(context.Context) error, error) {
	if err := checkTransferItems(cmd); err != nil {
		return nil, nil, err
	}
	var products []int64
	for _, it := range cmd.Items {
		products = append(products, int64(it.ProductID))
	}
	id := int64(cmd.TransferID)
	if cmd.Type != CommandCreateTransfer && id <= 0 {
		return nil, nil, required("transferId", cmd.TransferID)
	}
	var fn func(context.Context) (inventory.TransferResult, error)
	switch cmd.Type {
	case CommandCreateTransfer:
		if err := cmp.Or(required("originLocationId", cmd.OriginLocationID), required("destinationLocationId", cmd.DestinationLocationID)); err != nil {
			return nil, nil, err
		}
		in := inventory.NewTransfer{OriginID: int64(cmd.OriginLocationID), DestinationID: int64(cmd.DestinationLocationID),
			Reference: cmd.Reference, IdempotencyKey: cmd.ID}
		for _, it := range cmd.Items {
			in.Items = append(in.Items, inventory.TransferItemInput{ProductID: int64(it.ProductID), Quantity: it.Quantity})
		}
		fn = func(ctx context.Context) (inventory.TransferResult, error) { return c.Service.CreateTransfer(ctx, in) }
	case CommandShipTransfer:
		fn = func(ctx context.Context) (inventory.TransferResult, error) {
			return c.Service.ShipTransfer(ctx, id, cmd.ID)
		}
	case CommandCancelTransfer:
		fn = func(ctx context.Context) (inventory.TransferResult, error) {
			return c.Service.CancelTransfer(ctx, id, cmd.ID)
		}
	default: // CommandReceiveTransfer
		in := inventory.TransferReceipt{TransferID: id, IdempotencyKey: cmd.ID}
		for _, it := range cmd.Items {
			in.Items = append(in.Items, inventory.ReceivedItem{ProductID: int64(it.ProductID), Quantity: it.Quantity, State: it.State})
		}
		fn = func(ctx context.Context) (inventory.TransferResult, error) { return c.Service.ReceiveTransfer(ctx, in) }
	}
	return products, func(ctx context.Context) error {
		r, err := fn(ctx)
		if err == nil {
			out.Replayed = r.Replayed
			out.TransferID = strconv.FormatInt(r.Transfer.ID, 10)
			out.TransferStatus = string(r.Transfer.Status)
		}
		return err
	}, nil
}

// checkTransferItems refuses what a transfer command's items cannot mean,
// rather than ignore it: a location (the transfer's are its origin and
// destination), or a state on an item not being received.
func checkTransferItems(cmd Command) error {
	for i, it := range cmd.Items {
		switch {
		case it.LocationID != 0:
			return &inventory.Error{Code: inventory.CodeBadInput, Field: inventory.ItemField("items", i, "locationId"),
				Message: "a transfer's items move between its originLocationId and destinationLocationId"}
		case it.State != "" && cmd.Type != CommandReceiveTransfer:
			return &inventory.Error{Code: inventory.CodeBadInput, Field: inventory.ItemField("items", i, "state"), Message: "only receiveTransfer's items have a state"}
		}
	}
	return nil
}

// required refuses a missing (or non-positive) ID of a command.
func required(field string, id ID) error {
	if id <= 0 {
		return &inventory.Error{Code: inventory.CodeBadInput, Field: field, Message: "required"}
	}
	return nil
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
