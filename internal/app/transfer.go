package app

import (
	"context"
	"errors"

	"github.com/shopstack/inventory/internal/inventory"
)

// Transfers move units between locations as documents. A draft holds no
// stock, so it is created outside the write pipeline; shipping, receiving
// and cancelling are requests of the pipeline over the transfer's levels,
// whose transitions the domain decides (inventory.TransferTx).

// Idempotency keys of transfer transitions, set apart from stock
// movements' (and from each other's) as reservations' are: the key K of a
// shipment is recorded as "ship:K" on its first ledger row.
const (
	shipKeyPrefix    = "ship:"
	receiveKeyPrefix = "receive:"
	cancelKeyPrefix  = "cancel:"
)

// CreateTransfer drafts a transfer between two locations. A retry with
// the same idempotency key and input returns the transfer it made.
func (s *Service) CreateTransfer(ctx context.Context, in inventory.NewTransfer) (_ inventory.TransferResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CreateTransfer", attrItems.Int(len(in.Items)))
	defer func() { endSpan(span, err) }()
	items, err := in.Check()
	if err != nil {
		return inventory.TransferResult{}, err
	}
	hash := in.Fingerprint(items)
	if res, ok, err := s.transferByKey(ctx, in.IdempotencyKey, hash); ok || err != nil {
		return res, err
	}
	if err := s.checkTransferRefs(ctx, in.OriginID, in.DestinationID, items); err != nil {
		return inventory.TransferResult{}, err
	}
	now := s.now()
	t := inventory.Transfer{Status: inventory.TransferDraft, OriginID: in.OriginID, DestinationID: in.DestinationID, Items: items,
		Reference: in.Reference, Actor: inventory.ActorFrom(ctx), IdempotencyKey: in.IdempotencyKey, RequestHash: hash,
		Version: 1, CreatedAt: now, UpdatedAt: now}
	if in.IdempotencyKey == "" {
		t.RequestHash = ""
	}
	err = s.writer.CreateTransfer(ctx, &t)
	if errors.Is(err, inventory.ErrDuplicateKey) {
		// A concurrent request with the key made it first.
		if res, ok, err := s.transferByKey(ctx, in.IdempotencyKey, hash); ok || err != nil {
			return res, err
		}
	}
	if err != nil {
		return inventory.TransferResult{}, err
	}
	return inventory.TransferResult{Transfer: t}, nil
}

// transferByKey answers a retry of a transfer's creation: the transfer
// made with key (ok), or CONFLICT if the key was used for another request.
func (s *Service) transferByKey(ctx context.Context, key, hash string) (inventory.TransferResult, bool, error) {
	if key == "" {
		return inventory.TransferResult{}, false, nil
	}
	t, ok, err := s.transfers.TransferByKey(ctx, key)
	switch {
	case err != nil || !ok:
		return inventory.TransferResult{}, false, err
	case t.RequestHash != hash:
		return inventory.TransferResult{}, true, inventory.KeyReused()
	}
	return inventory.TransferResult{Transfer: t, Replayed: true}, true, nil
}

// checkTransferRefs makes sure the transfer's locations and products
// exist, so a client learns which one does not.
func (s *Service) checkTransferRefs(ctx context.Context, origin, dest int64, items []inventory.TransferItem) error {
	for _, id := range []int64{origin, dest} {
		if _, err := s.Location(ctx, id); err != nil {
			return err
		}
	}
	ids := make([]int64, len(items))
	for i, it := range items {
		ids[i] = it.ProductID
	}
	found, err := s.catalog.ProductStocks(ctx, ids)
	if err != nil {
		return err
	}
	for _, ps := range found {
		if ps.Product.Bundle {
			return inventory.Invalid("items", "product %s is a bundle: it has no stock of its own; transfer its components", ps.Product.SKU)
		}
	}
	if len(found) == len(ids) {
		return nil
	}
	have := make(map[int64]bool, len(found))
	for _, ps := range found {
		have[ps.Product.ID] = true
	}
	for _, id := range ids {
		if !have[id] {
			return inventory.Errorf(inventory.CodeNotFound, "product %d not found", id)
		}
	}
	return nil
}

// ShipTransfer ships a draft transfer: every item leaves the origin's
// available units, all or nothing, and is incoming at the destination.
// Shipping a shipped transfer again is a replay.
func (s *Service) ShipTransfer(ctx context.Context, id int64, key string) (_ inventory.TransferResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.ShipTransfer", attrTransfer.Int64(id))
	defer func() { endSpan(span, err) }()
	return s.changeTransfer(ctx, id, inventory.MovementShip, shipKeyPrefix, key, inventory.TransferFingerprint("shipTransfer", id), nil,
		func(x *inventory.TransferTx) (bool, error) { return x.Ship() })
}

// ReceiveTransfer receives some or all of what a shipped transfer has in
// transit at its destination, each line into a state.
func (s *Service) ReceiveTransfer(ctx context.Context, in inventory.TransferReceipt) (_ inventory.TransferResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.ReceiveTransfer", attrTransfer.Int64(in.TransferID))
	defer func() { endSpan(span, err) }()
	if err := in.Check(); err != nil {
		return inventory.TransferResult{}, err
	}
	levels := func(t inventory.Transfer) []inventory.LevelKey {
		var keys []inventory.LevelKey
		for _, it := range in.Items {
			keys = append(keys, t.Destination(it.ProductID))
		}
		return keys
	}
	return s.changeTransfer(ctx, in.TransferID, inventory.MovementReceive, receiveKeyPrefix, in.IdempotencyKey, in.Fingerprint(), levels,
		func(x *inventory.TransferTx) (bool, error) { return false, x.Receive(in.Items) })
}

// CancelTransfer ends a draft, or returns what a shipped transfer still
// has in transit to the origin. Cancelling again is a replay.
func (s *Service) CancelTransfer(ctx context.Context, id int64, key string) (_ inventory.TransferResult, err error) {
	ctx, span := s.startSpan(ctx, "inventory.CancelTransfer", attrTransfer.Int64(id))
	defer func() { endSpan(span, err) }()
	return s.changeTransfer(ctx, id, inventory.MovementReturn, cancelKeyPrefix, key, inventory.TransferFingerprint("cancelTransfer", id), nil,
		func(x *inventory.TransferTx) (bool, error) { return x.Cancel() })
}

// changeTransfer runs fn on transfer id in a stock transaction over the
// transfer's levels (levels of it, if set; else all of them), and
// answers with the transfer as the transaction left it.
func (s *Service) changeTransfer(ctx context.Context, id int64, typ inventory.MovementType, prefix, key, hash string,
	levels func(inventory.Transfer) []inventory.LevelKey, fn func(x *inventory.TransferTx) (bool, error)) (inventory.TransferResult, error) {
	if err := inventory.ValidateIdempotencyKey(key); err != nil {
		return inventory.TransferResult{}, err
	}
	t, err := s.Transfer(ctx, id)
	if err != nil {
		return inventory.TransferResult{}, err
	}
	keys := t.Levels()
	if levels != nil {
		keys = dedupeKeys(levels(t))
	}
	if key != "" {
		key = prefix + key
	}
	var changed *inventory.Transfer // as the transaction leaves it
	r := s.runLevels(ctx, inventory.StockOp{Type: typ, Key: keys[0], IdempotencyKey: key, Hash: hash,
		Levels: &inventory.LevelsOp{Keys: keys, Transfer: id, Apply: func(lt inventory.LevelsTx) (bool, error) {
			loaded := lt.Set.Transfers[id]
			if loaded == nil {
				return false, inventory.Errorf(inventory.CodeNotFound, "transfer %d not found", id)
			}
			x := &inventory.TransferTx{LevelsTx: lt, T: loaded.Clone(), Key: key, Hash: hash,
				Stamp: func(typ inventory.MovementType) inventory.Movement {
					return s.newMovement(ctx, typ, 0, "", loaded.Reference, "", "")
				}}
			changed = loaded
			replayed, err := fn(x)
			if err != nil || replayed {
				return replayed, err
			}
			lt.Set.ChangeTransfer(x.T)
			changed = x.T
			return false, nil
		}}})
	switch {
	case r.Err != nil:
		return inventory.TransferResult{}, r.Err
	case changed == nil || r.Result.Replayed:
		// A retry answered from the ledger: the transfer as it is now.
		t, err := s.Transfer(ctx, id)
		return inventory.TransferResult{Transfer: t, Replayed: true}, err
	}
	return inventory.TransferResult{Transfer: *changed}, nil
}

// dedupeKeys returns keys without repeats, in their first order.
func dedupeKeys(keys []inventory.LevelKey) []inventory.LevelKey {
	seen := make(map[inventory.LevelKey]bool, len(keys))
	out := keys[:0:0]
	for _, k := range keys {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}

// Transfer returns a transfer with its items.
func (s *Service) Transfer(ctx context.Context, id int64) (inventory.Transfer, error) {
	if id <= 0 {
		return inventory.Transfer{}, inventory.Errorf(inventory.CodeNotFound, "transfer %d not found", id)
	}
	ts, err := s.transfers.TransfersByIDs(ctx, []int64{id})
	if err != nil {
		return inventory.Transfer{}, err
	}
	if len(ts) == 0 {
		return inventory.Transfer{}, inventory.Errorf(inventory.CodeNotFound, "transfer %d not found", id)
	}
	return ts[0], nil
}

// TransfersByIDs returns the transfers of ids that exist, ordered by ID.
func (s *Service) TransfersByIDs(ctx context.Context, ids []int64) ([]inventory.Transfer, error) {
	return s.transfers.TransfersByIDs(ctx, ids)
}

// Transfers returns up to first transfers with IDs above afterID that
// match f.
func (s *Service) Transfers(ctx context.Context, f inventory.TransferFilter, first int, afterID int64) (inventory.TransferPage, error) {
	if err := checkFirst(first); err != nil {
		return inventory.TransferPage{}, err
	}
	if f.Status != "" && !f.Status.Valid() {
		return inventory.TransferPage{}, inventory.Invalid("status", "unknown status %q", f.Status)
	}
	return s.transfers.Transfers(ctx, f, afterID, first)
}
