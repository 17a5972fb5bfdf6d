package inventory

// LevelAudit sets a level's stored values beside what its history says.
type LevelAudit struct {
	Key LevelKey
	// Stock is the stored on-hand quantity; LedgerStock the sum of the
	// level's ledger deltas.
	Stock, LedgerStock int64
	// Reserved is the stored reserved quantity; HeldReserved the sum of
	// the level's active reservation items (expired ones not yet released
	// included, as in Reserved).
	Reserved, HeldReserved int64
	// States are the stored states; LedgerStates the sums of the level's
	// ledger changes of each.
	States, LedgerStates States
}

// Drifted reports whether the level's stored values disagree with its
// history.
func (a LevelAudit) Drifted() bool {
	return a.Stock != a.LedgerStock || a.Reserved != a.HeldReserved || a.States != a.LedgerStates
}

// ReconcileReport is the outcome of a reconcile.
type ReconcileReport struct {
	// Levels is how many levels were checked.
	Levels int
	// Drifts are the levels that disagree with their history, by product
	// and location.
	Drifts []LevelAudit
	// TransferItems is how many transfer items were checked, and
	// TransferDrifts those that disagree with their ledger rows.
	TransferItems  int
	TransferDrifts []TransferAudit
}

// MaxReconcileIDs bounds the product and location filters of a reconcile.
const MaxReconcileIDs = 1000

// RepairResult is what RepairDrift found and did.
type RepairResult struct {
	// Before is the level's audit before the repair.
	Before LevelAudit
	// Movement is the CORRECTION row written; nil if the level had no
	// drift, and nothing changed.
	Movement *Movement
	Level    Level
}

// TransferAudit sets a transfer item's units in transit beside what its
// ledger rows say.
type TransferAudit struct {
	TransferID, ProductID int64
	// InTransit is the stored shipped - received - returned;
	// LedgerInTransit the sum of the transfer's incoming changes of the
	// product (units in transit are incoming at the destination).
	InTransit, LedgerInTransit int64
	// LedgerImbalance is the sum of the transfer's on-hand and incoming
	// changes of the product: units are conserved, so it is zero.
	LedgerImbalance int64
}

// Drifted reports whether the item disagrees with its history.
func (a TransferAudit) Drifted() bool {
	return a.InTransit != a.LedgerInTransit || a.LedgerImbalance != 0
}
