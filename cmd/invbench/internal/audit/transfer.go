package audit

import (
	"context"
	"fmt"
	"strings"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// Transfers is what a run that moves stock between locations adds to its
// audit: the server's account of the run's transfers, of its product's
// levels, and reconcile's report on the product.
type Transfers struct {
	// Count is the run's transfers (of its product, to its destination),
	// and ByStatus them by status.
	Count    int
	ByStatus map[string]int64
	// Negative lists the product's levels with a negative quantity.
	Negative []string
	// LevelsChecked and ItemsChecked are what reconcile checked: the
	// product's levels and transfer items. Drifts and ItemDrifts describe
	// those that disagree with their ledger rows.
	LevelsChecked, ItemsChecked int
	Drifts, ItemDrifts          []string
}

func (t *Transfers) problems() []string {
	var p []string
	if len(t.Negative) > 0 {
		p = append(p, "negative levels: "+strings.Join(t.Negative, ", "))
	}
	if len(t.Drifts) > 0 {
		p = append(p, fmt.Sprintf("reconcile: %d of %d levels drift: %s", len(t.Drifts), t.LevelsChecked, strings.Join(t.Drifts, ", ")))
	}
	if len(t.ItemDrifts) > 0 {
		p = append(p, fmt.Sprintf("reconcile: %d of %d transfer items drift: %s", len(t.ItemDrifts), t.ItemsChecked, strings.Join(t.ItemDrifts, ", ")))
	}
	// Each of the run's transfers has one item, of the product.
	if t.ItemsChecked != t.Count {
		p = append(p, fmt.Sprintf("reconcile checked %d transfer items of the product, but it has %d transfers", t.ItemsChecked, t.Count))
	}
	return p
}

func (t *Transfers) flags() []string {
	var f []string
	for _, n := range []struct {
		count int
		what  string
	}{{len(t.Negative), "negative"}, {len(t.Drifts), "drifts"}, {len(t.ItemDrifts), "transfer drifts"}} {
		if n.count > 0 {
			f = append(f, fmt.Sprintf("%d %s", n.count, n.what))
		}
	}
	return f
}

// ReadTransfers reads, through GraphQL, what a transfer run left: the
// units in transit, summed over the items of productID in the transfers
// to destination, the product's levels, and reconcile's report on it.
func ReadTransfers(ctx context.Context, c *transport.Client, productID, destination string) (inTransit int64, t Transfers, err error) {
	if inTransit, err = t.readTransfers(ctx, c, productID, destination); err != nil {
		return 0, t, fmt.Errorf("read transfers: %w", err)
	}
	if err := t.readLevels(ctx, c, productID); err != nil {
		return 0, t, fmt.Errorf("read levels: %w", err)
	}
	if err := t.reconcile(ctx, c, productID); err != nil {
		return 0, t, fmt.Errorf("reconcile: %w", err)
	}
	return inTransit, t, nil
}

// readTransfers pages through every transfer, oldest first, keeping the
// run's: its destination is the run's own.
func (t *Transfers) readTransfers(ctx context.Context, c *transport.Client, productID, destination string) (int64, error) {
	const q = `query($after: String) { transfers(first: 100, after: $after) {
		edges { node { status destination { id } items { product { id } inTransit } } } pageInfo { hasNextPage endCursor } } }`
	var inTransit int64
	var after *string
	t.ByStatus = map[string]int64{}
	for {
		var out struct {
			Transfers struct {
				Edges []struct {
					Node struct {
						Status      string
						Destination struct{ ID string }
						Items       []struct {
							Product   struct{ ID string }
							InTransit int64
						}
					}
				}
				PageInfo struct {
					HasNextPage bool
					EndCursor   *string
				}
			}
		}
		if err := c.Query(ctx, q, map[string]any{"after": after}, &out); err != nil {
			return 0, err
		}
		for _, e := range out.Transfers.Edges {
			if e.Node.Destination.ID != destination {
				continue
			}
			t.Count++
			t.ByStatus[e.Node.Status]++
			for _, it := range e.Node.Items {
				if it.Product.ID == productID {
					inTransit += it.InTransit
				}
			}
		}
		pi := out.Transfers.PageInfo
		if !pi.HasNextPage || pi.EndCursor == nil {
			return inTransit, nil
		}
		after = pi.EndCursor
	}
}

// readLevels notes every level of the product with a negative quantity,
// read from the database.
func (t *Transfers) readLevels(ctx context.Context, c *transport.Client, productID string) error {
	var out struct {
		Product struct {
			Levels []struct {
				Location                                                                   struct{ Code string }
				Stock, Reserved, Damaged, QualityControl, SafetyStock, Incoming, Available int64
			}
		}
	}
	err := c.Query(ctx, `query($p: ID!) { product(id: $p, consistency: STRONG) { levels { location { code }
		stock reserved damaged qualityControl safetyStock incoming available } } }`, map[string]any{"p": productID}, &out)
	if err != nil {
		return err
	}
	for _, l := range out.Product.Levels {
		for _, q := range []struct {
			name string
			n    int64
		}{{"stock", l.Stock}, {"reserved", l.Reserved}, {"damaged", l.Damaged}, {"qualityControl", l.QualityControl},
			{"safetyStock", l.SafetyStock}, {"incoming", l.Incoming}, {"available", l.Available}} {
			if q.n < 0 {
				t.Negative = append(t.Negative, fmt.Sprintf("%s %s %d", l.Location.Code, q.name, q.n))
			}
		}
	}
	return nil
}

// reconcile asks the server to check the product's levels and transfer
// items against their ledger rows.
func (t *Transfers) reconcile(ctx context.Context, c *transport.Client, productID string) error {
	type states struct{ Damaged, QualityControl, SafetyStock, Incoming int64 }
	var out struct {
		Reconcile struct {
			LevelsChecked, TransferItemsChecked int
			Drifts                              []struct {
				Location                                   struct{ Code string }
				Stock, LedgerStock, Reserved, HeldReserved int64
				States, LedgerStates                       states
			}
			TransferDrifts []struct {
				Transfer                                    struct{ ID string }
				InTransit, LedgerInTransit, LedgerImbalance int64
			}
		}
	}
	err := c.Query(ctx, `query($p: [ID!]) { reconcile(productIds: $p) { levelsChecked transferItemsChecked
		drifts { location { code } stock ledgerStock reserved heldReserved
			states { damaged qualityControl safetyStock incoming } ledgerStates { damaged qualityControl safetyStock incoming } }
		transferDrifts { transfer { id } inTransit ledgerInTransit ledgerImbalance } } }`, map[string]any{"p": []string{productID}}, &out)
	if err != nil {
		return err
	}
	r := out.Reconcile
	t.LevelsChecked, t.ItemsChecked = r.LevelsChecked, r.TransferItemsChecked
	for _, d := range r.Drifts {
		t.Drifts = append(t.Drifts, fmt.Sprintf("%s: stock %d, ledger %d; reserved %d, held %d; states %+v, ledger %+v",
			d.Location.Code, d.Stock, d.LedgerStock, d.Reserved, d.HeldReserved, d.States, d.LedgerStates))
	}
	for _, d := range r.TransferDrifts {
		t.ItemDrifts = append(t.ItemDrifts, fmt.Sprintf("transfer %s: in transit %d, ledger %d, imbalance %d",
			d.Transfer.ID, d.InTransit, d.LedgerInTransit, d.LedgerImbalance))
	}
	return nil
}
