package load

import (
	"bytes"
	"encoding/json"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// The reservation scenarios. reserve holds one unit per request and never
// lets go; checkout is a shop's checkout: hold one unit, then commit it
// (9 in 10), release it (1 in 10), or, one in fifty, walk away and let the
// hold expire.
const (
	reserveQuery = `mutation($id: ID!, $key: String!, $ttl: Int!) { reserveStock(input: {items: [{productId: $id, quantity: 1}], ttlSeconds: $ttl, idempotencyKey: $key}) { reservation { id } } }`
	commitQuery  = `mutation($id: ID!) { commitReservation(id: $id) { reservation { status } } }`
	releaseQuery = `mutation($id: ID!) { releaseReservation(id: $id) { reservation { status } } }`
	idMark       = "__INVBENCH_ID__"
	// reserveTTL is how long reserve's holds last (beyond any run), and
	// checkoutTTL how long a checkout's (an abandoned one expires during
	// the run, and the reaper gives it back).
	reserveTTL  = 3600
	checkoutTTL = 5
)

// Fields an OK answer must contain, by kind: what says the change was made.
var (
	reservationField = []byte(`"reservation"`)
	statusField      = []byte(`"status"`)
)

// reservationBodies marshals the scenario's reserve bodies, per product,
// around the idempotency key, and its commit and release bodies around the
// reservation ID.
func (w *Workload) reservationBodies() error {
	ttl := reserveTTL
	if w.scenario == "checkout" {
		ttl = checkoutTTL
	}
	for _, id := range w.productIDs {
		body, err := json.Marshal(map[string]any{"query": reserveQuery, "variables": map[string]any{"id": id, "key": keyMark, "ttl": ttl}})
		if err != nil {
			return err
		}
		head, tail, _ := bytes.Cut(body, []byte(keyMark))
		w.resHead, w.resTail = append(w.resHead, head), append(w.resTail, tail)
	}
	for _, b := range []struct {
		query      string
		head, tail *[]byte
	}{{commitQuery, &w.commitHead, &w.commitTail}, {releaseQuery, &w.releaseHead, &w.releaseTail}} {
		body, err := json.Marshal(map[string]any{"query": b.query, "variables": map[string]string{"id": idMark}})
		if err != nil {
			return err
		}
		*b.head, *b.tail, _ = bytes.Cut(body, []byte(idMark))
	}
	return nil
}

// nextReservation returns a reservation scenario's next request: finish
// the worker's open checkout, or hold a unit.
func (w *Workload) nextReservation(wk *worker) ([]byte, reqKind) {
	if wk.pending != "" {
		head, tail, kind := w.commitHead, w.commitTail, kindCommit
		if wk.rand(10) == 0 {
			head, tail, kind = w.releaseHead, w.releaseTail, kindRelease
		}
		wk.body = append(append(append(wk.body[:0], head...), wk.pending...), tail...)
		wk.pending = ""
		return wk.body, kind
	}
	p := w.pick(wk)
	return w.keyed(wk, w.resHead[p], w.resTail[p]), kindReserve
}

// observeCheckout reads what a checkout needs from an answer: the
// reservation a hold made, to commit or release it next (unless the
// shopper walks away).
func (w *Workload) observeCheckout(wk *worker, kind reqKind, out string) {
	if kind != kindReserve || out != transport.OK || wk.rand(50) == 0 {
		return
	}
	var data struct {
		ReserveStock struct{ Reservation struct{ ID string } }
	}
	if json.Unmarshal(wk.gql.Data, &data) == nil {
		wk.pending = data.ReserveStock.Reservation.ID
	}
}
