package graph_test

import (
	"testing"

	"github.com/99designs/gqlgen/client"
)

func TestBulkAdjustStock(t *testing.T) {
	e := newEnv(t)
	for _, sku := range []string{"A", "B"} {
		if errs := e.do(t, `mutation { createProduct(input: {sku: "`+sku+`", name: "N", price: "1.00", initialStock: 5}) { product { id } } }`, nil); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
	var out struct {
		BulkAdjustStock struct {
			Applied, Failed int
			Rejected        bool
			Rows            []struct {
				Index    int
				Status   string
				Level    *struct{ Stock int }
				Movement *struct {
					Type      string
					Delta     int
					Reference *string
				}
				Error *struct{ Code, Message, Field string }
			}
		}
	}
	const q = `mutation($policy: BulkErrorPolicy) { bulkAdjustStock(input: {errorPolicy: $policy, reference: "count-1", items: [
		{productId: 1, quantity: 9},
		{productId: 2, delta: -7},
		{productId: 404, delta: 1},
		{productId: 2, quantity: 1, delta: 1}
	]}) { applied failed rejected rows { index status level { stock } movement { type delta reference } error { code message field } } } }`
	if errs := e.do(t, q, &out, client.Var("policy", "REJECT_FAILED_ROWS")); len(errs) > 0 {
		t.Fatal(errs)
	}
	b := out.BulkAdjustStock
	if b.Applied != 1 || b.Failed != 3 || b.Rejected || len(b.Rows) != 4 {
		t.Fatalf("%+v", b)
	}
	if r := b.Rows[0]; r.Status != "APPLIED" || r.Level.Stock != 9 || r.Movement.Type != "ADJUST" || r.Movement.Delta != 4 || *r.Movement.Reference != "count-1" {
		t.Errorf("row 0: %+v", r)
	}
	for i, code := range map[int]string{1: "INSUFFICIENT_STOCK", 2: "NOT_FOUND", 3: "BAD_USER_INPUT"} {
		if r := b.Rows[i]; r.Status != "FAILED" || r.Error == nil || r.Error.Code != code || r.Movement != nil {
			t.Errorf("row %d: %+v, want FAILED %s", i, r, code)
		}
	}
	if f := b.Rows[3].Error.Field; f != "items[3].delta" {
		t.Errorf("row 3 field %q", f)
	}

	// The default policy rejects everything: nothing changes.
	if errs := e.do(t, q, &out); len(errs) > 0 {
		t.Fatal(errs)
	}
	if b := out.BulkAdjustStock; !b.Rejected || b.Applied != 0 || b.Rows[0].Status != "NOT_APPLIED" {
		t.Errorf("%+v", b)
	}
	// Too many items is an error of the call.
	errs := e.do(t, `mutation { bulkAdjustStock(input: {items: []}) { applied } }`, nil)
	if len(errs) != 1 || errs[0].Extensions["code"] != "BAD_USER_INPUT" {
		t.Errorf("no items: %+v", errs)
	}
}

func TestReconcileAndRepair(t *testing.T) {
	e := newEnv(t)
	if errs := e.do(t, `mutation { createProduct(input: {sku: "R", name: "N", price: "1.00", initialStock: 5}) { product { id } } }`, nil); len(errs) > 0 {
		t.Fatal(errs)
	}
	var out struct {
		Reconcile struct {
			LevelsChecked int
			Drifts        []struct{ Stock, LedgerStock int }
		}
	}
	e.must(t, `{ reconcile { levelsChecked drifts { product { sku } location { id } stock ledgerStock reserved heldReserved } } }`, &out)
	if out.Reconcile.LevelsChecked != 1 || len(out.Reconcile.Drifts) != 0 {
		t.Errorf("%+v", out.Reconcile)
	}
	var rep struct {
		RepairDrift struct {
			Before   struct{ Stock, LedgerStock int }
			Repaired bool
			Movement *struct{ Type string }
			Level    struct{ Stock int }
		}
	}
	e.must(t, `mutation { repairDrift(productId: 1, reason: "check") { before { stock ledgerStock } repaired movement { type } level { stock } } }`, &rep)
	if r := rep.RepairDrift; r.Repaired || r.Movement != nil || r.Before.Stock != 5 || r.Before.LedgerStock != 5 || r.Level.Stock != 5 {
		t.Errorf("%+v", r)
	}
	errs := e.do(t, `mutation { repairDrift(productId: 1, locationId: 42, reason: "x") { repaired } }`, nil)
	if len(errs) != 1 || errs[0].Extensions["code"] != "NOT_FOUND" {
		t.Errorf("unknown level: %+v", errs)
	}
}
