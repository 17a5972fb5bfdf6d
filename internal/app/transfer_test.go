package app_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func TestTransfers(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		shop, err := e.svc.CreateLocation(ctx, inventory.NewLocation{Code: "shop-1", Name: "Shop 1"})
		mustNoErr(t, err)
		a, b := mustProduct(t, e.svc, "tr-a", 20, 0), mustProduct(t, e.svc, "tr-b", 5, 0)
		level := func(p inventory.Product, loc int64) inventory.Level {
			t.Helper()
			levels, err := e.svc.Levels(ctx, p.ID)
			mustNoErr(t, err)
			for _, l := range levels {
				if l.LocationID == loc {
					return l
				}
			}
			return inventory.Level{}
		}
		draft := func(key string, qa, qb int64) inventory.Transfer {
			t.Helper()
			res, err := e.svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: inventory.DefaultLocationID, DestinationID: shop.ID,
				Items: []inventory.TransferItemInput{{ProductID: b.ID, Quantity: qb}, {ProductID: a.ID, Quantity: qa}}, Reference: "T-1", IdempotencyKey: key})
			mustNoErr(t, err)
			return res.Transfer
		}

		t.Run("OK", func(t *testing.T) {
			tr := draft("create-1", 8, 5)
			if tr.ID == 0 || tr.Status != inventory.TransferDraft || len(tr.Items) != 2 || tr.Items[0].ProductID != a.ID {
				t.Fatalf("draft: %+v", tr)
			}
			again, err := e.svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: inventory.DefaultLocationID, DestinationID: shop.ID,
				Items: []inventory.TransferItemInput{{ProductID: a.ID, Quantity: 8}, {ProductID: b.ID, Quantity: 5}}, Reference: "T-1", IdempotencyKey: "create-1"})
			mustNoErr(t, err)
			if !again.Replayed || again.Transfer.ID != tr.ID {
				t.Fatalf("create retry: %+v", again)
			}

			res, err := e.svc.ShipTransfer(ctx, tr.ID, "ship-1")
			mustNoErr(t, err)
			if res.Transfer.Status != inventory.TransferInTransit || res.Transfer.Items[0].Shipped != 8 || res.Replayed {
				t.Fatalf("ship: %+v", res)
			}
			if o, d := level(a, inventory.DefaultLocationID), level(a, shop.ID); o.Stock != 12 || d.Incoming != 8 || d.Stock != 0 {
				t.Fatalf("after ship: origin %+v destination %+v", o, d)
			}
			again, err = e.svc.ShipTransfer(ctx, tr.ID, "ship-1")
			mustNoErr(t, err)
			if !again.Replayed || again.Transfer.Status != inventory.TransferInTransit {
				t.Fatalf("ship retry: %+v", again)
			}

			res, err = e.svc.ReceiveTransfer(ctx, inventory.TransferReceipt{TransferID: tr.ID, IdempotencyKey: "recv-1",
				Items: []inventory.ReceivedItem{{ProductID: a.ID, Quantity: 6}, {ProductID: a.ID, Quantity: 1, State: inventory.StateDamaged}}})
			mustNoErr(t, err)
			if res.Transfer.Status != inventory.TransferInTransit || res.Transfer.Items[0].Received != 7 || res.Transfer.Items[0].InTransit() != 1 {
				t.Fatalf("partial receipt: %+v", res)
			}
			if d := level(a, shop.ID); d.Stock != 7 || d.Damaged != 1 || d.Incoming != 1 || d.Available() != 6 {
				t.Fatalf("after receipt: %+v", d)
			}
			again, err = e.svc.ReceiveTransfer(ctx, inventory.TransferReceipt{TransferID: tr.ID, IdempotencyKey: "recv-1",
				Items: []inventory.ReceivedItem{{ProductID: a.ID, Quantity: 6}, {ProductID: a.ID, Quantity: 1, State: inventory.StateDamaged}}})
			mustNoErr(t, err)
			if !again.Replayed || again.Transfer.Items[0].Received != 7 {
				t.Fatalf("receipt retry: %+v", again)
			}
			_, err = e.svc.ReceiveTransfer(ctx, inventory.TransferReceipt{TransferID: tr.ID, Items: []inventory.ReceivedItem{{ProductID: a.ID, Quantity: 2}}})
			wantCode(t, err, inventory.CodeConflict)

			res, err = e.svc.ReceiveTransfer(ctx, inventory.TransferReceipt{TransferID: tr.ID,
				Items: []inventory.ReceivedItem{{ProductID: a.ID, Quantity: 1}, {ProductID: b.ID, Quantity: 5}}})
			mustNoErr(t, err)
			if res.Transfer.Status != inventory.TransferReceived {
				t.Fatalf("final receipt: %+v", res)
			}
			_, err = e.svc.CancelTransfer(ctx, tr.ID, "")
			wantCode(t, err, inventory.CodeConflict)
			checkLedgerExplainsStock(t, e.svc, a.ID)
			checkLedgerExplainsStock(t, e.svc, b.ID)
		})
		t.Run("ErrInsufficientStock", func(t *testing.T) {
			tr := draft("", 1, 6) // b has 0 left at the origin
			_, err := e.svc.ShipTransfer(ctx, tr.ID, "")
			wantCode(t, err, inventory.CodeInsufficientStock)
			got, err := e.svc.Transfer(ctx, tr.ID)
			mustNoErr(t, err)
			if got.Status != inventory.TransferDraft || level(a, inventory.DefaultLocationID).Stock != 12 {
				t.Fatalf("a refused shipment changed something: %+v", got)
			}
			res, err := e.svc.CancelTransfer(ctx, tr.ID, "cancel-draft")
			mustNoErr(t, err)
			if res.Transfer.Status != inventory.TransferCancelled {
				t.Fatalf("cancel draft: %+v", res)
			}
			_, err = e.svc.ShipTransfer(ctx, tr.ID, "")
			wantCode(t, err, inventory.CodeConflict)
		})
		t.Run("CancelInTransit", func(t *testing.T) {
			tr := draft("", 4, 0+1)
			_, err := e.svc.StockIn(ctx, inventory.StockChange{ProductID: b.ID, Quantity: 1})
			mustNoErr(t, err)
			_, err = e.svc.ShipTransfer(ctx, tr.ID, "")
			mustNoErr(t, err)
			_, err = e.svc.ReceiveTransfer(ctx, inventory.TransferReceipt{TransferID: tr.ID, Items: []inventory.ReceivedItem{{ProductID: a.ID, Quantity: 3}}})
			mustNoErr(t, err)
			res, err := e.svc.CancelTransfer(ctx, tr.ID, "cancel-1")
			mustNoErr(t, err)
			if res.Transfer.Status != inventory.TransferCancelled || res.Transfer.Items[0].Returned != 1 || res.Transfer.Items[1].Returned != 1 {
				t.Fatalf("cancel in transit: %+v", res)
			}
			if o, d := level(a, inventory.DefaultLocationID), level(a, shop.ID); o.Stock != 9 || d.Incoming != 0 || d.Stock != 11 {
				t.Fatalf("after cancel: origin %+v destination %+v", o, d)
			}
			again, err := e.svc.CancelTransfer(ctx, tr.ID, "cancel-1")
			mustNoErr(t, err)
			if !again.Replayed {
				t.Fatalf("cancel retry: %+v", again)
			}
			checkLedgerExplainsStock(t, e.svc, a.ID)
		})
		t.Run("ErrBadInput", func(t *testing.T) {
			for _, in := range []inventory.NewTransfer{
				{OriginID: 1, DestinationID: 1, Items: []inventory.TransferItemInput{{ProductID: a.ID, Quantity: 1}}},
				{OriginID: 1, DestinationID: shop.ID},
				{OriginID: 1, DestinationID: shop.ID, Items: []inventory.TransferItemInput{{ProductID: a.ID, Quantity: 0}}},
				{OriginID: 1, DestinationID: shop.ID, Items: []inventory.TransferItemInput{{ProductID: a.ID, Quantity: inventory.MaxQuantity}, {ProductID: a.ID, Quantity: 1}}},
			} {
				_, err := e.svc.CreateTransfer(ctx, in)
				wantCode(t, err, inventory.CodeBadInput)
			}
			_, err := e.svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: 1, DestinationID: 99, Items: []inventory.TransferItemInput{{ProductID: a.ID, Quantity: 1}}})
			wantCode(t, err, inventory.CodeNotFound)
			_, err = e.svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: 1, DestinationID: shop.ID, Items: []inventory.TransferItemInput{{ProductID: 9999, Quantity: 1}}})
			wantCode(t, err, inventory.CodeNotFound)
			_, err = e.svc.ShipTransfer(ctx, 9999, "")
			wantCode(t, err, inventory.CodeNotFound)
			_, err = e.svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: 1, DestinationID: shop.ID, IdempotencyKey: "create-1",
				Items: []inventory.TransferItemInput{{ProductID: a.ID, Quantity: 1}}})
			wantCode(t, err, inventory.CodeConflict)
		})
		t.Run("Reconcile", func(t *testing.T) {
			report, err := e.svc.Reconcile(ctx, nil, nil)
			mustNoErr(t, err)
			if len(report.Drifts) != 0 || len(report.TransferDrifts) != 0 || report.TransferItems != 6 {
				t.Fatalf("reconcile: %+v", report)
			}
			page, err := e.svc.Transfers(ctx, inventory.TransferFilter{Status: inventory.TransferCancelled}, 10, 0)
			mustNoErr(t, err)
			if len(page.Transfers) != 2 || page.HasNext {
				t.Fatalf("cancelled transfers: %+v", page)
			}
		})
	})
}
