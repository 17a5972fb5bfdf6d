package model

import (
	"time"

	"github.com/shopstack/inventory/internal/inventory"
)

// ProductConnection is a page of products; totalCount is resolved only when
// asked for, with the filter kept here.
type ProductConnection struct {
	Edges    []*ProductEdge
	PageInfo *PageInfo
	Filter   inventory.ProductFilter
}

// StockChangedEvent is one committed stock change.
type StockChangedEvent struct {
	Sequence int64
	Movement inventory.Movement
	// Bundles are the subscribed bundles the movement's product is a
	// component of.
	Bundles []int64
}

// LowStockAlert is raised by the movement that took a product below its
// threshold.
type LowStockAlert struct {
	Sequence  int64
	Available int64
	Movement  inventory.Movement
	At        time.Time
}

// ReservationEvent is one ledger row of a reservation change.
type ReservationEvent struct {
	Sequence int64
	Type     inventory.MovementType
	Movement inventory.Movement
}

// HotProduct is one of flowControl's hot products; its product is resolved
// only when asked for.
type HotProduct struct {
	ProductID ID
	Admitted  int64
	Blocked   int64
}

// StockLevel is a level with its location. The location is resolved with
// the level (it is a lookup in memory), so the field needs no resolver, and
// no goroutine of its own per level of a page.
type StockLevel struct {
	inventory.Level
	Location *inventory.Location
}

// Node is an object of a type that implements the GraphQL Node interface:
// an *inventory.Product, *inventory.Location, *inventory.Movement,
// *inventory.Reservation or *inventory.Transfer.
type Node any
