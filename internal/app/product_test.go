package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/shopstack/inventory/internal/inventory"
	"github.com/shopstack/inventory/internal/testenv/gormstoretest"
)

func TestCreateProduct(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()

		t.Run("OK", func(t *testing.T) {
			res, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: " tee-red-m ", Name: " Red T-shirt ", Price: 12_500_000, Threshold: 3})
			mustNoErr(t, err)
			p := res.Product
			if p.ID == 0 || p.SKU != "TEE-RED-M" || p.Name != "Red T-shirt" || p.Price.String() != "12.50" || p.Version != 1 || p.Stock != 0 || !p.LowStock() {
				t.Fatalf("created: %+v", p)
			}
			if res.Movement != nil || res.Replayed {
				t.Fatalf("no initial stock, yet: %+v", res)
			}
			got, err := e.svc.ProductBySKU(ctx, "Tee-Red-M")
			mustNoErr(t, err)
			if got.ID != p.ID || !got.CreatedAt.Equal(p.CreatedAt) {
				t.Fatalf("by SKU: %+v, want %+v", got, p)
			}
		})
		t.Run("InitialStock", func(t *testing.T) {
			res, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "MUG", Name: "Mug", InitialStock: 40, IdempotencyKey: "create-mug"})
			mustNoErr(t, err)
			if res.Product.Stock != 40 || res.Movement == nil || res.Movement.Delta != 40 || res.Movement.ProductID != res.Product.ID || res.Movement.Seq == 0 {
				t.Fatalf("initial stock: %+v %+v", res.Product, res.Movement)
			}
			checkLedgerExplainsStock(t, e.svc, res.Product.ID)
			again, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "MUG", Name: "Mug", InitialStock: 40, IdempotencyKey: "create-mug"})
			mustNoErr(t, err)
			if !again.Replayed || again.Product.ID != res.Product.ID || again.Movement == nil || again.Movement.Seq != res.Movement.Seq {
				t.Fatalf("replay: %+v", again)
			}
			_, err = e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "MUG2", Name: "Mug", IdempotencyKey: "create-mug"})
			wantCode(t, err, inventory.CodeConflict)
		})
		t.Run("ErrDuplicateSKU", func(t *testing.T) {
			_, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "tee-red-M", Name: "dup"})
			wantCode(t, err, inventory.CodeConflict)
		})
		t.Run("ErrBadInput", func(t *testing.T) {
			for name, np := range map[string]inventory.NewProduct{
				"empty sku":      {SKU: "", Name: "x"},
				"sku spaces":     {SKU: "A B", Name: "x"},
				"sku too long":   {SKU: strings.Repeat("A", 65), Name: "x"},
				"sku symbol":     {SKU: "-A", Name: "x"},
				"empty name":     {SKU: "A", Name: "  "},
				"long name":      {SKU: "A", Name: strings.Repeat("é", 201)},
				"control name":   {SKU: "A", Name: "a\nb"},
				"negative price": {SKU: "A", Name: "x", Price: -1},
				"threshold":      {SKU: "A", Name: "x", Threshold: -1},
				"initial stock":  {SKU: "A", Name: "x", InitialStock: inventory.MaxQuantity + 1},
			} {
				if _, err := e.svc.CreateProduct(ctx, np); err == nil || inventory.ErrorCode(err) != inventory.CodeBadInput {
					t.Errorf("%s: err = %v, want BAD_USER_INPUT", name, err)
				}
			}
			_, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "A", Name: "x", InitialStock: 1, InitialLocationID: 999})
			wantCode(t, err, inventory.CodeNotFound)
		})
	})
}

func TestUpdateProduct(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		p := mustProduct(t, e.svc, "UPD", 10, 2)
		mustProduct(t, e.svc, "OTHER", 0, 0)
		name, th := "Renamed", int64(20)
		v := p.Version

		res, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, Name: &name, Threshold: &th, ExpectedVersion: &v, IdempotencyKey: "upd-1"})
		mustNoErr(t, err)
		if res.Product.Name != name || res.Product.Threshold != 20 || res.Product.Version != v+1 || res.Product.Stock != 10 || !res.Product.LowStock() {
			t.Fatalf("updated: %+v", res.Product)
		}
		again, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, Name: &name, Threshold: &th, ExpectedVersion: &v, IdempotencyKey: "upd-1"})
		mustNoErr(t, err)
		if !again.Replayed || again.Product.Version != v+1 {
			t.Fatalf("replay: %+v", again)
		}
		_, err = e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, ExpectedVersion: &v})
		wantCode(t, err, inventory.CodeConflict)

		same, err := e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, Name: &name})
		mustNoErr(t, err)
		if same.Product.Version != v+1 {
			t.Fatalf("an update that changes nothing bumped the version to %d", same.Product.Version)
		}
		taken := "other"
		_, err = e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, SKU: &taken})
		wantCode(t, err, inventory.CodeConflict)
		_, err = e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: 12345, Name: &name})
		wantCode(t, err, inventory.CodeNotFound)
		bad := ""
		_, err = e.svc.UpdateProduct(ctx, inventory.ProductUpdate{ID: p.ID, Name: &bad})
		wantCode(t, err, inventory.CodeBadInput)
	})
}

func TestProductsPaging(t *testing.T) {
	gormstoretest.ForEachDriver(t, func(t *testing.T, driver string) {
		e := mustService(t, driver)
		ctx := context.Background()
		for i := range 25 {
			stock := int64(10)
			if i%5 == 0 {
				stock = 1
			}
			mustProduct(t, e.svc, fmt.Sprintf("PG-%02d", i), stock, 5)
		}
		_, err := e.svc.CreateProduct(ctx, inventory.NewProduct{SKU: "SALE", Name: "Save 100% now"})
		mustNoErr(t, err)

		var seen []int64
		after := int64(0)
		for {
			page, err := e.svc.Products(ctx, inventory.ProductFilter{}, 10, after)
			mustNoErr(t, err)
			for _, p := range page.Products {
				seen = append(seen, p.Product.ID)
				after = p.Product.ID
			}
			if !page.HasNext {
				break
			}
		}
		if len(seen) != 26 {
			t.Fatalf("paged through %d products, want 26", len(seen))
		}
		low := true
		n, err := e.svc.CountProducts(ctx, inventory.ProductFilter{LowStock: &low})
		mustNoErr(t, err)
		if n != 5 {
			t.Fatalf("low-stock count = %d, want 5", n)
		}
		n, err = e.svc.CountProducts(ctx, inventory.ProductFilter{Text: "pg-1"})
		mustNoErr(t, err)
		if n != 10 {
			t.Fatalf("text count = %d, want 10", n)
		}
		// LIKE wildcards in the filter are literal.
		for text, want := range map[string]int{"100%": 1, "0%": 1, "g_0": 0, "%": 1} {
			n, err = e.svc.CountProducts(ctx, inventory.ProductFilter{Text: text})
			mustNoErr(t, err)
			if n != want {
				t.Errorf("count for %q = %d, want %d", text, n, want)
			}
		}
		_, err = e.svc.Products(ctx, inventory.ProductFilter{}, 0, 0)
		wantCode(t, err, inventory.CodeBadInput)
		_, err = e.svc.Products(ctx, inventory.ProductFilter{}, inventory.MaxPageSize+1, 0)
		wantCode(t, err, inventory.CodeBadInput)
	})
}

func TestPrice(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0.00", "12": "12.00", "12.5": "12.50", "0012.50": "12.50", "0.000001": "0.000001",
		"999999999999.999999": "999999999999.999999", "1.230": "1.23",
	} {
		p, err := inventory.ParsePrice(in)
		if err != nil {
			t.Errorf("ParsePrice(%q): %v", in, err)
			continue
		}
		if p.String() != want {
			t.Errorf("ParsePrice(%q) = %s, want %s", in, p, want)
		}
	}
	for _, in := range []string{"", ".5", "5.", "-1", "+1", "1e3", "1,000", " 1", "1.0000001", "1000000000000", "NaN", "１２"} {
		if _, err := inventory.ParsePrice(in); inventory.ErrorCode(err) != inventory.CodeBadInput {
			t.Errorf("ParsePrice(%q) err = %v, want BAD_USER_INPUT", in, err)
		}
	}
}
