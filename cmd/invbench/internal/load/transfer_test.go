package load

import (
	"encoding/json"
	"testing"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

// sent is a transfer request as the server would read it.
type sent struct {
	Query     string
	Variables struct {
		ID, Key, P, From, To string
		Q                    int
	}
}

func decode(t *testing.T, body []byte) sent {
	t.Helper()
	var s sent
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, body)
	}
	return s
}

func TestTransferSteps(t *testing.T) {
	w := &Workload{scenario: "transfer", runID: "RUN", productIDs: []string{"7"}, origin: "1", destination: "2",
		outHead: [][]byte{[]byte("out:")}, outTail: [][]byte{nil}}
	if err := w.transferBodies(); err != nil {
		t.Fatal(err)
	}
	wk := &worker{id: 8, rng: 1}
	// step sends the mover's next request, checks it is a transfer step of
	// the query, and answers it with out and data.
	step := func(query, out, data string) sent {
		t.Helper()
		body, kind := w.next(wk)
		if kind != kindTransfer {
			t.Fatalf("kind %d, want a transfer step", kind)
		}
		s := decode(t, body)
		if s.Query != query {
			t.Fatalf("sent %.60q…, want %.60q…", s.Query, query)
		}
		wk.gql.Data = json.RawMessage(data)
		w.observe(wk, kind, out)
		return s
	}

	t.Run("OK", func(t *testing.T) {
		c := step(createTransferQuery, transport.OK, `{"createTransfer":{"transfer":{"id":"42","status":"DRAFT"},"replayed":false}}`)
		if v := c.Variables; v.From != "1" || v.To != "2" || v.P != "7" || v.Q < 1 || v.Q > maxMove || v.Key != "RUN-8-1" {
			t.Fatalf("create: %+v", v)
		}
		if s := step(shipTransferQuery, transport.OK, `{}`); s.Variables.ID != "42" || s.Variables.Key != "RUN-8-2" {
			t.Fatalf("ship: %+v", s.Variables)
		}
		r := step(receiveTransferQuery, transport.OK, `{}`)
		if v := r.Variables; v.ID != "42" || v.P != "7" || v.Q != c.Variables.Q || v.Key != "RUN-8-3" {
			t.Fatalf("receive: %+v, want all %d units of the transfer", v, c.Variables.Q)
		}
		if wk.tally.Moved != 1 || wk.tally.MovedUnits != int64(c.Variables.Q) {
			t.Fatalf("moved %d transfers, %d units; want 1, %d", wk.tally.Moved, wk.tally.MovedUnits, c.Variables.Q)
		}
	})
	t.Run("UnknownOutcomeIsSentAgain", func(t *testing.T) {
		c := step(createTransferQuery, transport.NoAnswer, ``)
		if again := step(createTransferQuery, transport.OK, `{"createTransfer":{"transfer":{"id":"43"}}}`); again != c {
			t.Fatalf("resent %+v, want %+v: the same key", again.Variables, c.Variables)
		}
		s := step(shipTransferQuery, transport.BadAnswer, `{}`)
		if again := step(shipTransferQuery, transport.OK, `{}`); again != s || s.Variables.ID != "43" {
			t.Fatalf("resent %+v, want %+v", again.Variables, s.Variables)
		}
		step(receiveTransferQuery, transport.OK, `{}`)
	})
	t.Run("ErrInsufficientStock", func(t *testing.T) {
		step(createTransferQuery, transport.OK, `{"createTransfer":{"transfer":{"id":"44"}}}`)
		step(shipTransferQuery, "INSUFFICIENT_STOCK", ``)
		if s := step(cancelTransferQuery, transport.OK, `{}`); s.Variables.ID != "44" {
			t.Fatalf("cancel: %+v", s.Variables)
		}
		step(createTransferQuery, transport.OK, `{"createTransfer":{"transfer":{"id":"45"}}}`)
	})
	t.Run("OtherRefusalsStartAgain", func(t *testing.T) {
		step(shipTransferQuery, transport.OK, `{}`)
		step(receiveTransferQuery, "CONFLICT", ``)
		step(createTransferQuery, transport.OK, `{"createTransfer":{"transfer":{"id":"46"}}}`)
	})
	t.Run("SellersSell", func(t *testing.T) {
		for _, id := range []int{1, 7, 9} {
			if _, kind := w.next(&worker{id: id, rng: 1}); kind != kindStockOut {
				t.Errorf("client %d: kind %d, want a stock-out", id, kind)
			}
		}
	})
}
