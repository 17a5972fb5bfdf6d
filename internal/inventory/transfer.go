package inventory

import (
	"cmp"
	"slices"
	"time"
)

// TransferStatus is where a transfer is in its life: drafted, shipped (its
// units in transit), received in full, or cancelled.
type TransferStatus string

// Transfer statuses.
const (
	TransferDraft     TransferStatus = "DRAFT"
	TransferInTransit TransferStatus = "IN_TRANSIT"
	TransferReceived  TransferStatus = "RECEIVED"
	TransferCancelled TransferStatus = "CANCELLED"
)

// Valid reports whether s is a transfer status.
func (s TransferStatus) Valid() bool {
	switch s {
	case TransferDraft, TransferInTransit, TransferReceived, TransferCancelled:
		return true
	}
	return false
}

// MaxTransferItems bounds the products of one transfer.
const MaxTransferItems = 100

// Movement types of transfers. SHIP takes units from the origin's
// available stock and counts them incoming at the destination (a row at
// each); RECEIVE moves them from incoming on hand at the destination, into
// a state; RETURN gives what a cancelled transfer had in transit back to
// the origin (a row at each).
const (
	MovementShip    MovementType = "SHIP"
	MovementReceive MovementType = "RECEIVE"
	MovementReturn  MovementType = "RETURN"
)

// Transfer moves units of products from one location to another as a
// document: drafted, shipped (all items at once, from the origin's
// available units), received at the destination in one or more receipts,
// or cancelled (what is in transit goes back to the origin).
type Transfer struct {
	ID                      int64
	Status                  TransferStatus
	OriginID, DestinationID int64
	// Items are ordered by product ID, one per product.
	Items          []TransferItem
	Reference      string
	Actor          string
	IdempotencyKey string
	RequestHash    string
	// Version counts the transfer's changes.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// TransferItem is one product of a transfer.
type TransferItem struct {
	ProductID int64
	Quantity  int64
	// Shipped is Quantity once the transfer shipped; Received and Returned
	// are what has arrived at the destination and what went back to the
	// origin since.
	Shipped, Received, Returned int64
}

// InTransit is what of the item left the origin and has not arrived
// anywhere yet.
func (it TransferItem) InTransit() int64 { return it.Shipped - it.Received - it.Returned }

// Origin is the level product pid leaves from.
func (t *Transfer) Origin(pid int64) LevelKey {
	return LevelKey{ProductID: pid, LocationID: t.OriginID}
}

// Destination is the level product pid goes to.
func (t *Transfer) Destination(pid int64) LevelKey {
	return LevelKey{ProductID: pid, LocationID: t.DestinationID}
}

// Levels are every level the transfer can change: the origin's and the
// destination's of each item.
func (t *Transfer) Levels() []LevelKey {
	keys := make([]LevelKey, 0, 2*len(t.Items))
	for _, it := range t.Items {
		keys = append(keys, t.Origin(it.ProductID), t.Destination(it.ProductID))
	}
	return keys
}

// Clone returns a copy of t that shares nothing with it.
func (t *Transfer) Clone() *Transfer {
	c := *t
	c.Items = slices.Clone(t.Items)
	return &c
}

func (t *Transfer) item(pid int64) *TransferItem {
	i, ok := slices.BinarySearchFunc(t.Items, pid, func(it TransferItem, id int64) int { return cmp.Compare(it.ProductID, id) })
	if !ok {
		return nil
	}
	return &t.Items[i]
}

// NewTransfer is the input of CreateTransfer.
type NewTransfer struct {
	OriginID, DestinationID int64
	Items                   []TransferItemInput
	Reference               string
	IdempotencyKey          string
}

// TransferItemInput is one item of NewTransfer.
type TransferItemInput struct {
	ProductID int64
	Quantity  int64
}

// Check validates the new transfer and returns its items, ordered by
// product.
func (in NewTransfer) Check() ([]TransferItem, error) {
	switch {
	case in.OriginID <= 0:
		return nil, Errorf(CodeNotFound, "location %d not found", in.OriginID)
	case in.DestinationID <= 0:
		return nil, Errorf(CodeNotFound, "location %d not found", in.DestinationID)
	case in.OriginID == in.DestinationID:
		return nil, Invalid("destinationLocationId", "a transfer's destination must differ from its origin")
	case len(in.Items) == 0 || len(in.Items) > MaxTransferItems:
		return nil, Invalid("items", "a transfer has 1 to %d items", MaxTransferItems)
	}
	if err := ValidateText("reference", in.Reference, MaxRefLength); err != nil {
		return nil, err
	}
	if err := ValidateIdempotencyKey(in.IdempotencyKey); err != nil {
		return nil, err
	}
	items := make([]TransferItem, len(in.Items))
	for i, it := range in.Items {
		if it.ProductID <= 0 {
			return nil, Errorf(CodeNotFound, "product %d not found", it.ProductID)
		}
		if it.Quantity < 1 || it.Quantity > MaxQuantity {
			return nil, Invalid(ItemField("items", i, "quantity"), "quantity must be between 1 and %d", MaxQuantity)
		}
		items[i] = TransferItem{ProductID: it.ProductID, Quantity: it.Quantity}
	}
	slices.SortFunc(items, func(a, b TransferItem) int { return cmp.Compare(a.ProductID, b.ProductID) })
	items = SumLines(items, func(it TransferItem) int64 { return it.ProductID }, func(it *TransferItem) *int64 { return &it.Quantity })
	for _, it := range items {
		if it.Quantity > MaxQuantity {
			return nil, Invalid("items", "the items of one product sum to more than %d", MaxQuantity)
		}
	}
	return items, nil
}

// Fingerprint of the new transfer with its (checked) items.
func (in NewTransfer) Fingerprint(items []TransferItem) string {
	fields := []string{itoa(in.OriginID), itoa(in.DestinationID), in.Reference}
	for _, it := range items {
		fields = append(fields, itoa(it.ProductID), itoa(it.Quantity))
	}
	return requestHash("createTransfer", fields...)
}

// TransferReceipt is the input of ReceiveTransfer: units of some or all of
// a transfer's items that arrived, each into a state.
type TransferReceipt struct {
	TransferID     int64
	Items          []ReceivedItem
	IdempotencyKey string
}

// ReceivedItem is one line of a receipt. A product may have several lines,
// in different states.
type ReceivedItem struct {
	ProductID int64
	Quantity  int64
	// State is where the units go on hand; empty means AVAILABLE.
	State StockState
}

// Check validates the receipt and fills in default states.
func (in *TransferReceipt) Check() error {
	if in.TransferID <= 0 {
		return Errorf(CodeNotFound, "transfer %d not found", in.TransferID)
	}
	if len(in.Items) == 0 || len(in.Items) > 4*MaxTransferItems {
		return Invalid("items", "a receipt has 1 to %d lines", 4*MaxTransferItems)
	}
	if err := ValidateIdempotencyKey(in.IdempotencyKey); err != nil {
		return err
	}
	seen := map[ReceivedItem]bool{}
	for i := range in.Items {
		it := &in.Items[i]
		if it.State == "" {
			it.State = StateAvailable
		}
		switch {
		case it.Quantity < 1 || it.Quantity > MaxQuantity:
			return Invalid(ItemField("items", i, "quantity"), "quantity must be between 1 and %d", MaxQuantity)
		case !it.State.Valid() || it.State == StateIncoming:
			return Invalid(ItemField("items", i, "state"), "received units go to AVAILABLE, DAMAGED, QUALITY_CONTROL or SAFETY_STOCK")
		case seen[ReceivedItem{ProductID: it.ProductID, State: it.State}]:
			return Invalid("items", "product %d is listed twice in state %s", it.ProductID, it.State)
		}
		seen[ReceivedItem{ProductID: it.ProductID, State: it.State}] = true
	}
	return nil
}

// Fingerprint of the (checked) receipt.
func (in TransferReceipt) Fingerprint() string {
	fields := []string{itoa(in.TransferID)}
	for _, it := range in.Items {
		fields = append(fields, itoa(it.ProductID), itoa(it.Quantity), string(it.State))
	}
	return requestHash("receiveTransfer", fields...)
}

// TransferFingerprint is the fingerprint of a request (ship, cancel) that
// names only the transfer.
func TransferFingerprint(op string, id int64) string { return requestHash(op, itoa(id)) }

// TransferFilter selects transfers.
type TransferFilter struct {
	// Status keeps only transfers with this status (empty: any).
	Status TransferStatus
}

// TransferPage is a page of transfers ordered by ID.
type TransferPage struct {
	Transfers []Transfer
	HasNext   bool
}

// TransferResult is what transfer mutations return.
type TransferResult struct {
	Transfer Transfer
	// Replayed is true when the transfer was already as the request asks
	// (a retry): the request changed nothing.
	Replayed bool
}
