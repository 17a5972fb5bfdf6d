// Package faults checks the service under faults the way Jepsen does:
// clients record every request's invocation and outcome, unknown outcomes
// included, and each product's history is checked for linearizability
// against a model of its units (porcupine): on hand, reserved and damaged
// at the origin, in transit, and on hand at a second location. A bundle's
// sales and its components' own changes are checked together, against
// the units of all its components (bundle.go). The fault cases themselves
// run with `make test-faults` (build tag faults).
package faults

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// Op kinds. A reservation's ops carry its quantity: each client closes
// only reservations it made, once, so the model needs no IDs.
const (
	OpIn      = "in"
	OpOut     = "out"
	OpRead    = "read"
	OpReserve = "reserve"
	// OpCartItem is one product's item of a reservation over several: it
	// holds like OpReserve, but may be refused for another product's
	// shortage, so a refusal says nothing about this product.
	OpCartItem = "cart-item"
	OpCommit   = "commit"
	OpRelease  = "release"
	// OpDamage and OpRepair move units from available to damaged at the
	// origin and back (moveStock).
	OpDamage = "damage"
	OpRepair = "repair"
	// A transfer of one product from the origin to the second location:
	// OpShip takes available units into transit, OpReceive puts units in
	// transit on hand at the destination, OpReturn (a cancellation) puts
	// them back on hand at the origin. Each client receives or returns
	// only what it shipped, once, so the model needs no transfer IDs.
	OpShip    = "ship"
	OpReceive = "receive"
	OpReturn  = "return"
)

// Outcome kinds.
const (
	OK           = "ok"
	Insufficient = "insufficient"
	// Unknown is a request whose outcome the client never learned (every
	// attempt timed out or the servers went away): it may or may not
	// have happened, once.
	Unknown = "unknown"
)

// Input is what a client asked of one product's stock.
type Input struct {
	Kind string
	Qty  int64
}

// Output is what it learned: for OK, the stock right after a stock change,
// or the units read (a reservation's, a move's and a transfer's ops learn
// none).
type Output struct {
	Kind     string
	After    int64 // on hand at the origin
	Reserved int64
	Damaged  int64
	Dest     int64 // on hand at the destination
	Transit  int64 // incoming at the destination
}

// state is one product's units, and its backorder limit (constant).
type state struct{ stock, reserved, damaged, dest, transit, limit int64 }

// StockModel is one product's units, starting with initial on hand at the
// origin and nothing anywhere else: stock-in adds; stock-out takes, a
// reservation holds, a move damages and a shipment takes into transit,
// if that much is available (stock minus reserved and damaged) and is
// refused otherwise; a commit sells held units, a release gives them back;
// a repair makes damaged units available again; a receipt puts units in
// transit on hand at the destination, a return back at the origin; a read
// sees all of it. Units are conserved: stock, dest and transit change only
// together, but by stock-in, stock-out and commits. An unknown outcome
// may or may not have happened, once.
func StockModel(initial int64) porcupine.Model { return BackorderModel(initial, 0) }

// BackorderModel is StockModel for a product whose backorder limit is
// limit: what takes from the available units may take it down to -limit
// (so on hand may go below zero), and no further.
func BackorderModel(initial, limit int64) porcupine.Model {
	m := porcupine.NondeterministicModel{
		Init:              func() []any { return []any{state{stock: initial, limit: limit}} },
		Step:              step,
		DescribeOperation: describe,
	}
	return m.ToModel()
}

// available is what may still be taken of s: down to its backorder limit.
func (s state) available() int64 { return s.stock - s.reserved - s.damaged + s.limit }

func step(st, input, output any) []any {
	s, in, out := st.(state), input.(Input), output.(Output)
	next, applies := s, true
	available := s.available()
	switch in.Kind {
	case OpIn:
		next.stock += in.Qty
	case OpOut:
		applies = available >= in.Qty
		next.stock -= in.Qty
	case OpReserve, OpCartItem:
		applies = available >= in.Qty
		next.reserved += in.Qty
	case OpCommit:
		applies = s.reserved >= in.Qty
		next.stock, next.reserved = s.stock-in.Qty, s.reserved-in.Qty
	case OpRelease:
		applies = s.reserved >= in.Qty
		next.reserved -= in.Qty
	case OpDamage:
		applies = available >= in.Qty
		next.damaged += in.Qty
	case OpRepair:
		applies = s.damaged >= in.Qty
		next.damaged -= in.Qty
	case OpShip:
		applies = available >= in.Qty
		next.stock, next.transit = s.stock-in.Qty, s.transit+in.Qty
	case OpReceive:
		applies = s.transit >= in.Qty
		next.transit, next.dest = s.transit-in.Qty, s.dest+in.Qty
	case OpReturn:
		applies = s.transit >= in.Qty
		next.transit, next.stock = s.transit-in.Qty, s.stock+in.Qty
	case OpRead:
		if out == (Output{Kind: OK, After: s.stock, Reserved: s.reserved, Damaged: s.damaged, Dest: s.dest, Transit: s.transit}) {
			return []any{s}
		}
		return nil
	}
	changesStock := in.Kind == OpIn || in.Kind == OpOut
	switch out.Kind {
	case OK:
		if applies && (!changesStock || out.After == next.stock) {
			return []any{next}
		}
	case Insufficient:
		if refusable[in.Kind] && !applies || in.Kind == OpCartItem {
			return []any{s}
		}
	case Unknown:
		if applies {
			return []any{s, next}
		}
		return []any{s}
	}
	return nil
}

// refusable are the ops refused with INSUFFICIENT_STOCK when their source
// has too few units.
var refusable = map[string]bool{OpOut: true, OpReserve: true, OpDamage: true, OpRepair: true, OpShip: true}

func describe(input, output any) string {
	in, out := input.(Input), output.(Output)
	if in.Kind == OpRead {
		return fmt.Sprintf("read -> stock %d reserved %d damaged %d, destination %d, in transit %d",
			out.After, out.Reserved, out.Damaged, out.Dest, out.Transit)
	}
	return fmt.Sprintf("%s(%d) -> %s %d", in.Kind, in.Qty, out.Kind, out.After)
}

// History records the operations of many clients on many products.
type History struct {
	start time.Time
	mu    sync.Mutex
	ops   map[int64][]porcupine.Operation // by product
	// limits are the products' backorder limits (absent: 0).
	limits map[int64]int64
	// bundles are the bundles' components, in product order (SetBundle).
	bundles map[int64][]Component
}

// Untracked is the backorder limit of an untracked product: nothing of it
// is refused for want of stock.
const Untracked = math.MaxInt32

// SetBackorderLimit records product's backorder limit for the check
// (Untracked for an untracked product).
func (h *History) SetBackorderLimit(product, limit int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.limits == nil {
		h.limits = map[int64]int64{}
	}
	h.limits[product] = limit
}

// NewHistory starts a history; times are taken from now.
func NewHistory() *History {
	return &History{start: time.Now(), ops: map[int64][]porcupine.Operation{}}
}

// Call records that client invoked in on product (with the idempotency
// key of a stock change, a ReservationKey, or nil); the returned func
// records the outcome.
func (h *History) Call(client int, product int64, in Input, key any) (ret func(Output)) {
	call := time.Since(h.start).Nanoseconds()
	return func(out Output) {
		end := time.Since(h.start).Nanoseconds()
		if out.Kind == Unknown {
			end = math.MaxInt64 // it may take effect at any time from now on
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		h.ops[product] = append(h.ops[product], porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: end, Metadata: key})
	}
}

// ReservationKey marks the ops of one reservation (its hold, on each of
// its products, and its commit or release) with the reservation's
// idempotency key, in place of a stock change's key.
type ReservationKey string

// Settled is what the database says of the requests no client learned
// the outcome of, once every client has stopped and the final reads are
// done.
type Settled struct {
	// After is the stock each stock change left, by its key, for the
	// keys the ledger holds.
	After map[string]int64
	// Status is each reservation's status, by its key, for those made.
	Status map[string]string
}

// ResolveUnknown settles the requests whose outcome no client learned from
// what the database says (settle, given their keys): a stock change the
// ledger holds took effect, leaving the stock its row records; a hold
// whose reservation exists took effect, and a commit or release whose
// reservation has that status did. Each stays open-ended in time (it may
// have committed after the final reads). One that did not take effect
// leaves the history: a request that changed nothing and told nobody is
// no operation. It returns how many were applied and how many dropped.
// Without it, every unknown request may or may not have happened anywhere
// from its call on, and a history with a few hundred of them can outgrow
// the checker's time.
func (h *History) ResolveUnknown(settle func(stockKeys, reservationKeys []string) (Settled, error)) (applied, dropped int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var stockKeys, resKeys []string
	for _, ops := range h.ops {
		for _, op := range ops {
			if op.Output.(Output).Kind != Unknown {
				continue
			}
			switch k := op.Metadata.(type) {
			case string:
				if k != "" {
					stockKeys = append(stockKeys, k)
				}
			case ReservationKey:
				resKeys = append(resKeys, string(k))
			}
		}
	}
	db, err := settle(stockKeys, resKeys)
	if err != nil {
		return 0, 0, err
	}
	for product, ops := range h.ops {
		kept := ops[:0]
		for _, op := range ops {
			if op.Output.(Output).Kind == Unknown {
				took := false
				switch k := op.Metadata.(type) {
				case string:
					var q int64
					if q, took = db.After[k]; took {
						op.Output = Output{Kind: OK, After: q}
					}
				case ReservationKey:
					status, made := db.Status[string(k)]
					switch op.Input.(Input).Kind {
					case OpReserve, OpCartItem:
						took = made
					case OpCommit:
						took = status == "COMMITTED"
					case OpRelease:
						took = status == "RELEASED"
					}
					if took {
						op.Output = Output{Kind: OK}
					}
				}
				if !took {
					dropped++
					continue
				}
				applied++
			}
			kept = append(kept, op)
		}
		h.ops[product] = kept
	}
	return applied, dropped, nil
}

// Result is the check of one product's history, or of a bundle's with its
// components'.
type Result struct {
	Product int64
	// Components are a bundle's components, checked with it.
	Components []int64
	Ops        int
	Unknown    int
	Linearized porcupine.CheckResult
}

// Check checks each product's history, starting from its initial stock,
// and each bundle's with its components'.
func (h *History) Check(initial map[int64]int64, timeout time.Duration) []Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []Result
	for _, p := range h.partitions(initial) {
		r := Result{Product: p.product, Components: p.components, Ops: len(p.ops)}
		for _, op := range p.ops {
			if op.Output.(Output).Kind == Unknown {
				r.Unknown++
			}
		}
		r.Linearized = porcupine.CheckOperationsTimeout(p.model, p.ops, timeout)
		if r.Linearized != porcupine.Ok && len(p.components) == 0 {
			dump(p, initial[p.product], h.limits[p.product])
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Product < out[j].Product })
	return out
}

// Keys returns the idempotency keys of the stock changes recorded.
func (h *History) Keys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var keys []string
	for _, ops := range h.ops {
		for _, op := range ops {
			if k, ok := op.Metadata.(string); ok && k != "" {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// LedgerRow is where a request's change is in the ledger: its sequence
// and its level.
type LedgerRow struct{ Seq, Product, Location int64 }

// Bound narrows the window of each change whose outcome no client learned
// but which the ledger holds (ResolveUnknown left its Return open): it
// took effect before any later change of the same level had returned to
// its client. A level's changes commit one transaction at a time (its
// lease and its row lock) and take their sequences after its lock, so a
// higher sequence on the level committed later. rows is by idempotency
// key. Without this, a history with dozens of such open windows can take
// porcupine longer than any timeout to decide. It returns how many
// windows it closed.
func (h *History) Bound(rows map[string]LedgerRow) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	type ref struct {
		seq     int64
		product int64
		i       int
	}
	byLevel := map[[2]int64][]ref{}
	for product, ops := range h.ops {
		for i, op := range ops {
			if k, ok := op.Metadata.(string); ok {
				if r, ok := rows[k]; ok {
					l := [2]int64{r.Product, r.Location}
					byLevel[l] = append(byLevel[l], ref{seq: r.Seq, product: product, i: i})
				}
			}
		}
	}
	bounded := 0
	for _, refs := range byLevel {
		slices.SortFunc(refs, func(a, b ref) int { return cmp.Compare(a.seq, b.seq) })
		later := int64(math.MaxInt64) // the earliest return of a later change
		for j := len(refs) - 1; j >= 0; j-- {
			op := &h.ops[refs[j].product][refs[j].i]
			if op.Return == math.MaxInt64 && later < math.MaxInt64 && op.Output.(Output).Kind != Unknown {
				op.Return = max(later, op.Call)
				bounded++
			}
			later = min(later, op.Return)
		}
	}
	return bounded
}

// Ops returns the operations recorded on product, and on its components
// if it is a bundle.
func (h *History) Ops(product int64) []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := slices.Clone(h.ops[product])
	for _, c := range h.bundles[product] {
		ops = append(ops, h.ops[c.Product]...)
	}
	return ops
}

// Dumped is a product's history as dump writes it.
type Dumped struct {
	Initial, Limit int64
	Ops            []DumpedOp
}

// DumpedOp is one operation of a Dumped history.
type DumpedOp struct {
	Client    int
	Call, Ret int64
	In        Input
	Out       Output
}

// dump writes a product's history that did not check Ok to the directory
// INVENTORY_FAULTS_DUMP, if set, for a look with porcupine outside the
// run (TestReplayDumped).
func dump(p partition, initial, limit int64) {
	dir := os.Getenv("INVENTORY_FAULTS_DUMP")
	if dir == "" {
		return
	}
	d := Dumped{Initial: initial, Limit: limit}
	for _, op := range p.ops {
		d.Ops = append(d.Ops, DumpedOp{Client: op.ClientId, Call: op.Call, Ret: op.Return, In: op.Input.(Input), Out: op.Output.(Output)})
	}
	b, _ := json.Marshal(d)
	_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("product-%d-%d.json", p.product, time.Now().UnixNano())), b, 0o644)
}
