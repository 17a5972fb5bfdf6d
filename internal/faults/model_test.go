package faults

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func op(client int, call, ret int64, in any, out Output) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Call: call, Return: ret, Input: in, Output: out}
}

// TestStockModel: the model accepts what a correct service may answer and
// refuses an oversell, a lost update and a wrong refusal, whatever the
// interleaving, with reservations holding units too.
func TestStockModel(t *testing.T) {
	out1, in2 := Input{OpOut, 1}, Input{OpIn, 2}
	for name, c := range map[string]struct {
		ops  []porcupine.Operation
		want bool
	}{
		"concurrent sales of the last unit: one wins": {[]porcupine.Operation{
			op(0, 0, 10, out1, Output{Kind: OK}), op(1, 1, 11, out1, Output{Kind: Insufficient}),
		}, true},
		"both sell the last unit (oversell)": {[]porcupine.Operation{
			op(0, 0, 10, out1, Output{Kind: OK}), op(1, 1, 11, out1, Output{Kind: OK}),
		}, false},
		"a receipt overlapping a sale": {[]porcupine.Operation{
			op(0, 0, 10, in2, Output{Kind: OK, After: 3}), op(1, 1, 11, out1, Output{Kind: OK, After: 2}), op(2, 20, 21, Input{OpRead, 0}, Output{Kind: OK, After: 2}),
		}, true},
		"a lost update: the read misses a change": {[]porcupine.Operation{
			op(0, 0, 10, in2, Output{Kind: OK, After: 3}), op(1, 20, 21, Input{OpRead, 0}, Output{Kind: OK, After: 1}),
		}, false},
		"an unknown sale that happened": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, out1, Output{Kind: Unknown}), op(1, 20, 21, Input{OpRead, 0}, Output{Kind: OK}),
		}, true},
		"an unknown sale that did not": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, out1, Output{Kind: Unknown}), op(1, 20, 21, Input{OpRead, 0}, Output{Kind: OK, After: 1}),
		}, true},
		"an unknown sale cannot happen twice": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, Input{OpIn, 5}, Output{Kind: Unknown}), op(1, 20, 21, Input{OpRead, 0}, Output{Kind: OK, After: 11}),
		}, false},
		"a hold and a sale of the last unit: one wins": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpReserve, 1}, Output{Kind: OK}), op(1, 1, 11, out1, Output{Kind: Insufficient}),
			op(2, 20, 21, Input{OpRead, 0}, Output{Kind: OK, After: 1, Reserved: 1}),
		}, true},
		"a sale of a held unit (oversell)": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpReserve, 1}, Output{Kind: OK}), op(1, 20, 30, out1, Output{Kind: OK}),
		}, false},
		"a hold refused while the unit is available": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpReserve, 1}, Output{Kind: Insufficient}),
		}, false},
		"a committed hold is sold": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpReserve, 1}, Output{Kind: OK}), op(0, 20, 30, Input{OpCommit, 1}, Output{Kind: OK}),
			op(1, 40, 41, Input{OpRead, 0}, Output{Kind: OK, After: 0, Reserved: 0}),
		}, true},
		"a released hold is back": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpReserve, 1}, Output{Kind: OK}), op(0, 20, 30, Input{OpRelease, 1}, Output{Kind: OK}),
			op(1, 40, 50, out1, Output{Kind: OK, After: 0}),
		}, true},
		"a release that kept its units held": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpReserve, 1}, Output{Kind: OK}), op(0, 20, 30, Input{OpRelease, 1}, Output{Kind: OK}),
			op(1, 40, 41, Input{OpRead, 0}, Output{Kind: OK, After: 1, Reserved: 1}),
		}, false},
		"a cart refused for another product's shortage": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpCartItem, 1}, Output{Kind: Insufficient}),
			op(1, 20, 21, Input{OpRead, 0}, Output{Kind: OK, After: 1, Reserved: 0}),
		}, true},
		"a cart applied to one product only": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpCartItem, 1}, Output{Kind: OK}),
			op(1, 20, 21, Input{OpRead, 0}, Output{Kind: OK, After: 1, Reserved: 0}),
		}, false},
		"an unknown hold that happened still holds": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, Input{OpReserve, 1}, Output{Kind: Unknown}), op(1, 20, 21, out1, Output{Kind: Insufficient}),
			op(2, 30, 31, Input{OpRead, 0}, Output{Kind: OK, After: 1, Reserved: 1}),
		}, true},
		"damaged units are not for sale": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpDamage, 1}, Output{Kind: OK}), op(1, 20, 30, out1, Output{Kind: OK}),
		}, false},
		"a repaired unit sells": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpDamage, 1}, Output{Kind: OK}), op(0, 20, 30, Input{OpRepair, 1}, Output{Kind: OK}),
			op(1, 40, 50, out1, Output{Kind: OK, After: 0}),
		}, true},
		"a shipment and a sale of the last unit: one wins": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpShip, 1}, Output{Kind: OK}), op(1, 1, 11, out1, Output{Kind: Insufficient}),
			op(2, 20, 21, Input{OpRead, 0}, Output{Kind: OK, Transit: 1}),
		}, true},
		"a shipped unit also sold (oversell)": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpShip, 1}, Output{Kind: OK}), op(1, 20, 30, out1, Output{Kind: OK}),
		}, false},
		"a received unit is on hand at the destination": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpShip, 1}, Output{Kind: OK}), op(0, 20, 30, Input{OpReceive, 1}, Output{Kind: OK}),
			op(1, 40, 41, Input{OpRead, 0}, Output{Kind: OK, Dest: 1}),
		}, true},
		"a unit received and also returned (not conserved)": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpShip, 1}, Output{Kind: OK}), op(0, 20, 30, Input{OpReceive, 1}, Output{Kind: OK}),
			op(1, 40, 41, Input{OpRead, 0}, Output{Kind: OK, After: 1, Dest: 1}),
		}, false},
		"a returned unit is back at the origin": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpShip, 1}, Output{Kind: OK}), op(0, 20, 30, Input{OpReturn, 1}, Output{Kind: OK}),
			op(1, 40, 50, out1, Output{Kind: OK, After: 0}),
		}, true},
		"an unknown shipment that happened stays in transit": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, Input{OpShip, 1}, Output{Kind: Unknown}),
			op(1, 20, 21, Input{OpRead, 0}, Output{Kind: OK, Transit: 1}),
		}, true},
	} {
		if got := porcupine.CheckOperations(StockModel(1), c.ops); got != c.want {
			t.Errorf("%s: linearizable %v, want %v", name, got, c.want)
		}
	}
}

// TestBackorderModel: with a backorder limit of 2, one unit on hand sells
// three times, on hand going to -2, and a fourth sale is an oversell.
func TestBackorderModel(t *testing.T) {
	out1 := Input{OpOut, 1}
	for name, c := range map[string]struct {
		ops  []porcupine.Operation
		want bool
	}{
		"three sales within the limit": {[]porcupine.Operation{
			op(0, 0, 10, out1, Output{Kind: OK, After: 0}), op(0, 20, 30, out1, Output{Kind: OK, After: -1}),
			op(0, 40, 50, out1, Output{Kind: OK, After: -2}), op(1, 60, 61, Input{OpRead, 0}, Output{Kind: OK, After: -2}),
		}, true},
		"a fourth sale (oversold beyond the limit)": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpOut, 3}, Output{Kind: OK, After: -2}), op(1, 20, 30, out1, Output{Kind: OK, After: -3}),
		}, false},
		"a sale refused while within the limit": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpOut, 2}, Output{Kind: Insufficient}),
		}, false},
		"a hold beyond the shelf": {[]porcupine.Operation{
			op(0, 0, 10, Input{OpReserve, 3}, Output{Kind: OK}), op(1, 20, 30, out1, Output{Kind: Insufficient}),
		}, true},
	} {
		if got := porcupine.CheckOperations(BackorderModel(1, 2), c.ops); got != c.want {
			t.Errorf("%s: linearizable %v, want %v", name, got, c.want)
		}
	}
	// An untracked product: any sale goes through, and a refusal for want
	// of stock is wrong.
	untracked := BackorderModel(0, Untracked)
	if !porcupine.CheckOperations(untracked, []porcupine.Operation{op(0, 0, 10, Input{OpOut, 100}, Output{Kind: OK, After: -100})}) ||
		porcupine.CheckOperations(untracked, []porcupine.Operation{op(0, 0, 10, Input{OpOut, 100}, Output{Kind: Insufficient})}) {
		t.Error("the model judges an untracked product's sales by its stock")
	}
}

// TestResolveUnknown: unknown stock changes the ledger holds become what
// the ledger says (still open-ended in time: one may have committed after
// the final read); those it does not hold leave the history, so a stock
// change without a ledger row, or a ledger row that does not add up, is
// caught.
func TestResolveUnknown(t *testing.T) {
	check := func(ledger map[string]int64, read int64) (porcupine.CheckResult, int, int) {
		h := NewHistory()
		h.Call(0, 1, Input{OpOut, 1}, "a")(Output{Kind: Unknown})
		h.Call(1, 1, Input{OpIn, 2}, "b")(Output{Kind: Unknown})
		h.Call(2, 1, Input{OpRead, 0}, "")(Output{Kind: OK, After: read})
		applied, dropped, err := h.ResolveUnknown(func(_, _ []string) (Settled, error) { return Settled{After: ledger}, nil })
		if err != nil {
			t.Fatal(err)
		}
		return h.Check(map[int64]int64{1: 5}, time.Second)[0].Linearized, applied, dropped
	}
	if r, applied, dropped := check(map[string]int64{"a": 4}, 4); r != porcupine.Ok || applied != 1 || dropped != 1 {
		t.Errorf("sale applied, receipt not, read 4: %v, %d applied, %d dropped", r, applied, dropped)
	}
	if r, _, _ := check(map[string]int64{"a": 3}, 4); r != porcupine.Illegal {
		t.Errorf("the ledger says the sale of 1 of 5 left 3: %v, want illegal", r)
	}
	if r, _, _ := check(map[string]int64{}, 4); r != porcupine.Illegal {
		t.Errorf("nothing in the ledger but the read says 4: %v, want illegal", r)
	}
}

// TestResolveUnknownReservations: an unknown hold whose reservation exists
// took effect, an unknown commit took effect if the reservation is
// COMMITTED; otherwise they leave the history.
func TestResolveUnknownReservations(t *testing.T) {
	h := NewHistory()
	h.Call(0, 1, Input{OpReserve, 2}, ReservationKey("r1"))(Output{Kind: Unknown})
	h.Call(1, 1, Input{OpReserve, 1}, ReservationKey("r2"))(Output{Kind: OK})
	h.Call(1, 1, Input{OpCommit, 1}, ReservationKey("r2"))(Output{Kind: Unknown})
	h.Call(2, 1, Input{OpReserve, 3}, ReservationKey("r3"))(Output{Kind: Unknown})
	h.Call(3, 1, Input{OpRead, 0}, "")(Output{Kind: OK, After: 4, Reserved: 2})
	applied, dropped, err := h.ResolveUnknown(func(_, res []string) (Settled, error) {
		return Settled{Status: map[string]string{"r1": "ACTIVE", "r2": "COMMITTED"}}, nil
	})
	if err != nil || applied != 2 || dropped != 1 {
		t.Fatalf("%d applied, %d dropped, %v; want 2 and 1", applied, dropped, err)
	}
	// 5 units: r1 holds 2, r2 held 1 and sold it: stock 4, reserved 2.
	if r := h.Check(map[int64]int64{1: 5}, time.Second)[0].Linearized; r != porcupine.Ok {
		t.Fatalf("linearizability %v", r)
	}
}

// TestBundleModel: a bundle of 2 units of part 0 (4 on hand) and 1 of
// part 1 (2 on hand). A sale of bundles takes both parts' units or
// neither, and only if both cover it; the parts' own sales compete for
// the same units.
func TestBundleModel(t *testing.T) {
	bundle := func(in Input) BundleInput { return BundleInput{Part: WholeBundle, In: in} }
	part := func(i int, in Input) BundleInput { return BundleInput{Part: i, In: in} }
	read := func(client int, at int64, i int, stock int64) porcupine.Operation {
		return op(client, at, at+1, part(i, Input{OpRead, 0}), Output{Kind: OK, After: stock})
	}
	sell1 := bundle(Input{OpOut, 1})
	for name, c := range map[string]struct {
		ops  []porcupine.Operation
		want bool
	}{
		"a sale takes both parts": {[]porcupine.Operation{
			op(0, 0, 10, sell1, Output{Kind: OK, After: 2}), read(1, 20, 0, 2), read(1, 30, 1, 1),
		}, true},
		"a sale that took one part only": {[]porcupine.Operation{
			op(0, 0, 10, sell1, Output{Kind: OK, After: 2}), read(1, 20, 0, 2), read(1, 30, 1, 2),
		}, false},
		"a sale reports the first part's on hand": {[]porcupine.Operation{
			op(0, 0, 10, sell1, Output{Kind: OK, After: 1}),
		}, false},
		"a sale of what one part cannot cover (oversell)": {[]porcupine.Operation{
			op(0, 0, 10, part(1, Input{OpOut, 2}), Output{Kind: OK, After: 0}), op(1, 20, 30, sell1, Output{Kind: OK, After: 2}),
		}, false},
		"a sale refused for one part's shortage changes neither": {[]porcupine.Operation{
			op(0, 0, 10, part(1, Input{OpOut, 2}), Output{Kind: OK, After: 0}), op(1, 20, 30, sell1, Output{Kind: Insufficient}),
			read(2, 40, 0, 4), read(2, 50, 1, 0),
		}, true},
		"a sale refused while both parts cover it": {[]porcupine.Operation{
			op(0, 0, 10, bundle(Input{OpOut, 2}), Output{Kind: Insufficient}),
		}, false},
		"a sale and a part's sale of its last units: one wins": {[]porcupine.Operation{
			op(0, 0, 10, sell1, Output{Kind: Insufficient}), op(1, 1, 11, part(1, Input{OpOut, 2}), Output{Kind: OK, After: 0}),
		}, true},
		"a sale and a part's sale of its last units: both won": {[]porcupine.Operation{
			op(0, 0, 10, sell1, Output{Kind: OK, After: 2}), op(1, 1, 11, part(1, Input{OpOut, 2}), Output{Kind: OK, After: 0}),
		}, false},
		"a part's stock-in covers a sale": {[]porcupine.Operation{
			op(0, 0, 10, part(1, Input{OpOut, 2}), Output{Kind: OK, After: 0}), op(0, 20, 30, part(1, Input{OpIn, 1}), Output{Kind: OK, After: 1}),
			op(1, 40, 50, sell1, Output{Kind: OK, After: 2}), read(2, 60, 1, 0),
		}, true},
		"an unknown sale that happened took both": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, sell1, Output{Kind: Unknown}), read(1, 20, 0, 2), read(1, 30, 1, 1),
		}, true},
		"an unknown sale that took one part only": {[]porcupine.Operation{
			op(0, 0, math.MaxInt64, sell1, Output{Kind: Unknown}), read(1, 20, 0, 2), read(1, 30, 1, 2),
		}, false},
	} {
		if got := porcupine.CheckOperations(BundleModel(Part{Qty: 2, Initial: 4}, Part{Qty: 1, Initial: 2}), c.ops); got != c.want {
			t.Errorf("%s: linearizable %v, want %v", name, got, c.want)
		}
	}
	// A part that takes backorders: the sale may take it that far below
	// the shelf.
	backorders := BundleModel(Part{Qty: 2, Initial: 4}, Part{Qty: 1, Limit: 1})
	if !porcupine.CheckOperations(backorders, []porcupine.Operation{op(0, 0, 10, sell1, Output{Kind: OK, After: 2})}) ||
		porcupine.CheckOperations(backorders, []porcupine.Operation{op(0, 0, 10, bundle(Input{OpOut, 2}), Output{Kind: OK, After: 0})}) {
		t.Error("the model judges a backordered part without its limit")
	}
}

// TestHistoryBundle: a history checks a bundle's sales with its
// components' ops in one partition (the components in product order,
// whatever order they are given in), settles an unknown sale by the
// ledger row that carries its key (the first component's), and checks
// other products alone.
func TestHistoryBundle(t *testing.T) {
	const box, mug, tea, other = 9, 1, 2, 3
	check := func(ledger map[string]int64, teaRead int64) []Result {
		h := NewHistory()
		h.SetBundle(box, Component{Product: tea, Qty: 1}, Component{Product: mug, Qty: 2})
		h.Call(0, box, Input{OpOut, 1}, "sold")(Output{Kind: OK, After: 2})
		h.Call(0, box, Input{OpOut, 1}, "lost")(Output{Kind: Unknown})
		h.Call(1, tea, Input{OpIn, 1}, "in")(Output{Kind: OK, After: 2})
		h.Call(2, other, Input{OpOut, 1}, "x")(Output{Kind: OK, After: 0})
		if _, _, err := h.ResolveUnknown(func(_, _ []string) (Settled, error) { return Settled{After: ledger}, nil }); err != nil {
			t.Fatal(err)
		}
		h.Call(3, mug, Input{OpRead, 0}, "")(Output{Kind: OK, After: 2 - 2*int64(len(ledger))})
		h.Call(3, tea, Input{OpRead, 0}, "")(Output{Kind: OK, After: teaRead})
		return h.Check(map[int64]int64{mug: 4, tea: 2, other: 1}, time.Second)
	}
	rs := check(map[string]int64{"lost": 0}, 1)
	if len(rs) != 2 || rs[0].Product != other || rs[1].Product != box || !slices.Equal(rs[1].Components, []int64{mug, tea}) || rs[1].Ops != 5 {
		t.Fatalf("partitions: %+v", rs)
	}
	for _, r := range rs {
		if r.Linearized != porcupine.Ok {
			t.Errorf("product %d: %v", r.Product, r.Linearized)
		}
	}
	if r := check(map[string]int64{}, 2)[1].Linearized; r != porcupine.Ok {
		t.Errorf("the second sale never happened: %v", r)
	}
	if r := check(map[string]int64{"lost": 0}, 2)[1].Linearized; r != porcupine.Illegal {
		t.Errorf("the ledger has the second sale, but the tea read misses it: %v, want illegal", r)
	}
}

// TestReplayDumped checks the history INVENTORY_FAULTS_REPLAY names (one
// that dump wrote) with a long timeout, and says how long porcupine took.
func TestReplayDumped(t *testing.T) {
	file := os.Getenv("INVENTORY_FAULTS_REPLAY")
	if file == "" {
		t.Skip("INVENTORY_FAULTS_REPLAY names no dumped history")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var d Dumped
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	var ops []porcupine.Operation
	for _, o := range d.Ops {
		ops = append(ops, porcupine.Operation{ClientId: o.Client, Call: o.Call, Return: o.Ret, Input: o.In, Output: o.Out})
	}
	start := time.Now()
	res := porcupine.CheckOperationsTimeout(BackorderModel(d.Initial, d.Limit), ops, 10*time.Minute)
	t.Logf("%d operations: %s in %v", len(ops), res, time.Since(start))
}

// TestBound: a settled change's open window closes at the earliest return
// of a later change of its level, by ledger sequence; changes of other
// levels, and changes the ledger does not hold, do not close it.
func TestBound(t *testing.T) {
	h := NewHistory()
	record := func(product int64, key string, call, ret int64, out Output) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ops[product] = append(h.ops[product], porcupine.Operation{Input: Input{OpOut, 1}, Call: call, Return: ret, Output: out, Metadata: key})
	}
	settled := Output{Kind: OK, After: 9}
	record(1, "lost", 10, math.MaxInt64, settled)       // seq 5
	record(1, "later", 20, 40, Output{Kind: OK})        // seq 7, same level
	record(1, "latest", 30, 35, Output{Kind: OK})       // seq 9, same level: the earliest return after
	record(1, "earlier", 1, 50, Output{Kind: OK})       // seq 3: before it, no bound
	record(2, "elsewhere", 11, math.MaxInt64, settled)  // seq 6, another level, nothing later there
	record(2, "unrecorded", 12, math.MaxInt64, settled) // not in the ledger
	n := h.Bound(map[string]LedgerRow{
		"lost": {Seq: 5, Product: 1, Location: 1}, "later": {Seq: 7, Product: 1, Location: 1},
		"latest": {Seq: 9, Product: 1, Location: 1}, "earlier": {Seq: 3, Product: 1, Location: 1},
		"elsewhere": {Seq: 6, Product: 2, Location: 1},
	})
	if n != 1 {
		t.Fatalf("bounded %d, want 1", n)
	}
	for _, op := range append(h.Ops(1), h.Ops(2)...) {
		want := map[string]int64{"lost": 35, "later": 40, "latest": 35, "earlier": 50, "elsewhere": math.MaxInt64, "unrecorded": math.MaxInt64}[op.Metadata.(string)]
		if op.Return != want {
			t.Errorf("%s returns at %d, want %d", op.Metadata, op.Return, want)
		}
	}
}
