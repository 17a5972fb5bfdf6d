package inventory

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MovementType says why stock moved. The database knows the types too: a
// new type is a row of SQLite's movement_types table and a value of
// PostgreSQL's CHECK on the ledger (TestMovementTypesAgree).
type MovementType string

// Movement types.
const (
	MovementIn     MovementType = "IN"
	MovementOut    MovementType = "OUT"
	MovementAdjust MovementType = "ADJUST"
	// Reservation movements. RESERVE holds units (reserved +q); COMMIT
	// sells held units (stock -q, reserved -q); RELEASE and EXPIRE give
	// them back (reserved -q).
	MovementReserve MovementType = "RESERVE"
	MovementCommit  MovementType = "COMMIT"
	MovementRelease MovementType = "RELEASE"
	MovementExpire  MovementType = "EXPIRE"
	// CORRECTION is written by RepairDrift: its Delta makes the ledger
	// explain the level's stored stock (which it does not change), and its
	// ReservedDelta and StatesDelta bring the reserved units back to what
	// the active reservations hold and the states to what their history
	// says.
	MovementCorrection MovementType = "CORRECTION"
	// MOVE moves units between the states of a level; EXPECT records units
	// on their way from a supplier (incoming +q).
	MovementMove   MovementType = "MOVE"
	MovementExpect MovementType = "EXPECT"
)

// LevelKey names the stock of one product at one location. It is the unit
// of locking and of the stock transaction.
type LevelKey struct {
	ProductID  int64
	LocationID int64
}

// LockName is the distributed-lock key for k.
func (k LevelKey) LockName() string {
	return "stock/" + strconv.FormatInt(k.ProductID, 10) + "/" + strconv.FormatInt(k.LocationID, 10)
}

// Fence identifies the lease a write is made under: the lock epoch, which
// changes when the lock backend's fencing domain changes, and the backend's
// fencing token within it. Fences are ordered by epoch, then token; a level
// accepts a write only under a fence at least as new as the last one that
// wrote it.
type Fence struct {
	Epoch int64
	Token int64
}

// Before reports whether f is older than g.
func (f Fence) Before(g Fence) bool {
	return f.Epoch < g.Epoch || (f.Epoch == g.Epoch && f.Token < g.Token)
}

// Level is the stock of one product at one location.
type Level struct {
	ProductID  int64
	LocationID int64
	Stock      int64 // on hand
	Reserved   int64
	// States are the level's units that are neither available nor
	// reserved.
	States
	// Version increases with every write of the level.
	Version int64
	// Fence is the fence of the latest lease that wrote the level.
	Fence Fence
	// NextExpiry is no later than the earliest expiry of the level's active
	// reservation items (zero: none). When it has passed, a stock
	// transaction on the level releases what has expired first.
	NextExpiry time.Time
	UpdatedAt  time.Time
}

// Available is what can be sold or reserved: on hand minus reserved and
// held.
func (l Level) Available() int64 { return available(l.Stock, l.Reserved, l.States) }

// Key names the level.
func (l Level) Key() LevelKey { return LevelKey{ProductID: l.ProductID, LocationID: l.LocationID} }

// Movement is one row of the stock ledger. The ledger explains the stock:
// for every level, Stock is the sum of its movements' Deltas.
type Movement struct {
	// Seq is the ledger sequence: unique, and increasing in commit order
	// for each product. Across products it is a total order that readers
	// of the ledger see without gaps: a movement becomes visible to them
	// only once every lower sequence is committed or never will be (see
	// Store.LastSeq). The numbers themselves may skip values.
	Seq        int64
	ProductID  int64
	LocationID int64
	Type       MovementType
	// Delta is the change of the level's on-hand stock.
	Delta int64
	// ReservedDelta is the change of the level's reserved stock.
	ReservedDelta int64
	// StatesDelta is the change of the level's states.
	StatesDelta States
	// FromState and ToState name the states a MOVE (or a transfer's
	// movement) took units from and put them in ("": none).
	FromState, ToState StockState
	// TransferID is the transfer a transfer's movement belongs to.
	TransferID int64
	// ReservationID is the reservation a reservation movement belongs to.
	ReservationID int64
	// BundleID is the bundle sold or reserved, on a component's movement.
	BundleID int64
	// QuantityAfter is the level's on-hand stock after this movement.
	QuantityAfter int64
	// AvailableAfter is the product's available stock (all locations) after
	// this movement.
	AvailableAfter int64
	// LowStockAlert is set on the movement that took the product below its
	// threshold while the alert was armed.
	LowStockAlert  bool
	Reason         string
	Reference      string
	Actor          string
	IdempotencyKey string
	// RequestHash identifies the request that made the movement, so a retry
	// with the same idempotency key but a different input is told apart.
	RequestHash string
	// Fence is the lease the movement was written under.
	Fence     Fence
	TraceID   string
	CreatedAt time.Time
}

// StockTx is the state one stock transaction reads and changes. The store
// loads it inside the transaction (with the product row locked), the
// service's rules change it through Apply, and the store writes back the
// level, the product totals and the appended movements atomically.
type StockTx struct {
	// Product is the level's product, shared by the StockTx of all its
	// levels in one transaction, so its totals stay one value. After the
	// commit its LastSeq is its latest movement's sequence.
	Product *Product
	Level   Level
	// ReadSeq is the product's LastSeq as the transaction read it: the
	// state the transaction changed is the product's as of ReadSeq.
	ReadSeq int64
	// Replays holds the existing movements for the idempotency keys the
	// caller asked about.
	Replays map[string]Movement
	// Err, set by the store, says why the level cannot be changed (its
	// product or location does not exist).
	Err error
	// Expired are the level's active reservation items that had expired
	// when the transaction began (loaded only when the level's NextExpiry
	// had passed), and NextActiveExpiry the earliest expiry of its other
	// active items (zero: none).
	Expired          []ReservedItem
	NextActiveExpiry time.Time
	// Rejections are the earlier refusals of the replay keys the caller
	// asked about.
	Rejections map[string]Rejection
	// Audit is the level's stored values beside what its history says, as
	// the transaction read them (loaded only when LevelWork.Audit asks).
	Audit *LevelAudit

	movements []Movement
	rejected  []Rejection
}

// Rejection is a stock request refused for a reason a retry cannot
// change, remembered by its idempotency key, so that a late duplicate of
// the request is refused alike rather than applied after the client was
// told no.
type Rejection struct {
	Key, RequestHash string
	Code             Code
	Message          string
	// Field is the input the refusal named (Error.Field), if any.
	Field string
}

// Reject records a final refusal, written with the transaction.
func (tx *StockTx) Reject(r Rejection) { tx.rejected = append(tx.rejected, r) }

// NewRejections returns the refusals recorded by Reject.
func (tx *StockTx) NewRejections() []Rejection { return tx.rejected }

// Movements returns the movements appended so far; after the store commits,
// they carry their sequence numbers.
func (tx *StockTx) Movements() []Movement { return tx.movements }

// Discard drops the appended movements: the store then leaves the level
// and its product untouched.
func (tx *StockTx) Discard() { tx.movements = nil }

// Apply checks m against the current state and, if it is allowed, applies
// it: the level and product totals change, m gets its after-values and alert
// flag, and it is appended to the transaction. A rejected movement changes
// nothing.
func (tx *StockTx) Apply(m *Movement) error {
	stock, reserved := tx.Level.Stock+m.Delta, tx.Level.Reserved+m.ReservedDelta
	states := tx.Level.States.Plus(m.StatesDelta)
	total, totalReserved := tx.Product.Stock+m.Delta, tx.Product.Reserved+m.ReservedDelta
	switch {
	case reserved < 0 || totalReserved < 0:
		return fmt.Errorf("inventory: %s movement of %d would leave %d reserved", m.Type, m.ReservedDelta, reserved)
	case states.Negative() != "":
		st := states.Negative()
		return Errorf(CodeInsufficientStock, "insufficient stock: %d %s, %d requested",
			tx.Level.States.Of(st), st, -m.StatesDelta.Of(st))
	case tx.oversells(available(stock, reserved, states)) && m.ReservedDelta+m.StatesDelta.Held()-m.Delta > 0:
		// What the movement asks of the available stock: units taken out,
		// plus units newly held or reserved. (A movement that asks
		// nothing of it is never refused for want of stock: a level below
		// its limit still fills its backorders.)
		return Errorf(CodeInsufficientStock, "insufficient stock: %d available, %d requested",
			tx.Sellable(), m.ReservedDelta+m.StatesDelta.Held()-m.Delta)
	case total > MaxStock || tx.Product.Incoming+m.StatesDelta.Incoming > MaxStock:
		return Invalid("quantity", "stock of a product cannot exceed %d", MaxStock)
	}
	backordered := tx.Level.Backordered()
	tx.Level.States, tx.Product.States = states, tx.Product.States.Plus(m.StatesDelta)
	tx.Level.Stock, tx.Level.Reserved = stock, reserved
	tx.Product.Stock, tx.Product.Reserved = total, totalReserved
	tx.Product.Backordered += tx.Level.Backordered() - backordered
	m.ProductID, m.LocationID = tx.Level.ProductID, tx.Level.LocationID
	m.QuantityAfter = stock
	m.AvailableAfter = tx.Product.Available()
	m.LowStockAlert = false
	switch low := tx.Product.LowStock(); {
	case low && !tx.Product.LowStockAlerted:
		m.LowStockAlert = true
		tx.Product.LowStockAlerted = true
	case !low:
		tx.Product.LowStockAlerted = false
	}
	tx.movements = append(tx.movements, *m)
	return nil
}

// oversells reports whether available, the level's available units after
// a change, is more than its product lets it sell: below its backorder
// limit, for a tracked product (an untracked one is never refused for
// want of stock).
func (tx *StockTx) oversells(available int64) bool {
	return !tx.Product.Untracked && available < -tx.Product.BackorderLimit
}

// CheckOnHand refuses to set the level's on-hand stock to q if that would
// leave it more reserved and held than its product lets it sell.
func (tx *StockTx) CheckOnHand(q int64) error {
	if l := tx.Level; tx.oversells(available(q, l.Reserved, l.States)) {
		return Errorf(CodeInsufficientStock, "stock of product %d at location %d cannot be %d: %d units are reserved and %d held",
			l.ProductID, l.LocationID, q, l.Reserved, l.Held())
	}
	return nil
}

// Sellable is what the level can still sell or hold: its available units,
// and the backorders its product allows.
func (tx *StockTx) Sellable() int64 { return max(tx.Level.Available()+tx.Product.BackorderLimit, 0) }

// txMark is a StockTx's state at one point of the transaction, which
// restore goes back to.
type txMark struct {
	level              Level
	product            Product
	movements, rejects int
}

func (tx *StockTx) mark() txMark {
	return txMark{level: tx.Level, product: *tx.Product, movements: len(tx.movements), rejects: len(tx.rejected)}
}

// restore undoes what was applied to tx since m. Levels of one product
// share it, so their marks are taken before any of them changes.
func (tx *StockTx) restore(m txMark) {
	tx.Level, *tx.Product = m.level, m.product
	clear(tx.movements[m.movements:])
	tx.movements = tx.movements[:m.movements]
	tx.rejected = tx.rejected[:m.rejects]
}

// Committed records what the store wrote: the appended movements got the
// sequences seqs (increasing), and the level a new version and fence. (The
// product's LastSeq is the store's to set: it is the largest sequence of
// the product's ledger rows, which the store reads back.)
func (tx *StockTx) Committed(seqs []int64, fence Fence, at time.Time) {
	for i := range tx.movements {
		m := &tx.movements[i]
		m.Seq = seqs[i]
		// A product's first movement is applied before the product has an ID.
		m.ProductID, m.LocationID = tx.Level.ProductID, tx.Level.LocationID
	}
	tx.Level.Version++
	if fence != (Fence{}) {
		tx.Level.Fence = fence
	}
	tx.Level.UpdatedAt = at
}

// Store errors the service reacts to by retrying the transaction.
var (
	// ErrVersionConflict means a compare-and-set on a level's version found
	// another writer's change.
	ErrVersionConflict = errors.New("inventory: stock level changed concurrently")
	// ErrDuplicateKey means another transaction committed a movement with the
	// same idempotency key first.
	ErrDuplicateKey = errors.New("inventory: idempotency key already used")
	// ErrLevelBusy is the Err of a level that a transaction with
	// StockOptions.SkipLocked did not wait for.
	ErrLevelBusy = errors.New("inventory: stock level is locked by another transaction")
)

// StockChange is the input of StockIn and StockOut.
type StockChange struct {
	ProductID int64
	// LocationID is the location; zero means the default location.
	LocationID     int64
	Quantity       int64
	Reason         string
	Reference      string
	IdempotencyKey string
}

// StockAdjustment is the input of AdjustStock: it sets the on-hand quantity
// at a location.
type StockAdjustment struct {
	ProductID  int64
	LocationID int64
	// Quantity is the new absolute on-hand quantity.
	Quantity int64
	// ChangeFromQuantity, if set, makes the adjustment a compare-and-set: it
	// fails with CONFLICT unless the current on-hand quantity equals it.
	ChangeFromQuantity *int64
	Reason             string
	Reference          string
	IdempotencyKey     string
}

// StockResult is what a stock mutation returns.
type StockResult struct {
	Product  Product
	Level    Level
	Movement Movement
	// Replayed is true when an earlier request with the same idempotency key
	// made the movement; this request changed nothing.
	Replayed bool
}

// MovementQuery selects ledger rows in Service.Movements.
type MovementQuery struct {
	ProductID  int64 // zero: all products
	LocationID int64 // zero: all locations
	// ProductIDs, if not empty, keeps only these products (used by event
	// replay); it is combined with ProductID.
	ProductIDs []int64
	AlertsOnly bool
	// Reservations keeps only reservation movements, of ReservationIDs if
	// not empty.
	Reservations   bool
	ReservationIDs []int64
	// Seqs, if not empty, keeps only the rows of these sequences.
	Seqs       []int64
	After      int64 // cursor: exclusive bound on Seq in the direction of travel
	HasAfter   bool
	UpTo       int64 // if positive, Seq <= UpTo
	Limit      int
	Descending bool
}

// MovementPage is a page of ledger rows.
type MovementPage struct {
	Movements []Movement
	HasNext   bool
}

// MaxBatchLimit is the most requests one stock transaction applies: each
// is a ledger row of one statement.
const MaxBatchLimit = 1000

// KeyReused is the error of an idempotency key used before for another
// request.
func KeyReused() *Error {
	return Errorf(CodeConflict, "idempotencyKey was already used for a different request")
}
