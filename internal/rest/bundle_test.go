package rest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBundles: POST /bundle creates a bundle of products named by id (the
// SKU) or productId, answered as POST /product answers (201, Location,
// 200 on an Idempotency-Key's replay); the product JSON says isBundle and
// its components; POST /stock/out of the bundle takes its components'
// units all or nothing, with a movement naming the bundle; its own
// stock-in and a bundle of bundles are 400 BAD_USER_INPUT.
func TestBundles(t *testing.T) {
	e := newEnv(t)
	e.do(t, "POST", "/product", `{"id":"MUG","name":"Mug","price":8,"stock":10}`)
	tea := e.do(t, "POST", "/product", `{"id":"TEA","name":"Tea","price":4,"stock":3}`).body["productId"].(string)
	mug := e.do(t, "GET", "/product/MUG", "").body["productId"].(string)

	body := `{"id":"GIFT-BOX","name":"Gift box","price":18,"threshold":1,
		"components":[{"productId":` + tea + `,"quantity":1},{"id":"mug","quantity":2}]}`
	r := e.do(t, "POST", "/bundle", body, "Idempotency-Key", "box")
	wantComps := fmt.Sprint([]any{map[string]any{"productId": mug, "quantity": 2.0}, map[string]any{"productId": tea, "quantity": 1.0}})
	if r.status != http.StatusCreated || r.header.Get("Location") != "/product/GIFT-BOX" || r.body["id"] != "GIFT-BOX" ||
		r.body["isBundle"] != true || r.body["stock"] != 3.0 || r.body["available"] != 3.0 || r.body["price"] != 18.0 ||
		fmt.Sprint(r.body["components"]) != wantComps {
		t.Fatalf("POST /bundle = %d %s", r.status, r.raw)
	}
	box := r.body["productId"].(string)
	if again := e.do(t, "POST", "/bundle", body, "Idempotency-Key", "box"); again.status != http.StatusOK || again.body["productId"] != box {
		t.Fatalf("replayed = %d %s", again.status, again.raw)
	}
	other := strings.Replace(body, `"quantity":2`, `"quantity":3`, 1)
	if r := e.do(t, "POST", "/bundle", other, "Idempotency-Key", "box"); r.status != http.StatusConflict || r.errCode() != "CONFLICT" {
		t.Fatalf("the key with another body = %d %s", r.status, r.raw)
	}

	if r := e.do(t, "GET", "/product/gift-box", ""); r.status != 200 || r.body["isBundle"] != true || r.body["available"] != 3.0 ||
		fmt.Sprint(r.body["components"]) != wantComps {
		t.Fatalf("GET the bundle = %d %s", r.status, r.raw)
	}
	if r := e.do(t, "GET", "/product/MUG", ""); r.body["isBundle"] != false || r.raw == "" || !strings.Contains(r.raw, `"components":[]`) {
		t.Fatalf("GET a component: %s", r.raw)
	}

	r = e.do(t, "POST", "/stock/out", `{"id":"GIFT-BOX","count":2,"reference":"order-1"}`)
	if r.status != 200 || r.body["id"] != "GIFT-BOX" || r.body["available"] != 1.0 || field(t, r.body, "level", "available") != 1.0 ||
		field(t, r.body, "movement", "productId") != mug || field(t, r.body, "movement", "bundleId") != box ||
		field(t, r.body, "movement", "delta") != -4.0 || field(t, r.body, "movement", "reference") != "order-1" {
		t.Fatalf("stock out of the bundle = %d %s", r.status, r.raw)
	}
	var seed seedProduct
	if err := json.Unmarshal([]byte(r.raw), &seed); err != nil || seed.ID != "GIFT-BOX" || seed.Stock != 1 {
		t.Fatalf("a seed client reads %+v (%v)", seed, err)
	}
	if r := e.do(t, "GET", "/product/TEA", ""); r.body["stock"] != 1.0 {
		t.Fatalf("the component after the sale: %s", r.raw)
	}
	if r := e.do(t, "POST", "/stock/out", `{"id":"TEA","count":1}`); field(t, r.body, "movement", "bundleId") != nil {
		t.Fatalf("a direct sale's movement names a bundle: %s", r.raw)
	}

	t.Run("ErrInsufficientStock", func(t *testing.T) {
		// No tea left: no bundle, and the mugs stay.
		if r := e.do(t, "POST", "/stock/out", `{"productId":`+box+`,"count":1}`); r.status != http.StatusConflict || r.errCode() != "INSUFFICIENT_STOCK" {
			t.Fatalf("stock out beyond a component = %d %s", r.status, r.raw)
		}
		if r := e.do(t, "GET", "/product/MUG", ""); r.body["stock"] != 6.0 {
			t.Fatalf("a refused bundle sale took mugs: %s", r.raw)
		}
	})
	t.Run("ErrBadInput", func(t *testing.T) {
		if r := e.do(t, "POST", "/stock/in", `{"id":"GIFT-BOX","count":1}`); r.status != http.StatusBadRequest || r.errCode() != "BAD_USER_INPUT" {
			t.Fatalf("stock in of a bundle = %d %s", r.status, r.raw)
		}
		many := make([]string, 21)
		for i := range many {
			many[i] = `{"id":"MUG","quantity":1}`
		}
		for body, field := range map[string]string{
			`{"id":"NESTED","name":"x","price":1,"components":[{"id":"GIFT-BOX","quantity":1}]}`:        "components",
			`{"id":"ZERO","name":"x","price":1,"components":[{"id":"MUG","quantity":0}]}`:               "components[0].quantity",
			`{"id":"NONE","name":"x","price":1,"components":[]}`:                                        "components",
			`{"id":"MANY","name":"x","price":1,"components":[` + strings.Join(many, ",") + `]}`:         "components",
			`{"id":"FREE","name":"x","components":[{"id":"MUG","quantity":1}]}`:                         "price",
			`{"id":"BOTH","name":"x","price":1,"components":[{"id":"MUG","productId":1,"quantity":1}]}`: "components[0].id",
			`{"id":"STOCK","name":"x","price":1,"stock":5,"components":[{"id":"MUG","quantity":1}]}`:    "stock",
		} {
			r := e.do(t, "POST", "/bundle", body)
			if r.status != http.StatusBadRequest || r.errCode() != "BAD_USER_INPUT" || fieldOf(r) != field {
				t.Errorf("%s = %d %s, want 400 BAD_USER_INPUT on %q", body, r.status, r.raw, field)
			}
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		for _, body := range []string{
			`{"id":"GHOST","name":"x","price":1,"components":[{"id":"NO-SUCH-SKU","quantity":1}]}`,
			`{"id":"GHOST","name":"x","price":1,"components":[{"id":"MUG","quantity":1},{"productId":"999999","quantity":1}]}`,
		} {
			if r := e.do(t, "POST", "/bundle", body); r.status != http.StatusNotFound || r.errCode() != "NOT_FOUND" {
				t.Errorf("%s = %d %s", body, r.status, r.raw)
			}
		}
		if r := e.do(t, "GET", "/product/GHOST", ""); r.status != http.StatusNotFound {
			t.Errorf("a refused bundle was created: %s", r.raw)
		}
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		if r := e.do(t, "GET", "/bundle", ""); r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
			t.Fatalf("GET /bundle = %d %s", r.status, r.raw)
		}
	})
}

// fieldOf is an error answer's field, "" if none.
func fieldOf(r response) string {
	e, _ := r.body["error"].(map[string]any)
	f, _ := e["field"].(string)
	return f
}
