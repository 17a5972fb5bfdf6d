package grpcapi

import (
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	v1 "github.com/shopstack/inventory/internal/grpcapi/gen/inventory/v1"
	"github.com/shopstack/inventory/internal/inventory"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func toProduct(p inventory.Product, levels []inventory.Level) *v1.Product {
	out := &v1.Product{
		Id: p.ID, Sku: p.SKU, Name: p.Name, Price: p.Price.String(), Threshold: p.Threshold,
		Stock: p.Stock, Reserved: p.Reserved, Available: p.Available(), LowStock: p.LowStock(), Version: p.Version,
		CreateTime: ts(p.CreatedAt), UpdateTime: ts(p.UpdatedAt),
		Damaged: p.Damaged, QualityControl: p.QualityControl, SafetyStock: p.SafetyStock, Incoming: p.Incoming,
		BackorderLimit: p.BackorderLimit, Backordered: p.Backordered, Tracked: p.Tracked(), IsBundle: p.Bundle,
	}
	for _, c := range p.Components {
		out.Components = append(out.Components, &v1.BundleComponent{ProductId: c.ProductID, Quantity: c.Quantity})
	}
	for _, l := range levels {
		out.Levels = append(out.Levels, toLevel(l))
	}
	return out
}

func toLevel(l inventory.Level) *v1.Level {
	return &v1.Level{LocationId: l.LocationID, Stock: l.Stock, Reserved: l.Reserved, Available: l.Available(),
		Version: l.Version, UpdateTime: ts(l.UpdatedAt),
		Damaged: l.Damaged, QualityControl: l.QualityControl, SafetyStock: l.SafetyStock, Incoming: l.Incoming,
		Backordered: l.Backordered()}
}

func toStates(s inventory.States) *v1.StockStates {
	return &v1.StockStates{Damaged: s.Damaged, QualityControl: s.QualityControl, SafetyStock: s.SafetyStock, Incoming: s.Incoming}
}

// toStockState is UNSPECIFIED for no state ("").
func toStockState(s inventory.StockState) v1.StockState {
	if v, ok := v1.StockState_value["STOCK_STATE_"+string(s)]; ok && s != "" {
		return v1.StockState(v)
	}
	return v1.StockState_STOCK_STATE_UNSPECIFIED
}

// fromStockState is "" for UNSPECIFIED and for a value this server does
// not know, which the domain refuses as no state.
func fromStockState(s v1.StockState) inventory.StockState {
	if s == v1.StockState_STOCK_STATE_UNSPECIFIED {
		return ""
	}
	name, ok := v1.StockState_name[int32(s)]
	if !ok {
		return ""
	}
	return inventory.StockState(strings.TrimPrefix(name, "STOCK_STATE_"))
}

func toMovementType(t inventory.MovementType) v1.MovementType {
	if v, ok := v1.MovementType_value["MOVEMENT_TYPE_"+string(t)]; ok {
		return v1.MovementType(v)
	}
	return v1.MovementType_MOVEMENT_TYPE_UNSPECIFIED
}

func toMovement(m inventory.Movement) *v1.Movement {
	return &v1.Movement{
		Sequence: m.Seq, ProductId: m.ProductID, LocationId: m.LocationID, Type: toMovementType(m.Type),
		Delta: m.Delta, ReservedDelta: m.ReservedDelta, ReservationId: m.ReservationID,
		QuantityAfter: m.QuantityAfter, AvailableAfter: m.AvailableAfter, LowStockAlert: m.LowStockAlert,
		Reason: m.Reason, Reference: m.Reference, Actor: m.Actor, IdempotencyKey: m.IdempotencyKey,
		LeaseEpoch: m.Fence.Epoch, LeaseToken: m.Fence.Token, TraceId: m.TraceID, CreateTime: ts(m.CreatedAt),
		StatesDelta: toStates(m.StatesDelta), FromState: toStockState(m.FromState), ToState: toStockState(m.ToState),
		TransferId: m.TransferID, BundleId: m.BundleID,
	}
}

func toReservation(r inventory.Reservation) *v1.Reservation {
	out := &v1.Reservation{
		Id: r.ID, ExpireTime: ts(r.ExpiresAt), Reference: r.Reference, Actor: r.Actor,
		IdempotencyKey: r.IdempotencyKey, Version: r.Version, CreateTime: ts(r.CreatedAt), UpdateTime: ts(r.UpdatedAt),
	}
	if v, ok := v1.ReservationStatus_value["RESERVATION_STATUS_"+strings.ToUpper(string(r.StatusAt(time.Now())))]; ok {
		out.Status = v1.ReservationStatus(v)
	}
	for _, it := range r.Items {
		out.Items = append(out.Items, &v1.ReservationItem{ProductId: it.ProductID, LocationId: it.LocationID,
			Quantity: it.Quantity, Active: it.Active, BundleId: it.BundleID})
	}
	return out
}

// stockResult is the parts of a stock change's answer.
func stockResult(r inventory.StockResult) (*v1.Product, *v1.Level, *v1.Movement, bool) {
	return toProduct(r.Product, nil), toLevel(r.Level), toMovement(r.Movement), r.Replayed
}
