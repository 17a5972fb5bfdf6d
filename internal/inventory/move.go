package inventory

// StockMove is the input of MoveStock: it moves units between two states
// of one level.
type StockMove struct {
	ProductID int64
	// LocationID is the location; zero means the default location.
	LocationID int64
	Quantity   int64
	From, To   StockState
	// ChangeFromQuantity, if set, makes the move a compare-and-set: it
	// fails with CONFLICT unless the quantity in From equals it.
	ChangeFromQuantity *int64
	Reason             string
	Reference          string
	IdempotencyKey     string
}

// Check validates the move and returns its level.
func (in StockMove) Check() (LevelKey, error) {
	key, err := CheckStockRequest(in.ProductID, in.LocationID, in.Reason, in.Reference, in.IdempotencyKey)
	if err != nil {
		return LevelKey{}, err
	}
	switch {
	case in.Quantity < 1 || in.Quantity > MaxQuantity:
		return LevelKey{}, Invalid("quantity", "quantity must be between 1 and %d", MaxQuantity)
	case !in.From.Valid():
		return LevelKey{}, Invalid("from", "from must be a stock state")
	case !in.To.Valid():
		return LevelKey{}, Invalid("to", "to must be a stock state")
	case in.From == in.To:
		return LevelKey{}, Invalid("to", "to must differ from from")
	case in.To == StateIncoming:
		return LevelKey{}, Invalid("to", "units become INCOMING with expectStock or a shipped transfer, not by a move")
	case in.ChangeFromQuantity != nil && (*in.ChangeFromQuantity < 0 || *in.ChangeFromQuantity > MaxStock):
		return LevelKey{}, Invalid("changeFromQuantity", "changeFromQuantity must be between 0 and %d", MaxStock)
	}
	return key, nil
}

// Fingerprint of the move at key.
func (in StockMove) Fingerprint(key LevelKey) string {
	return requestHash(string(MovementMove), itoa(key.ProductID), itoa(key.LocationID), itoa(in.Quantity),
		string(in.From), string(in.To), optItoa(in.ChangeFromQuantity), in.Reason, in.Reference)
}

// Movement is the move as a movement of the level tx, or its refusal: a
// stale ChangeFromQuantity is a CONFLICT (a source with too few units is
// refused by StockTx.Apply). m carries who, when and why.
func (in StockMove) Movement(tx *StockTx, m Movement) (Movement, error) {
	if c := in.ChangeFromQuantity; c != nil && *c != tx.Level.Quantity(in.From) {
		return Movement{}, Errorf(CodeConflict, "%s at the location is %d, not the expected %d", in.From, tx.Level.Quantity(in.From), *c)
	}
	m.Type = MovementMove
	Move(in.From, in.To, in.Quantity).On(&m)
	return m, nil
}

// Transition is what a stock-in, a stock-out or an expectation (typ) of
// in does to its level.
func (in StockChange) Transition(typ MovementType) Transition {
	switch typ {
	case MovementOut:
		return Transition{Stock: -in.Quantity}
	case MovementExpect:
		return Transition{States: States{Incoming: in.Quantity}, To: StateIncoming}
	}
	return Transition{Stock: in.Quantity}
}
