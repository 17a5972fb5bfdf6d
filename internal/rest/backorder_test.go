package rest_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestBackorders: POST /product takes an optional backorderLimit; a sale
// beyond the shelf shows in the product's and the level's fields, which a
// seed client still decodes; beyond the limit is 409 INSUFFICIENT_STOCK.
func TestBackorders(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/product", `{"id":"PRE-1","name":"Pre-order","price":5,"stock":1,"backorderLimit":3}`)
	if r.status != http.StatusCreated || r.body["backorderLimit"] != 3.0 || r.body["backordered"] != 0.0 {
		t.Fatalf("create = %d %s", r.status, r.raw)
	}

	r = e.do(t, "POST", "/stock/out", `{"id":"PRE-1","count":3}`)
	if r.status != 200 || r.body["stock"] != -2.0 || r.body["available"] != -2.0 || r.body["backordered"] != 2.0 ||
		field(t, r.body, "level", "available") != -2.0 || field(t, r.body, "level", "backordered") != 2.0 ||
		field(t, r.body, "movement", "quantityAfter") != -2.0 || field(t, r.body, "movement", "availableAfter") != -2.0 {
		t.Fatalf("stock out beyond the shelf = %d %s", r.status, r.raw)
	}
	var seed seedProduct
	if err := json.Unmarshal([]byte(r.raw), &seed); err != nil || seed.Stock != -2 {
		t.Fatalf("a seed client reads %+v (%v)", seed, err)
	}

	t.Run("ErrInsufficientStock", func(t *testing.T) {
		// One more may be sold, not two.
		if r := e.do(t, "POST", "/stock/out", `{"id":"PRE-1","count":2}`); r.status != http.StatusConflict || r.errCode() != "INSUFFICIENT_STOCK" {
			t.Fatalf("beyond the limit = %d %s", r.status, r.raw)
		}
		if r := e.do(t, "GET", "/product/PRE-1", ""); r.body["stock"] != -2.0 || r.body["backordered"] != 2.0 || r.body["backorderLimit"] != 3.0 {
			t.Fatalf("after the refusal: %s", r.raw)
		}
	})
	t.Run("StockInFillsBackorders", func(t *testing.T) {
		r := e.do(t, "POST", "/stock/in", `{"id":"PRE-1","count":3}`)
		if r.status != 200 || r.body["stock"] != 1.0 || r.body["backordered"] != 0.0 || field(t, r.body, "level", "backordered") != 0.0 {
			t.Fatalf("stock in = %d %s", r.status, r.raw)
		}
	})
	t.Run("SeedBodyHasNoBackorders", func(t *testing.T) {
		r := e.do(t, "POST", "/product", `{"id":"SHELF-1","name":"Shelf","price":5,"stock":1}`)
		if r.status != http.StatusCreated || r.body["backorderLimit"] != 0.0 {
			t.Fatalf("create = %d %s", r.status, r.raw)
		}
		if r := e.do(t, "POST", "/stock/out", `{"id":"SHELF-1","count":2}`); r.status != http.StatusConflict || r.errCode() != "INSUFFICIENT_STOCK" {
			t.Fatalf("beyond the shelf = %d %s", r.status, r.raw)
		}
	})
	t.Run("ErrBadInput", func(t *testing.T) {
		for _, body := range []string{
			`{"id":"PRE-2","name":"x","price":1,"backorderLimit":-1}`,
			`{"id":"PRE-2","name":"x","price":1,"backorderLimit":"3"}`,
			`{"id":"PRE-2","name":"x","price":1,"backorderLimit":1.5}`,
		} {
			r := e.do(t, "POST", "/product", body)
			if r.status != http.StatusBadRequest || r.errCode() != "BAD_USER_INPUT" {
				t.Errorf("%s = %d %s", body, r.status, r.raw)
			}
		}
		if r := e.do(t, "POST", "/product", `{"id":"PRE-2","name":"x","price":1,"backorderLimit":-1}`); field(t, r.body, "error", "field") != "backorderLimit" {
			t.Errorf("a negative limit is not named backorderLimit: %s", r.raw)
		}
	})
}
