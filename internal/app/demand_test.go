package app_test

import (
	"context"
	"sync"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

// TestDemandIsSummed: a request that names one level more than once is
// judged on the sum, never each line against what the others have not
// taken yet.
func TestDemandIsSummed(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()

		// Medusa #16502: one cart holds two lines that share an inventory
		// item with 1 unit; each line alone fits, both together do not.
		t.Run("TwoCartLinesOfOneItem", func(t *testing.T) {
			p := mustProduct(t, e.svc, "TWO-LINES", 1, 0)
			_, err := e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{
				{ProductID: p.ID, Quantity: 1}, {ProductID: p.ID, Quantity: 1}}})
			wantCode(t, err, inventory.CodeInsufficientStock)
			q := mustProduct(t, e.svc, "TWO-LINES-OK", 2, 0)
			res, err := e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{
				{ProductID: q.ID, Quantity: 1}, {ProductID: q.ID, Quantity: 1}}})
			mustNoErr(t, err)
			if len(res.Reservation.Items) != 1 || res.Reservation.Items[0].Quantity != 2 {
				t.Fatalf("two lines of one level: %+v", res.Reservation.Items)
			}
			got, _ := e.svc.Product(ctx, q.ID)
			if got.Available() != 0 || got.Reserved != 2 {
				t.Fatalf("after the cart: %+v", got)
			}
			if _, err := e.svc.ReleaseReservation(ctx, res.Reservation.ID); err != nil {
				t.Fatal(err)
			}
			got, _ = e.svc.Product(ctx, q.ID)
			if got.Available() != 2 {
				t.Fatalf("after the release: available %d", got.Available())
			}
		})
		// Medusa #16569: concurrent reservation calls must not
		// oversubscribe: 20 carts of 1 unit race for 5 units.
		t.Run("ConcurrentReservations", func(t *testing.T) {
			p := mustProduct(t, e.svc, "RACE", 5, 0)
			var wg sync.WaitGroup
			var mu sync.Mutex
			held := 0
			for range 20 {
				wg.Go(func() {
					_, err := e.svc.ReserveStock(ctx, inventory.NewReservation{Items: []inventory.ReservationItemInput{{ProductID: p.ID, Quantity: 1}}})
					switch {
					case err == nil:
						mu.Lock()
						held++
						mu.Unlock()
					case inventory.ErrorCode(err) != inventory.CodeInsufficientStock:
						t.Error(err)
					}
				})
			}
			wg.Wait()
			got, _ := e.svc.Product(ctx, p.ID)
			if held != 5 || got.Reserved != 5 || got.Available() != 0 {
				t.Fatalf("%d reservations held, product %+v: want exactly 5", held, got)
			}
		})
		t.Run("TwoTransferLinesOfOneProduct", func(t *testing.T) {
			p := mustProduct(t, e.svc, "SHIP-TWICE", 3, 0)
			shop, err := e.svc.CreateLocation(ctx, inventory.NewLocation{Code: "DEMAND-SHOP", Name: "Shop"})
			mustNoErr(t, err)
			tr, err := e.svc.CreateTransfer(ctx, inventory.NewTransfer{OriginID: inventory.DefaultLocationID, DestinationID: shop.ID,
				Items: []inventory.TransferItemInput{{ProductID: p.ID, Quantity: 2}, {ProductID: p.ID, Quantity: 2}}})
			mustNoErr(t, err)
			if len(tr.Transfer.Items) != 1 || tr.Transfer.Items[0].Quantity != 4 {
				t.Fatalf("two lines of one product: %+v", tr.Transfer.Items)
			}
			_, err = e.svc.ShipTransfer(ctx, tr.Transfer.ID, "")
			wantCode(t, err, inventory.CodeInsufficientStock)
		})
	})
}
