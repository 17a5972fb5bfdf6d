package rest_test

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestUntracked: POST /product takes an optional tracked, true by default;
// an untracked product sells below zero, beyond any backorder limit, is
// never low on stock, and a seed client still decodes its answers.
func TestUntracked(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/product", `{"id":"EBOOK-1","name":"E-book","price":5,"threshold":10,"tracked":false}`)
	if r.status != http.StatusCreated || r.body["tracked"] != false || r.body["lowStock"] != false {
		t.Fatalf("create = %d %s", r.status, r.raw)
	}

	r = e.do(t, "POST", "/stock/out", `{"id":"EBOOK-1","count":4}`)
	if r.status != 200 || r.body["tracked"] != false || r.body["stock"] != -4.0 || r.body["available"] != -4.0 ||
		r.body["backordered"] != 4.0 || r.body["backorderLimit"] != 0.0 || r.body["lowStock"] != false ||
		field(t, r.body, "level", "stock") != -4.0 || field(t, r.body, "movement", "quantityAfter") != -4.0 ||
		field(t, r.body, "movement", "lowStockAlert") != false {
		t.Fatalf("stock out below zero = %d %s", r.status, r.raw)
	}
	var seed seedProduct
	if err := json.Unmarshal([]byte(r.raw), &seed); err != nil || seed.Stock != -4 {
		t.Fatalf("a seed client reads %+v (%v)", seed, err)
	}
	if r := e.do(t, "GET", "/product/EBOOK-1", ""); r.body["tracked"] != false || r.body["stock"] != -4.0 {
		t.Fatalf("after the sale: %s", r.raw)
	}

	t.Run("TrackedByDefault", func(t *testing.T) {
		for id, body := range map[string]string{
			"MUG-1": `{"id":"MUG-1","name":"Mug","price":8,"stock":1}`,
			"MUG-2": `{"id":"MUG-2","name":"Mug","price":8,"stock":1,"tracked":true}`,
			"MUG-3": `{"id":"MUG-3","name":"Mug","price":8,"stock":1,"tracked":null}`,
		} {
			if r := e.do(t, "POST", "/product", body); r.status != http.StatusCreated || r.body["tracked"] != true {
				t.Fatalf("create %s = %d %s", id, r.status, r.raw)
			}
			if r := e.do(t, "POST", "/stock/out", `{"id":"`+id+`","count":2}`); r.status != http.StatusConflict || r.errCode() != "INSUFFICIENT_STOCK" {
				t.Fatalf("%s beyond the shelf = %d %s", id, r.status, r.raw)
			}
		}
	})
	t.Run("ErrBadInput", func(t *testing.T) {
		for _, body := range []string{
			`{"id":"EBOOK-2","name":"x","price":1,"tracked":"false"}`,
			`{"id":"EBOOK-2","name":"x","price":1,"tracked":0}`,
		} {
			if r := e.do(t, "POST", "/product", body); r.status != http.StatusBadRequest || r.errCode() != "BAD_USER_INPUT" {
				t.Errorf("%s = %d %s", body, r.status, r.raw)
			}
		}
	})
}
