package app_test

import (
	"context"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
)

// FuzzProductInput sends arbitrary product input through the service: it
// is created or refused with BAD_USER_INPUT (or CONFLICT for a SKU taken),
// never another error; a created product reads back as it was answered.
func FuzzProductInput(f *testing.F) {
	f.Add("MUG-1", "Mug", "8.00", int64(5), int64(20), "key-1")
	f.Add(" mug-2 ", "Ünïcödé ☕", "0.10", int64(0), int64(0), "")
	f.Add("a b", "\x00", "-3", int64(-1), int64(-5), "has space")
	f.Add("X", string(make([]byte, 300)), "1e9", int64(1<<40), int64(1<<62), "k")
	e := mustService(f, "sqlite")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, sku, name, price string, threshold, stock int64, key string) {
		p, err := inventory.ParsePrice(price)
		if err != nil {
			return
		}
		res, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: sku, Name: name, Price: p, Threshold: threshold, InitialStock: stock, IdempotencyKey: key})
		if err != nil {
			if c := inventory.ErrorCode(err); c != inventory.CodeBadInput && c != inventory.CodeConflict {
				t.Fatalf("%q %q %s %d %d %q: %v", sku, name, price, threshold, stock, key, err)
			}
			return
		}
		got, err := e.svc.Product(ctx, res.Product.ID)
		if err != nil || got.SKU != res.Product.SKU || got.Name != res.Product.Name || got.Stock != res.Product.Stock || got.Price != res.Product.Price {
			t.Fatalf("created %+v, read %+v, %v", res.Product, got, err)
		}
	})
}
