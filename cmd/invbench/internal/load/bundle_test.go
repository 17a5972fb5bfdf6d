package load

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shopstack/inventory/cmd/invbench/internal/transport"
)

func TestBundleSales(t *testing.T) {
	w := &Workload{scenario: "bundle", runID: "RUN", productIDs: []string{"7", "8"}, bundleID: "9"}
	var err error
	if w.bundleHead, w.bundleTail, err = stockOutBody(w.bundleID); err != nil {
		t.Fatal(err)
	}
	for _, id := range w.productIDs {
		head, tail, err := stockOutBody(id)
		if err != nil {
			t.Fatal(err)
		}
		w.outHead, w.outTail = append(w.outHead, head), append(w.outTail, tail)
	}

	t.Run("ClientsSellTheBundleAndEveryFourthItsComponent", func(t *testing.T) {
		for id := range 8 {
			wk := &worker{id: id, rng: 1}
			body, kind := w.next(wk)
			s := decode(t, body)
			want, wantKind := "9", kindBundleOut
			if id == 3 || id == 7 {
				want, wantKind = "7", kindStockOut
			}
			if kind != wantKind || s.Query != stockOutQuery || s.Variables.ID != want || s.Variables.Key != "RUN-"+strconv.Itoa(id)+"-1" {
				t.Errorf("client %d: kind %d, %+v; want a stock-out of %s", id, kind, s.Variables, want)
			}
		}
	})
	t.Run("Parts", func(t *testing.T) {
		id, parts := w.Bundle()
		want := []Part{{ID: "7", Quantity: 2, Direct: true}, {ID: "8", Quantity: 1}}
		if id != "9" || !slices.Equal(parts, want) {
			t.Errorf("bundle %q, parts %+v; want 9, %+v", id, parts, want)
		}
		if id, parts := (&Workload{scenario: "flash", productIDs: []string{"7"}}).Bundle(); id != "" || parts != nil {
			t.Errorf("flash: bundle %q, parts %v; want none", id, parts)
		}
	})
	t.Run("Tally", func(t *testing.T) {
		var a, b Tally
		a.record(time.Millisecond, kindBundleOut, transport.OK)
		a.record(time.Millisecond, kindBundleOut, "INSUFFICIENT_STOCK")
		b.record(3*time.Millisecond, kindBundleOut, transport.NoAnswer)
		b.record(time.Millisecond, kindStockOut, transport.OK)
		a.merge(&b)
		if a.BundleOuts != 3 || a.Bundles != 1 || a.BundlesUnknown != 1 || len(a.BundleLatencies) != 3 {
			t.Errorf("bundle stock-outs %d, sold %d, unknown %d, latencies %v; want 3, 1, 1 and 3 latencies",
				a.BundleOuts, a.Bundles, a.BundlesUnknown, a.BundleLatencies)
		}
		if a.Writes != 4 || a.Sold != 1 || a.Unknown != 0 || a.Requests() != 4 {
			t.Errorf("writes %d, sold %d, unknown %d, requests %d; want 4, 1 (the direct sale), 0, 4", a.Writes, a.Sold, a.Unknown, a.Requests())
		}
	})
}
