package inventory

// A transfer's transitions, applied to the levels of a LevelsTx: the
// domain decides what shipping, receiving and cancelling do; the service
// runs them as requests of the write pipeline, and the store writes the
// movements and the transfer they leave.

// TransferTx is what a transition of transfer T sees of its transaction.
type TransferTx struct {
	LevelsTx
	// T is a copy of the transfer as the transaction loaded it: the
	// transition changes it, and the service records it once the
	// transition succeeded.
	T *Transfer
	// Stamp returns a movement of type typ stamped with who, when and why.
	Stamp func(typ MovementType) Movement
	// Key and Hash go on the transition's first movement: the ledger row
	// answers a retry, as a stock movement's does.
	Key, Hash string
}

// apply applies a movement of typ and transition tr at level k of the
// transfer.
func (x *TransferTx) apply(typ MovementType, k LevelKey, tr Transition) error {
	tx, fence := x.Level(k)
	m := x.Stamp(typ)
	tr.On(&m)
	m.TransferID, m.Fence = x.T.ID, fence
	if x.Key != "" {
		m.IdempotencyKey, m.RequestHash = x.Key, x.Hash
	}
	if err := tx.Apply(&m); err != nil {
		return err
	}
	x.Key, x.Hash = "", ""
	return nil
}

func (x *TransferTx) changed() {
	x.T.Version++
	x.T.UpdatedAt = x.Set.Now
}

// Ship takes every item from the origin's available units, all or
// nothing, and counts them incoming at the destination. Shipping a
// transfer that shipped already is a replay.
func (x *TransferTx) Ship() (replayed bool, err error) {
	t := x.T
	switch t.Status {
	case TransferInTransit, TransferReceived:
		return true, nil
	case TransferCancelled:
		return false, Errorf(CodeConflict, "transfer %d is CANCELLED", t.ID)
	}
	for i := range t.Items {
		it := &t.Items[i]
		origin := t.Origin(it.ProductID)
		if err := x.apply(MovementShip, origin, Transition{Stock: -it.Quantity, From: StateAvailable}); err != nil {
			if ErrorCode(err) == CodeInsufficientStock {
				tx, _ := x.Level(origin)
				return false, Errorf(CodeInsufficientStock, "insufficient stock of %s at location %d: %d available, %d to ship",
					tx.Product.SKU, t.OriginID, tx.Sellable(), it.Quantity)
			}
			return false, err
		}
		in := Transition{States: States{Incoming: it.Quantity}, To: StateIncoming}
		if err := x.apply(MovementShip, t.Destination(it.ProductID), in); err != nil {
			return false, err
		}
		it.Shipped = it.Quantity
	}
	t.Status = TransferInTransit
	x.changed()
	return false, nil
}

// Receive moves received units from incoming on hand at the destination,
// each line into its state. The transfer is RECEIVED once nothing is left
// in transit.
func (x *TransferTx) Receive(lines []ReceivedItem) error {
	t := x.T
	if err := x.receivable(); err != nil {
		return err
	}
	for _, r := range lines {
		it := t.item(r.ProductID)
		switch {
		case it == nil:
			return Invalid("items", "product %d is not in transfer %d", r.ProductID, t.ID)
		case r.Quantity > it.InTransit():
			return Errorf(CodeConflict, "only %d units of product %d are in transit in transfer %d, not %d",
				it.InTransit(), r.ProductID, t.ID, r.Quantity)
		}
		if err := x.apply(MovementReceive, t.Destination(r.ProductID), Move(StateIncoming, r.State, r.Quantity)); err != nil {
			return err
		}
		it.Received += r.Quantity
	}
	done := true
	for _, it := range t.Items {
		done = done && it.InTransit() == 0
	}
	if done {
		t.Status = TransferReceived
	}
	x.changed()
	return nil
}

// receivable returns why the transfer cannot be received, or nil.
func (x *TransferTx) receivable() error {
	switch t := x.T; t.Status {
	case TransferDraft:
		return Errorf(CodeConflict, "transfer %d has not shipped", t.ID)
	case TransferReceived:
		return Errorf(CodeConflict, "transfer %d was received in full", t.ID)
	case TransferCancelled:
		return Errorf(CodeConflict, "transfer %d is CANCELLED", t.ID)
	}
	return nil
}

// Cancel ends a draft, or returns what a shipped transfer still has in
// transit to the origin's available units. Cancelling a cancelled
// transfer is a replay; a received one cannot be cancelled.
func (x *TransferTx) Cancel() (replayed bool, err error) {
	t := x.T
	switch t.Status {
	case TransferCancelled:
		return true, nil
	case TransferReceived:
		return false, Errorf(CodeConflict, "transfer %d was received in full", t.ID)
	}
	for i := range t.Items {
		it := &t.Items[i]
		q := it.InTransit()
		if q == 0 {
			continue
		}
		back := Transition{States: States{Incoming: -q}, From: StateIncoming}
		if err := x.apply(MovementReturn, t.Destination(it.ProductID), back); err != nil {
			return false, err
		}
		if err := x.apply(MovementReturn, t.Origin(it.ProductID), Transition{Stock: q, To: StateAvailable}); err != nil {
			return false, err
		}
		it.Returned += q
	}
	t.Status = TransferCancelled
	x.changed()
	return false, nil
}
