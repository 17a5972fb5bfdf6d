package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// The transfer scenario: a flash sale at the default location while every
// eighth client moves the same product's stock to a location of the run's
// own, one transfer after another: create (1..maxMove units), ship,
// receive all of it. Once the sale has sold the origin out, a shipment is
// refused and its draft cancelled.
const (
	createTransferQuery  = `mutation($from: ID!, $key: String!, $p: ID!, $q: Int!, $to: ID!) { createTransfer(input: {originLocationId: $from, destinationLocationId: $to, items: [{productId: $p, quantity: $q}], reference: "invbench", idempotencyKey: $key}) { transfer { id status } replayed } }`
	shipTransferQuery    = `mutation($id: ID!, $key: String!) { shipTransfer(id: $id, idempotencyKey: $key) { transfer { status } replayed } }`
	receiveTransferQuery = `mutation($id: ID!, $key: String!, $p: ID!, $q: Int!) { receiveTransfer(input: {id: $id, items: [{productId: $p, quantity: $q, state: AVAILABLE}], idempotencyKey: $key}) { transfer { status } replayed } }`
	cancelTransferQuery  = `mutation($id: ID!, $key: String!) { cancelTransfer(id: $id, idempotencyKey: $key) { transfer { status } replayed } }`
	// maxMove is the most units one transfer moves, and moverEvery says
	// which clients move: those whose number it divides (so at least one).
	maxMove    = 3
	moverEvery = 8
)

// mover reports whether client id moves stock in the transfer scenario;
// the others sell.
func mover(id int) bool { return id%moverEvery == 0 }

// transferStep is what a mover's next request does.
type transferStep uint8

const (
	stepCreate transferStep = iota
	stepShip
	stepReceive
	stepCancel
)

// transferState is a mover's transfer in progress.
type transferState struct {
	step transferStep
	// id is the transfer's ID, as the text of a JSON string; units is how
	// many it moves.
	id    string
	units int
	// resend says the last request's outcome is unknown: it goes again
	// with the same idempotency key, and its answer says what happened.
	resend bool
}

// transferBodies are the transfer requests, cut around what changes: the
// idempotency key, after the transfer's ID where there is one. The create
// and receive bodies are per quantity (index units-1).
type transferBodies struct {
	create       [maxMove][][]byte
	receive      [maxMove][][]byte
	ship, cancel [][]byte
}

// prepareTransfers finds the default location (the origin) and creates
// the run's destination, its code the run's prefix, then marshals the
// transfer bodies.
func (w *Workload) prepareTransfers(ctx context.Context, c *transport.Client) error {
	var locs struct {
		Locations []struct {
			ID        string
			IsDefault bool
		}
	}
	if err := c.Query(ctx, `{ locations { id isDefault } }`, nil, &locs); err != nil {
		return fmt.Errorf("read locations: %w", err)
	}
	for _, l := range locs.Locations {
		if l.IsDefault {
			w.origin = l.ID
		}
	}
	if w.origin == "" {
		return errors.New("read locations: no default location")
	}
	var created struct{ CreateLocation struct{ ID string } }
	if err := c.Query(ctx, `mutation($code: String!) { createLocation(input: {code: $code, name: "invbench transfers"}) { id } }`,
		map[string]any{"code": w.prefix()}, &created); err != nil {
		return fmt.Errorf("create location: %w", err)
	}
	w.destination = created.CreateLocation.ID
	return w.transferBodies()
}

// transferBodies marshals the transfer requests of the scenario's product.
func (w *Workload) transferBodies() error {
	p, t := w.productIDs[0], &w.transfer
	var err error
	for q := 1; q <= maxMove; q++ {
		vars := map[string]any{"from": w.origin, "to": w.destination, "p": p, "q": q, "key": keyMark}
		if t.create[q-1], err = cutBody(createTransferQuery, vars, keyMark); err != nil {
			return err
		}
		vars = map[string]any{"id": idMark, "key": keyMark, "p": p, "q": q}
		if t.receive[q-1], err = cutBody(receiveTransferQuery, vars, idMark, keyMark); err != nil {
			return err
		}
	}
	vars := map[string]any{"id": idMark, "key": keyMark}
	if t.ship, err = cutBody(shipTransferQuery, vars, idMark, keyMark); err != nil {
		return err
	}
	t.cancel, err = cutBody(cancelTransferQuery, vars, idMark, keyMark)
	return err
}

// cutBody marshals a request and cuts it around marks, which must appear
// in this order (JSON objects' keys are marshalled sorted).
func cutBody(query string, vars map[string]any, marks ...string) ([][]byte, error) {
	body, err := json.Marshal(map[string]any{"query": query, "variables": vars})
	if err != nil {
		return nil, err
	}
	var parts [][]byte
	for _, m := range marks {
		head, tail, ok := bytes.Cut(body, []byte(m))
		if !ok {
			return nil, fmt.Errorf("marshal %.40q…: no %s in its place", query, m)
		}
		parts, body = append(parts, head), tail
	}
	return append(parts, body), nil
}

// nextTransfer returns a mover's next request: the next step of its
// transfer, the last one again if its outcome is unknown, or a new
// transfer.
func (w *Workload) nextTransfer(wk *worker) ([]byte, reqKind) {
	m, t := &wk.move, &w.transfer
	switch {
	case m.resend:
		m.resend = false
		return wk.body, kindTransfer
	case m.step == stepShip:
		return w.withID(wk, t.ship, m.id), kindTransfer
	case m.step == stepReceive:
		return w.withID(wk, t.receive[m.units-1], m.id), kindTransfer
	case m.step == stepCancel:
		return w.withID(wk, t.cancel, m.id), kindTransfer
	}
	m.units = 1 + wk.rand(maxMove)
	create := t.create[m.units-1]
	return w.keyed(wk, create[0], create[1]), kindTransfer
}

// withID builds a body cut around a transfer ID and a key in the worker's
// buffer, with a new key.
func (w *Workload) withID(wk *worker, parts [][]byte, id string) []byte {
	b := append(append(wk.body[:0], parts[0]...), id...)
	wk.body = append(w.appendKey(append(b, parts[1]...), wk), parts[2]...)
	return wk.body
}

// observeTransfer moves a mover's transfer on by the answer to its step.
func (w *Workload) observeTransfer(wk *worker, out string) {
	m := &wk.move
	switch {
	case out == transport.NoAnswer || out == transport.BadAnswer:
		m.resend = true
	case out == "INSUFFICIENT_STOCK" && m.step == stepShip:
		// The origin is sold out: a normal refusal, and the draft ends.
		m.step = stepCancel
	case out != transport.OK:
		// Refused: start another. Whatever this one still has in transit
		// stays there, where the audit finds it.
		m.step = stepCreate
	case m.step == stepCreate:
		var data struct {
			CreateTransfer struct{ Transfer struct{ ID string } }
		}
		if json.Unmarshal(wk.gql.Data, &data) != nil || data.CreateTransfer.Transfer.ID == "" {
			m.resend = true
			return
		}
		id, _ := json.Marshal(data.CreateTransfer.Transfer.ID)
		m.id, m.step = string(id[1:len(id)-1]), stepShip
	case m.step == stepShip:
		m.step = stepReceive
	case m.step == stepReceive:
		wk.tally.Moved++
		wk.tally.MovedUnits += int64(m.units)
		m.step = stepCreate
	default:
		m.step = stepCreate
	}
}
